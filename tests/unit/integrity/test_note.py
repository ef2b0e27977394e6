"""Signed notes, note keys and checkpoints: known answers, every must-fail case, fuzzing.

Known answers come from two independent places:

* the test vectors of golang.org/x/mod/sumdb/note (``note_test.go``: the
  PeterNeumann / EnochRoot keys and signatures), copied from that file;
* a fixed seed whose key ID and key strings are rebuilt here with hashlib and
  base64, and whose signatures are checked with ``cryptography`` directly, so the
  construction itself is tested, not only self-consistency.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from trailkeep.integrity.checkpoint import (
    Checkpoint,
    CheckpointError,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from trailkeep.integrity.note import (
    MAX_SIGNATURES,
    InvalidSignatureError,
    NoteError,
    OpenedNote,
    Signature,
    Signer,
    UnverifiedNoteError,
    Verifier,
    decode_base64,
    generate_signer,
    key_hash,
    open_note,
    parse_signer,
    parse_verifier,
    sign_note,
    signer_from_seed,
    verifier_key,
)
from trailkeep.kit.merkle import MAX_TREE_SIZE

# --- golang.org/x/mod/sumdb/note test vectors --------------------------------------

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_B64 = (
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
PETER_SIG = f"\u2014 PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"\u2014 EnochRoot {ENOCH_B64}\n"
PETER = Signature("PeterNeumann", 0xC74F20A3, PETER_B64)
ENOCH = Signature("EnochRoot", 0xAF0CFE78, ENOCH_B64)


def insert_abcd(sig_line: str) -> str:
    """Go's ``sig[:60] + "ABCD" + sig[60:]``: 60 is a *byte* offset (the em dash is 3)."""
    raw = sig_line.encode()
    return (raw[:60] + b"ABCD" + raw[60:]).decode()


@pytest.fixture(scope="module")
def peter() -> Verifier:
    return parse_verifier(PETER_VKEY)


@pytest.fixture(scope="module")
def enoch() -> Verifier:
    return parse_verifier(ENOCH_VKEY)


def test_go_keys_parse_and_match(peter: Verifier) -> None:
    signer = parse_signer(PETER_SKEY)
    assert (signer.name, signer.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert signer.verifier == peter
    assert peter.vkey == PETER_VKEY


def test_go_sign_vector() -> None:
    assert sign_note(TEXT, parse_signer(PETER_SKEY)) == TEXT + "\n" + PETER_SIG


def test_go_open_one_verified_one_not(peter: Verifier) -> None:
    note = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert note == OpenedNote(TEXT, (PETER,), (ENOCH,))


def test_go_open_both_verified(peter: Verifier, enoch: Verifier) -> None:
    note = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter, enoch])
    assert note == OpenedNote(TEXT, (PETER, ENOCH), ())


def test_go_open_none_verified(peter: Verifier) -> None:
    with pytest.raises(UnverifiedNoteError, match="no signature from a known key") as info:
        open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    assert "PeterNeumann+c74f20a3" in str(info.value)
    assert info.value.note == OpenedNote(TEXT, (), (PETER, ENOCH))


def test_go_open_duplicates(peter: Verifier) -> None:
    enoch_abcd = Signature("EnochRoot", 0xAF0CFE78, insert_abcd(ENOCH_SIG).split(" ")[2][:-1])
    msg = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + insert_abcd(ENOCH_SIG)
    assert open_note(msg, [peter]) == OpenedNote(TEXT, (PETER,), (ENOCH, enoch_abcd))


def test_go_open_invalid_signature(peter: Verifier) -> None:
    with pytest.raises(InvalidSignatureError, match="invalid signature for key PeterNeumann"):
        open_note(TEXT + "\n" + insert_abcd(PETER_SIG), [peter])


@pytest.mark.parametrize("with_key", [False, True])
def test_go_open_too_many_signatures(peter: Verifier, with_key: bool) -> None:
    known = [peter] if with_key else []
    with pytest.raises(NoteError, match="101 signatures, more than 100"):
        open_note(TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), known)
    assert open_note(TEXT + "\n" + PETER_SIG * MAX_SIGNATURES, [peter]).verified == (PETER,)


@pytest.mark.parametrize(
    ("msg", "problem"),
    [
        (TEXT, "no blank line"),
        (TEXT + "\n", "no signature lines"),
        (TEXT + "\n" + PETER_SIG[:-1], "must end with a newline"),
        ("\x01" + TEXT + "\n" + PETER_SIG, "control character U\\+0001"),
        (b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), "not valid UTF-8"),
        # As in Go: the name ends at the first space, so "Name ..." is the base64.
        (TEXT + "\n\u2014 Bad Name " + PETER_B64 + "\n", "line 1 signature is not valid base64"),
        (TEXT + "\n" + PETER_SIG + "Unexpected line.\n", "line 2 does not start with an em dash"),
    ],
)
def test_go_bad_messages(peter: Verifier, msg: str | bytes, problem: str) -> None:
    with pytest.raises(NoteError, match=problem):
        open_note(msg, [peter])


def test_go_verifier_key_manglings() -> None:
    """Every proper substring and every single-byte increment is refused, as in Go."""
    for bad in _manglings(PETER_VKEY):
        with pytest.raises(NoteError):
            parse_verifier(bad)


def test_go_signer_key_manglings() -> None:
    for bad in _manglings(PETER_SKEY):
        with pytest.raises(NoteError):
            parse_signer(bad)


def _manglings(key: str) -> list[str]:
    out = [key[i:j] for i in range(len(key)) for j in range(i + 1, len(key) + 1)]
    out.remove(key)
    out += [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return out


def test_go_bad_keys_with_adjusted_hash() -> None:
    # Go reaches its length check; "...KEY==" is not canonical base64, so we stop sooner.
    with pytest.raises(NoteError, match="verifier key data is not canonical base64"):
        parse_verifier("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(NoteError, match="unknown algorithm 0x65"):
        parse_verifier("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_c2sp_spec_example_is_well_formed_but_unverified() -> None:
    """The example in c2sp.org/signed-note (no key published) parses, names its signer."""
    example = (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed è subito sera.\n\n\u2014 quasimodo.example/salvatore "
        "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
    )
    with pytest.raises(UnverifiedNoteError, match=r"quasimodo\.example/salvatore") as info:
        open_note(example, [])
    assert info.value.note.text.endswith("\n\ned è subito sera.\n")


# --- known answers from a fixed seed, rebuilt independently ------------------------

SEED = bytes(range(32))
NAME = "log.example/t/acme"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _noncanonical(b64: str) -> str:
    """Flip a padding bit of the last data character: same bytes, other spelling."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    data = b64.rstrip("=")
    assert len(data) % 4, "no padding bits to flip"
    flipped = data[:-1] + alphabet[alphabet.index(data[-1]) ^ 1]
    out = flipped + b64[len(data) :]
    assert base64.b64decode(out) == base64.b64decode(b64) and out != b64
    return out


def _independent_keys() -> tuple[bytes, int, str, str]:
    pub = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes_raw()
    kid = int.from_bytes(hashlib.sha256(NAME.encode() + b"\x0a\x01" + pub).digest()[:4], "big")
    skey = f"PRIVATE+KEY+{NAME}+{kid:08x}+" + _b64(b"\x01" + SEED)
    vkey = f"{NAME}+{kid:08x}+" + _b64(b"\x01" + pub)
    return pub, kid, skey, vkey


def test_fixed_seed_key_strings() -> None:
    pub, kid, skey, vkey = _independent_keys()
    signer = parse_signer(skey)
    assert signer.key_id == kid == key_hash(NAME, pub)
    assert signer.verifier.vkey == vkey == verifier_key(NAME, pub)
    assert signer_from_seed(NAME, SEED).key_id == kid
    assert parse_verifier(vkey).public_key == pub


def test_fixed_seed_signature_checked_with_cryptography() -> None:
    pub, kid, skey, _ = _independent_keys()
    text = "hello\n\nworld\n"
    note = sign_note(text, parse_signer(skey))
    body, sig_line = note.rsplit("\n\n", 1)
    assert body + "\n" == text
    prefix = f"\u2014 {NAME} "
    assert sig_line.startswith(prefix) and sig_line.endswith("\n")
    raw = base64.b64decode(sig_line[len(prefix) : -1])
    assert int.from_bytes(raw[:4], "big") == kid
    Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], text.encode())  # raises if bad
    # Ed25519 is deterministic: the note's signature is exactly RFC 8032's.
    assert raw[4:] == Ed25519PrivateKey.from_private_bytes(SEED).sign(text.encode())


# --- keys: round trips and every malformed case -------------------------------------


def test_generate_signer_round_trip() -> None:
    skey, vkey = generate_signer(NAME)
    signer, verifier = parse_signer(skey), parse_verifier(vkey)
    assert signer.verifier == verifier
    assert open_note(sign_note("x\n", signer), [verifier]).text == "x\n"
    assert generate_signer(NAME) != (skey, vkey)


def test_signer_repr_hides_private_key() -> None:
    skey, _ = generate_signer(NAME)
    # PRIVATE+KEY+<name>+<hex id>+<base64>; the base64 itself may hold '+'.
    key64 = skey.split("+", 4)[4]
    assert len(key64) > 40
    assert key64 not in repr(parse_signer(skey))
    assert "_private" not in repr(parse_signer(skey))


_, _KID, _SKEY, _VKEY = _independent_keys()
_KEY64 = _VKEY.split("+", 2)[2]


@pytest.mark.parametrize(
    ("vkey", "problem"),
    [
        ("", "want <name>\\+<key id>\\+<key>"),
        (f"{NAME}+{_KID:08x}", "want <name>\\+<key id>\\+<key>"),
        (f"+{_KID:08x}+{_KEY64}", "key name is empty"),
        (f"a b+{_KID:08x}+{_KEY64}", "contains whitespace"),
        (f"a\u3000b+{_KID:08x}+{_KEY64}", "contains whitespace"),
        (f"a\u00a0b+{_KID:08x}+{_KEY64}", "contains whitespace"),
        (f"a\x7fb\x01+{_KID:08x}+{_KEY64}", "contains a control character"),
        (f"{NAME}+{_KID:07x}+{_KEY64}", "not 8 hex digits"),
        (f"{NAME}+0x{_KID:06x}+{_KEY64}", "not 8 hex digits"),
        (f"{NAME}+{_KID + 1:08x}+{_KEY64}", "key id .* does not match"),
        (f"{NAME}+{_KID:08x}+{_KEY64[:-1]}", "not valid base64"),
        (f"{NAME}+{_KID:08x}+{_KEY64}=", "not canonical base64"),  # Python decodes it
        (f"{NAME}+{_KID:08x}+{_KEY64.replace('A', '*', 1)}", "not valid base64"),
        (f"{NAME}+{_KID:08x}+", "key data is empty"),
        (f"{NAME}+{_KID:08x}+" + _b64(b"\x02" + bytes(32)), "0x02"),
        (f"{NAME}+{_KID:08x}+" + _b64(b"\x01" + bytes(31)), "got 31"),
    ],
)
def test_parse_verifier_rejects(vkey: str, problem: str) -> None:
    with pytest.raises(NoteError, match=problem):
        parse_verifier(vkey)


def test_names_with_plus_are_refused_everywhere() -> None:
    with pytest.raises(NoteError, match="contains '\\+'"):
        generate_signer("a+b")
    with pytest.raises(NoteError, match="contains '\\+'"):
        verifier_key("a+b", bytes(32))


def test_decode_base64_wants_the_canonical_spelling() -> None:
    # Key data (33 bytes) has no padding bits, so signatures and roots carry this check.
    assert decode_base64("YQ==", "x") == b"a"
    # Python's decoder (even strict_mode) returns bytes for all of these spellings.
    for odd in ["YR==", "YWJj=", "YWJj=="]:
        with pytest.raises(NoteError, match="x is not canonical base64"):
            decode_base64(odd, "x")
    for bad in ["YQ", "YQ=", "Y Q==", "YQ==\n", "YQ==YQ==", "=YWJj", "-_8=", "\u00e9AAA"]:
        with pytest.raises(NoteError, match="x is not valid base64"):
            decode_base64(bad, "x")


@pytest.mark.parametrize(
    ("skey", "problem"),
    [
        (_VKEY, "must start with PRIVATE\\+KEY\\+"),
        ("private+key+" + _SKEY[12:], "must start with PRIVATE\\+KEY\\+"),
        (_SKEY.replace(f"{_KID:08x}", f"{_KID ^ 1:08x}"), "signer key id .* does not match"),
        (_SKEY.replace(NAME, "other.example"), "signer key id .* does not match"),
        (_SKEY.rsplit("+", 1)[0] + "+" + _b64(b"\x01" + bytes(16)), "got 16"),
        (_SKEY.rsplit("+", 1)[0] + "+" + _b64(b"\x09" + SEED), "0x09"),
        (_SKEY[:-1], "not valid base64"),
        ("PRIVATE+KEY+", "want <name>"),
    ],
)
def test_parse_signer_rejects(skey: str, problem: str) -> None:
    with pytest.raises(NoteError, match=problem) as info:
        parse_signer(skey)
    assert _SKEY.rsplit("+", 1)[1] not in str(info.value)  # never echo the secret


def test_signer_from_seed_rejects_wrong_length() -> None:
    with pytest.raises(NoteError, match="seed must be 32 bytes, got 31"):
        signer_from_seed(NAME, SEED[:31])


def test_verifier_refuses_inconsistent_fields() -> None:
    pub = _independent_keys()[0]
    with pytest.raises(NoteError, match="does not match"):
        Verifier(NAME, _KID ^ 1, pub)
    with pytest.raises(NoteError, match="must be 32 bytes"):
        Verifier(NAME, _KID, pub[:31])


# --- notes: round trips and every must-fail case ------------------------------------


@pytest.fixture(scope="module")
def me() -> tuple[Signer, Verifier]:
    signer = parse_signer(_SKEY)
    return signer, signer.verifier


@pytest.mark.parametrize(
    "text",
    [
        "\n",
        "one line\n",
        "trailing blank line\n\n",
        "\n\nleading blank lines\n",
        "unicode \u2014 dashes, \u00e9t\u00e9, \U0001f600\n",
        # Text that looks like a signed note: the *last* blank line still separates.
        f"x\n\n\u2014 PeterNeumann {PETER_B64}\n",
        TEXT + "\n" + PETER_SIG,
    ],
)
def test_round_trip_including_separator_lookalikes(text: str) -> None:
    signer = parse_signer(_SKEY)
    note = sign_note(text, signer, parse_signer(PETER_SKEY))
    opened = open_note(note, [signer.verifier])
    assert opened.text == text
    assert [s.name for s in opened.verified] == [NAME]
    assert [s.name for s in opened.unverified] == ["PeterNeumann"]
    assert open_note(note.encode(), [signer.verifier]) == opened


def test_embedded_signature_does_not_vouch_for_the_outer_note(peter: Verifier) -> None:
    """A note quoted inside new text does not make Peter a signer of the new text."""
    forged = TEXT + "\n" + PETER_SIG + "\nappended by someone else\n\n" + PETER_SIG
    with pytest.raises(InvalidSignatureError):
        open_note(forged, [peter])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "must end with a newline"),
        ("no newline", "must end with a newline"),
        ("tab\there\n", "control character U\\+0009"),
        ("carriage\r\n", "control character U\\+000D"),
        ("lone \ud800 surrogate\n", "not valid UTF-8"),
    ],
)
def test_sign_note_rejects(text: str, problem: str) -> None:
    with pytest.raises(NoteError, match=problem):
        sign_note(text, parse_signer(_SKEY))


def test_sign_note_rejects_no_or_repeated_signers() -> None:
    signer = parse_signer(_SKEY)
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note("x\n")
    with pytest.raises(NoteError, match="given twice"):
        sign_note("x\n", signer, signer)


_GOOD_LINE = f"\u2014 {NAME} " + _b64(_KID.to_bytes(4, "big") + bytes(64))


@pytest.mark.parametrize(
    ("sig_block", "problem"),
    [
        (f"- {NAME} {PETER_B64}\n", "does not start with an em dash"),
        (f"\u2014{NAME} {PETER_B64}\n", "does not start with an em dash"),
        (f"\u2014 {NAME}\n", "no signature after the key name"),
        (f"\u2014 {NAME} \n", "no signature after the key name"),
        (f"\u2014 a+b {PETER_B64}\n", "signature line 1: key name 'a\\+b' contains '\\+'"),
        (f"\u2014 {NAME} {PETER_B64} extra\n", "not valid base64"),
        (f"\u2014 {NAME} {PETER_B64[:-1]}\n", "not valid base64"),
        (f"\u2014 {NAME} {_noncanonical(PETER_B64)}\n", "not canonical base64"),
        (f"\u2014 {NAME} AAAAAA==\n", "too short \\(4 bytes\\)"),
        (f"{_GOOD_LINE}\n\n", "no signature lines"),
    ],
)
def test_open_note_rejects_malformed_signature_lines(
    me: tuple[Signer, Verifier], sig_block: str, problem: str
) -> None:
    with pytest.raises(NoteError, match=problem):
        open_note("text\n\n" + sig_block, [me[1]])


def test_open_note_rejects_bad_signature_from_known_key(me: tuple[Signer, Verifier]) -> None:
    with pytest.raises(InvalidSignatureError, match=f"invalid signature for key {NAME}"):
        open_note("text\n\n" + _GOOD_LINE + "\n", [me[1]])


def test_open_note_rejects_known_key_even_next_to_a_valid_one(
    me: tuple[Signer, Verifier], peter: Verifier
) -> None:
    """The spec: a known key's failing signature rejects the note (SHOULD, we do)."""
    note = sign_note(TEXT, parse_signer(PETER_SKEY)) + insert_abcd(PETER_SIG)
    with pytest.raises(InvalidSignatureError, match="PeterNeumann"):
        open_note(note, [peter])


def test_unknown_key_sharing_name_or_id_is_ignored(peter: Verifier) -> None:
    other_id = "\u2014 PeterNeumann " + _b64(b"\x00\x00\x00\x01" + bytes(64)) + "\n"
    other_name = f"\u2014 PeterNeumann2 {PETER_B64}\n"
    opened = open_note(TEXT + "\n" + other_id + PETER_SIG + other_name, [peter])
    assert opened.verified == (PETER,)
    assert [s.name for s in opened.unverified] == ["PeterNeumann", "PeterNeumann2"]


def test_open_note_only_unknown_keys(me: tuple[Signer, Verifier]) -> None:
    with pytest.raises(UnverifiedNoteError, match="PeterNeumann\\+c74f20a3"):
        open_note(TEXT + "\n" + PETER_SIG, [me[1]])


def test_open_note_rejects_ambiguous_keys(peter: Verifier) -> None:
    # Two real keys colliding on name and 32-bit ID would take ~2**32 tries, so the
    # impostor is built past Verifier's own consistency check.
    impostor = object.__new__(Verifier)
    for attr, value in [("name", peter.name), ("key_id", peter.key_id), ("public_key", SEED)]:
        object.__setattr__(impostor, attr, value)
    with pytest.raises(NoteError, match="ambiguous key PeterNeumann\\+c74f20a3"):
        open_note(TEXT + "\n" + PETER_SIG, [peter, impostor])
    # The same key listed twice is harmless (Go calls even that ambiguous).
    assert open_note(TEXT + "\n" + PETER_SIG, [peter, parse_verifier(PETER_VKEY)]).verified


def test_open_note_rejects_control_chars_in_signatures(peter: Verifier) -> None:
    with pytest.raises(NoteError, match="control character U\\+000D"):
        open_note((TEXT + "\n" + PETER_SIG).replace("\n", "\r\n"), [peter])


# --- checkpoints --------------------------------------------------------------------

SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
ROOT = bytes(range(100, 132))
ROOT64 = base64.b64encode(ROOT).decode()


def test_checkpoint_spec_example() -> None:
    cp = parse_checkpoint(SPEC_BODY)
    assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert format_checkpoint(cp) == SPEC_BODY


@pytest.mark.parametrize("size", [0, 1, 10, MAX_TREE_SIZE])
def test_checkpoint_round_trip(size: int) -> None:
    cp = Checkpoint(NAME, size, ROOT, ("ext one", "ext two"))
    body = format_checkpoint(cp)
    assert body == f"{NAME}\n{size}\n{ROOT64}\next one\next two\n"
    assert parse_checkpoint(body, origin=NAME) == cp


def test_signed_checkpoint_round_trip() -> None:
    signer = parse_signer(_SKEY)
    cp = Checkpoint(NAME, 7, ROOT)
    note = sign_checkpoint(cp, signer)
    assert open_checkpoint(note, [signer.verifier], origin=NAME) == cp
    with pytest.raises(CheckpointError, match=r"origin .* is not 'log\.example/t/other'"):
        open_checkpoint(note, [signer.verifier], origin="log.example/t/other")
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [parse_verifier(PETER_VKEY)], origin=NAME)


def test_open_checkpoint_rejects_signed_garbage() -> None:
    signer = parse_signer(_SKEY)
    note = sign_note(f"{NAME}\n007\n{ROOT64}\n", signer)
    with pytest.raises(CheckpointError, match="leading zeros"):
        open_checkpoint(note, [signer.verifier])


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (f"{NAME}\n1\n{ROOT64}", "must end with a newline"),
        (f"{NAME}\n1\n", "has 2 line"),
        ("\n", "has 1 line"),
        (f"\n1\n{ROOT64}\n", "line 1 is empty"),
        (f"{NAME}\n\n{ROOT64}\n", "line 2 is empty"),
        (f"{NAME}\n1\n{ROOT64}\n\n", "line 4 is empty"),
        (f"{NAME}\n1\n{ROOT64}\n\next\n", "line 4 is empty"),
        (f"{NAME}\n01\n{ROOT64}\n", "without leading zeros"),
        (f"{NAME}\n00\n{ROOT64}\n", "without leading zeros"),
        (f"{NAME}\n-1\n{ROOT64}\n", "without leading zeros"),
        (f"{NAME}\n+1\n{ROOT64}\n", "without leading zeros"),
        (f"{NAME}\n 1\n{ROOT64}\n", "without leading zeros"),
        (f"{NAME}\n1_000\n{ROOT64}\n", "without leading zeros"),
        (f"{NAME}\n\u0663\n{ROOT64}\n", "without leading zeros"),
        (f"{NAME}\n0x10\n{ROOT64}\n", "without leading zeros"),
        (f"{NAME}\n{MAX_TREE_SIZE + 1}\n{ROOT64}\n", "does not fit in 64 bits"),
        (f"{NAME}\n{'9' * 10_000}\n{ROOT64}\n", "does not fit in 64 bits"),
        (f"{NAME}\n1\n{ROOT64[:-1]}\n", "root hash is not valid base64"),
        (f"{NAME}\n1\n{_noncanonical(ROOT64)}\n", "root hash is not canonical base64"),
        (f"{NAME}\n1\n{_b64(ROOT[:31])}\n", "31 bytes, want 32"),
        (f"{NAME}\n1\n{_b64(ROOT + b'x')}\n", "33 bytes, want 32"),
        (f"{NAME}\r\n1\n{ROOT64}\n", "control character U\\+000D"),
        (f"{NAME}\n1\n{ROOT64}\nbell\x07\n", "extension line 1 contains control character"),
    ],
)
def test_parse_checkpoint_rejects(body: str, problem: str) -> None:
    with pytest.raises(CheckpointError, match=problem):
        parse_checkpoint(body)


def test_parse_checkpoint_accepts_origins_the_spec_only_discourages() -> None:
    """Clients MUST NOT assume the origin's format; writers SHOULD avoid spaces and '+'."""
    cp = parse_checkpoint(f"Moon Log+1\n1\n{ROOT64}\n")
    assert cp.origin == "Moon Log+1"
    with pytest.raises(CheckpointError, match=r"origin is not usable.*whitespace"):
        format_checkpoint(cp)
    with pytest.raises(CheckpointError, match=r"origin is not usable.*'\+'"):
        format_checkpoint(Checkpoint("a+b", 1, ROOT))


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"origin": ""}, "origin is empty"),
        ({"origin": "a\nb"}, "origin contains a newline"),
        ({"size": -1}, "outside 0..2\\*\\*64-1"),
        ({"size": MAX_TREE_SIZE + 1}, "outside 0..2\\*\\*64-1"),
        ({"size": True}, "must be an integer"),
        ({"size": 1.0}, "must be an integer"),
        ({"root_hash": ROOT[:31]}, "must be 32 bytes, got 31"),
        ({"root_hash": "x" * 32}, "must be bytes"),
        ({"extensions": ("",)}, "extension line 1 is empty"),
        ({"extensions": ("ok", "a\nb")}, "extension line 2 contains a newline"),
    ],
)
def test_checkpoint_constructor_rejects(kwargs: dict[str, object], problem: str) -> None:
    fields: dict[str, object] = {"origin": NAME, "size": 1, "root_hash": ROOT, **kwargs}
    with pytest.raises(CheckpointError, match=problem):
        Checkpoint(**fields)  # type: ignore[arg-type]  # wrong types on purpose


# --- property tests -----------------------------------------------------------------

_line = st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs",)), max_size=30)
_texts = st.lists(_line, min_size=1, max_size=6).map(lambda lines: "\n".join(lines) + "\n")


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


@st.composite
def _mutations(draw: st.DrawFn, note: bytes) -> bytes:
    kind = draw(st.sampled_from(["flip", "drop", "swap"]))
    if kind == "flip":
        i = draw(st.integers(0, len(note) - 1))
        mask = draw(st.integers(1, 255))
        return note[:i] + bytes([note[i] ^ mask]) + note[i + 1 :]
    lines = _lines(note)
    i = draw(st.integers(0, len(lines) - 1))
    if kind == "drop":
        return b"".join(lines[:i] + lines[i + 1 :])
    j = draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), text=_texts)
def test_mutated_note_never_verifies(data: st.DataObject, text: str) -> None:
    """With one signature, any change to the bytes is a NoteError, nothing else."""
    signer = signer_from_seed(NAME, SEED)
    note = sign_note(text, signer).encode()
    mutated = data.draw(_mutations(note))
    assume(mutated != note)
    with pytest.raises(NoteError):
        open_note(mutated, [signer.verifier])


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_open_note_garbage_only_raises_note_error(raw: bytes) -> None:
    with pytest.raises(NoteError):
        open_note(raw, [signer_from_seed(NAME, SEED).verifier])


_origins = st.text(
    st.characters(min_codepoint=0x21, exclude_categories=("Cs", "Zs", "Zl", "Zp")), min_size=1
).filter(lambda s: "+" not in s and not any(c.isspace() for c in s))


@settings(max_examples=300, deadline=None)
@given(
    origin=_origins,
    size=st.integers(0, MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_line.filter(bool), max_size=3).map(tuple),
)
def test_checkpoint_property_round_trip(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    assert parse_checkpoint(format_checkpoint(cp), origin=origin) == cp


_BAD_PARTS = {
    "origin": st.sampled_from(["", "Moon Log", "a+b", "cr\r"]),
    "size": st.sampled_from(["007", "-1", "+1", " 1", "18446744073709551616", "\u0663", ""]),
    "root": st.sampled_from([_noncanonical(ROOT64), ROOT64 + "=", ROOT64[:-1], "", "AAAA"]),
    "extension": st.sampled_from(["", "bell\x07"]),
    "end": st.sampled_from(["", "\n"]),  # no final newline, or a trailing empty line
}


@st.composite
def _checkpoint_bodies(draw: st.DrawFn) -> str:
    """A checkpoint body with at most one part broken, so that about half parse."""
    broken = draw(st.sampled_from([None, None, None, None, *_BAD_PARTS]))
    parts = {
        "origin": _origins,
        "size": st.integers(0, MAX_TREE_SIZE).map(str),
        "root": st.binary(min_size=32, max_size=32).map(_b64),
        "extension": _line.filter(bool),
        "end": st.just("\n"),
    }
    pick = {k: draw(_BAD_PARTS[k] if k == broken else v) for k, v in parts.items()}
    extensions = draw(st.lists(_line.filter(bool), max_size=2))
    if broken == "extension" or draw(st.booleans()):
        extensions.insert(draw(st.integers(0, len(extensions))), pick["extension"])
    lines = [pick["origin"], pick["size"], pick["root"], *extensions]
    return "\n".join(lines) + pick["end"]


@settings(max_examples=400, deadline=None)
@given(body=_checkpoint_bodies() | st.text(max_size=200))
def test_parse_checkpoint_has_one_spelling(body: str) -> None:
    """Whatever parses formats back to the same bytes; everything else is CheckpointError."""
    try:
        cp = parse_checkpoint(body)
    except CheckpointError:
        return
    try:
        assert format_checkpoint(cp) == body
    except CheckpointError as exc:  # only the writer's stricter origin rule may refuse
        assert "origin is not usable" in str(exc)
