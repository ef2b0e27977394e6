"""One checkpoint key per tenant (issue 14 item 3): derived from the service's secret
and the tenant id, so tenant A's checkpoint relabelled with B's name and key id does
not verify under B's key, as it did when one key signed every tenant under its name."""

from __future__ import annotations

import base64

import pytest

from trailkeep.integrity.checkpoint import Checkpoint, sign_checkpoint
from trailkeep.integrity.note import (
    SIGNATURE_PREFIX,
    InvalidSignatureError,
    generate_signer,
    open_note,
    parse_signer,
)
from trailkeep.integrity.signing_keys import LogKey

SECRET, _ = generate_signer("audit.example.com")


def _relabel(note: str, name: str, key_id: int) -> str:
    """A's note with its signature line renamed to ``name`` and ``key_id``: the forgery."""
    text, _, line = note.rstrip("\n").rpartition("\n")
    raw = base64.b64decode(line.split(" ")[-1])
    forged = key_id.to_bytes(4, "big") + raw[4:]
    return f"{text}\n{SIGNATURE_PREFIX}{name} {base64.b64encode(forged).decode()}\n"


def test_each_tenant_has_its_own_key_derived_the_same_everywhere() -> None:
    one, two = LogKey(parse_signer(SECRET)), LogKey(parse_signer(SECRET))
    assert one.vkey_for("acme") == two.vkey_for("acme")  # every process derives the same
    assert one.signer_for("acme").name == "audit.example.com/t/acme"
    assert (
        one.signer_for("acme").verifier.public_key != one.signer_for("globex").verifier.public_key
    )
    assert one.vkey_for("acme") != one.legacy_vkey_for("acme")
    other = LogKey(parse_signer(generate_signer("audit.example.com")[0]))
    assert other.vkey_for("acme") != one.vkey_for("acme")  # a different service secret


def test_a_relabelled_checkpoint_does_not_verify_under_another_tenant_s_key() -> None:
    key = LogKey(parse_signer(SECRET))
    acme_note = sign_checkpoint(
        Checkpoint("audit.example.com/t/acme", 5, b"\x01" * 32), key.signer_for("acme")
    )
    globex = key.signer_for("globex").verifier
    forged = _relabel(acme_note, globex.name, globex.key_id)
    with pytest.raises(InvalidSignatureError):
        open_note(forged, [globex])
    # With the one shared key of before, the same forgery verified: why keys differ.
    legacy_note = sign_checkpoint(
        Checkpoint("audit.example.com/t/acme", 5, b"\x01" * 32), key.legacy_signer_for("acme")
    )
    legacy_globex = key.legacy_signer_for("globex").verifier
    relabelled = _relabel(legacy_note, legacy_globex.name, legacy_globex.key_id)
    assert open_note(relabelled, [legacy_globex]).verified
