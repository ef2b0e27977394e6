"""Per-tenant checkpoint keys through a running service (issue 14 item 3), on both
backends: a new tenant's checkpoints verify under its own key only; a tenant whose log
was signed by the shared legacy key (before per-tenant keys) gets each new checkpoint
co-signed by that key too, so its auditors keep verifying while they move over; with
co-signing off, its new checkpoints carry its own key only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World, event
from tests.integration.test_integrity import wait_checkpoint
from trailkeep.integrity.checkpoint import Checkpoint, sign_checkpoint
from trailkeep.integrity.note import UnverifiedNoteError, open_note, parse_verifier
from trailkeep.kit.timeutil import now_us
from trailkeep.store.models import CheckpointRecord


def _keys(world: World, tenant: str) -> tuple[Any, Any]:
    r = world.client.get("/v1/integrity/key", headers=world.h(tenant, "reader")).json()
    return parse_verifier(r["vkey"]), parse_verifier(r["legacy_vkey"])


def _legacy_history(world: World) -> None:
    """acme's log as an older version left it: its latest checkpoint signed by the
    service key under acme's name, not by acme's own key."""
    for i in range(3):
        assert world.post("acme", event(id=f"e{i}")).status_code == 201
    wait_checkpoint(world, 3, "acme")
    app: Any = world.client.app
    store, key = app.state.services.store, app.state.services.integrity.key
    head = world.client.portal.call(store.tree_head, "acme")
    note = sign_checkpoint(
        Checkpoint(key.origin("acme"), head.size, head.root_hash), key.legacy_signer_for("acme")
    )
    record = CheckpointRecord("acme", head.size, head.root_hash, note, now_us())

    def replace_latest(conn: Any) -> None:
        conn.execute("DELETE FROM checkpoints WHERE tenant_id = ?", ("acme",))

    world.client.portal.call(store._write, replace_latest)
    world.client.portal.call(store.add_checkpoint, record)


def test_a_new_tenant_is_signed_by_its_own_key_only(world: World) -> None:
    own, legacy = _keys(world, "globex")
    note = wait_checkpoint(world, 5, "globex")["note"]  # the world's five globex events
    assert open_note(note, [own]).verified
    with pytest.raises(UnverifiedNoteError):
        open_note(note, [legacy])


def test_a_legacy_signed_log_is_co_signed_while_its_auditors_move(world: World) -> None:
    _legacy_history(world)
    own, legacy = _keys(world, "acme")
    assert world.post("acme", event(id="new")).status_code == 201
    note = wait_checkpoint(world, 4, "acme")["note"]
    assert open_note(note, [own]).verified and open_note(note, [legacy]).verified


@pytest.mark.settings(checkpoint_legacy_cosign=False)
def test_without_co_signing_a_legacy_log_gets_its_own_key_only(world: World) -> None:
    _legacy_history(world)
    own, legacy = _keys(world, "acme")
    assert world.post("acme", event(id="new")).status_code == 201
    note = wait_checkpoint(world, 4, "acme")["note"]
    assert open_note(note, [own]).verified
    with pytest.raises(UnverifiedNoteError):
        open_note(note, [legacy])
