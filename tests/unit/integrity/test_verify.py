"""The offline audit (integrity/verify.py): a real log built in-process, then broken every way.

Each test builds a tenant log the way the service does (tests/unit/integrity/
verify_log.py), breaks one thing, and asserts exactly which lines and seqs the report
names.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.unit.integrity.verify_log import HOST, Log, build_log, with_field
from trailkeep.integrity import verify
from trailkeep.integrity.note import generate_signer, parse_signer, parse_verifier
from trailkeep.integrity.verify import verify_export
from trailkeep.integrity.verify_inputs import (
    VerifyError,
    load_checkpoint,
    load_verifier,
    open_checkpoint_bytes,
)
from trailkeep.integrity.verify_report import (
    MAX_LISTED,
    Beyond,
    Duplicate,
    Foreign,
    Modified,
    Reordered,
)
from trailkeep.integrity.verify_tiles import DirectoryTiles, TileCheckError, check_tiles
from trailkeep.kit.merkle import leaf_hash
from trailkeep.kit.tiles import tile_path


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return build_log(tmp_path, 600)  # 2 full tiles and a partial one


# ------------------------------------------------------------------ the good cases


def test_an_untouched_export_verifies(log: Log) -> None:
    report = log.check()
    assert report.ok and report.events == 600 and report.lines == 600
    assert report.details() == []
    assert report.summary().startswith("OK: all 600 events")
    out = report.to_json()
    assert out["ok"] is True and out["events_verified"] == 600 and out["root"]["matches"]
    with_tiles = log.check_tiles()
    assert with_tiles.ok and with_tiles.tiles is not None and with_tiles.tiles.status == "verified"


@pytest.mark.parametrize("end", [b"", b"\n", b"\n\n\n", b"\n \n"])
def test_trailing_newlines_and_blank_lines_are_fine(log: Log, end: bytes) -> None:
    log.write(end=end)
    assert verify_export(log.events_path, log.checkpoint).ok


def test_crlf_and_other_spellings_of_the_same_event_verify(log: Log) -> None:
    lines = [x + b"\r" for x in log.lines]
    lines[4] = orjson.dumps(orjson.loads(log.lines[4]), option=orjson.OPT_INDENT_2)
    lines[4] = lines[4].replace(b"\n", b" ")
    assert log.check(lines).ok


def test_a_stream_is_read_once(log: Log) -> None:
    lines = [*log.lines, log.lines[3]]
    report = verify_export(io.BytesIO(b"\n".join(lines)), log.checkpoint)
    # A stream cannot be read twice to find the first line of a duplicate.
    assert report.duplicates.items == [Duplicate(3, [601], None)]


def test_events_beyond_the_checkpoint_are_reported_not_failed(tmp_path: Path) -> None:
    log = build_log(tmp_path, 300, signed_size=297)
    report = log.check()
    assert report.ok
    assert report.beyond.items == [Beyond(298, 297), Beyond(299, 298), Beyond(300, 299)]
    assert "3 event(s) are beyond the checkpoint" in report.details()[0]
    assert report.to_json()["beyond_checkpoint"]["count"] == 3


def test_the_empty_log(tmp_path: Path) -> None:
    log = build_log(tmp_path, 0)
    assert log.check([], end=b"").ok


# ------------------------------------------------------------------ what is wrong


def test_a_modified_event_is_located_only_with_tiles(log: Log) -> None:
    lines = list(log.lines)
    lines[37] = with_field(lines[37], action="user.logout")
    report = log.check(lines)
    assert not report.ok and not report.modified and report.computed_root is not None
    assert "pass --tiles" in report.details()[-1]
    located = log.check_tiles(lines)
    assert not located.ok and located.modified.items == [Modified(38, 37)]
    assert located.details()[0] == "line 38: seq 37 was modified"


def test_a_deleted_line_is_a_missing_seq(log: Log) -> None:
    lines = [x for i, x in enumerate(log.lines) if i != 5 and not 100 <= i < 120]
    report = log.check(lines)
    assert not report.ok and report.missing == [(5, 5), (100, 119)]
    assert report.missing_total == 21 and report.computed_root is None
    assert "missing: 21 seq(s): 5, 100-119" in report.details()


def test_the_last_lines_deleted_are_missing(log: Log) -> None:
    report = log.check(log.lines[:-2])
    assert report.missing == [(598, 599)]


def test_swapped_lines_are_out_of_order(log: Log) -> None:
    lines = list(log.lines)
    lines[6], lines[7] = lines[7], lines[6]
    report = log.check(lines)
    assert not report.ok and report.root_matches
    assert report.reordered.items == [Reordered(line=8, seq=6, after_line=7, after_seq=7)]
    assert log.check(lines, any_order=True).ok


def test_an_export_in_reverse_order_verifies_with_any_order(log: Log) -> None:
    report = log.check(log.lines[::-1], any_order=True)
    assert report.ok and report.reordered.total == 599


def test_a_truncated_line(log: Log) -> None:
    lines = list(log.lines)
    lines[9] = lines[9][:40]
    report = log.check(lines)
    assert [(b.line, b.kind) for b in report.bad_lines.items] == [(10, "truncated")]
    assert report.missing == [(9, 9)]


def test_a_file_cut_mid_line(log: Log) -> None:
    data = b"\n".join(log.lines)
    log.events_path.write_bytes(data[:-30])
    report = verify_export(log.events_path, log.checkpoint)
    assert [(b.line, b.kind) for b in report.bad_lines.items] == [(600, "truncated")]
    assert report.missing == [(599, 599)]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b"garbage", "not_json"),
        (b'{"seq": 1,}', "not_json"),
        (b"\xff\xfe{}", "not_json"),
        (b'{"a":"\x00"}', "nul"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b"{}", "bad_seq"),
        (b'{"seq": "5", "tenant_id": "acme"}', "bad_seq"),
        (b'{"seq": -1, "tenant_id": "acme"}', "bad_seq"),
        (b'{"seq": 5.0, "tenant_id": "acme"}', "bad_seq"),
        (b'{"seq": true, "tenant_id": "acme"}', "bad_seq"),
        (b'{"seq": 5, "tenant_id": "acme", "n": 9007199254740993}', "not_canonical"),
        (b'{"seq": 5, "tenant_id": "acme", "n": 123456789012345678901234567890}', "not_canonical"),
        (b" ", "empty"),
    ],
)
def test_lines_that_are_not_events(log: Log, line: bytes, kind: str) -> None:
    lines = [*log.lines[:3], line, *log.lines[3:]]
    report = log.check(lines)
    assert not report.ok
    assert [(b.line, b.kind) for b in report.bad_lines.items] == [(4, kind)]
    assert report.bad_lines.items[0].message in report.details()[0]


def test_a_line_too_long_is_not_read(log: Log) -> None:
    huge = b'{"seq": 3, "tenant_id": "acme", "pad": "' + b"x" * 5000 + b'"}'
    lines = [*log.lines[:3], huge, *log.lines[3:]]
    report = log.check(lines, max_line=4096)
    assert [(b.line, b.kind) for b in report.bad_lines.items] == [(4, "too_long")]
    assert "longer than 4,096 bytes" in report.bad_lines.items[0].message
    assert report.duplicates.total == 0  # the long line was never parsed


def test_a_huge_line_streams_past_in_bounded_memory(log: Log) -> None:
    huge = b"x" * (3 << 20)  # over one read chunk and over the limit
    report = log.check([*log.lines[:2], huge, *log.lines[2:]], max_line=1 << 16)
    assert [(b.line, b.kind) for b in report.bad_lines.items] == [(3, "too_long")]
    assert report.lines == 601 and report.root_matches


def test_duplicate_seqs_name_every_line(log: Log) -> None:
    lines = list(log.lines)
    lines.insert(8, lines[7])  # an identical copy
    lines.append(with_field(lines[20], action="forged"))  # seq 19, different
    report = log.check(lines)
    assert not report.ok
    assert report.duplicates.items == [Duplicate(7, [8, 9], True), Duplicate(19, [21, 602], False)]
    assert "seq 19: duplicated on lines 21, 602 (different contents)" in report.details()
    located = log.check_tiles(lines)
    assert located.modified.items == [Modified(602, 19)]


def test_another_tenants_event(log: Log) -> None:
    lines = list(log.lines)
    lines[12] = with_field(lines[12], tenant_id="globex")
    report = log.check(lines)
    assert report.foreign.items == [Foreign(13, 12, "globex")]
    assert report.missing == [(12, 12)]
    assert "line 13: seq 12 belongs to tenant 'globex', not 'acme'" in report.details()


def test_an_empty_events_file(log: Log) -> None:
    report = log.check([], end=b"")
    assert not report.ok and report.missing == [(0, 599)] and report.lines == 0


def test_findings_are_capped_but_counted(log: Log) -> None:
    report = log.check([b"garbage"] * 1000 + log.lines)
    assert report.bad_lines.total == 1000 and len(report.bad_lines.items) == MAX_LISTED
    assert any("and 900 more bad line(s)" in line for line in report.details())
    assert report.to_json()["bad_lines"]["count"] == 1000


def test_the_events_file_must_exist(log: Log) -> None:
    with pytest.raises(VerifyError, match="cannot read events file"):
        verify_export(log.directory / "nope.jsonl", log.checkpoint)
    with pytest.raises(VerifyError, match="is a directory"):
        verify_export(log.directory, log.checkpoint)


# ------------------------------------------------------------------ keys and checkpoints


def test_keys_load_from_strings_files_and_the_key_endpoint_json(log: Log) -> None:
    assert load_verifier(log.vkey).vkey == log.vkey
    assert load_verifier(str(log.vkey_path)).vkey == log.vkey
    as_json = log.directory / "key.json"
    as_json.write_bytes(orjson.dumps({"origin": "x", "key_name": "x", "vkey": log.vkey}))
    assert load_verifier(str(as_json)).vkey == log.vkey


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("garbage", "neither a file nor a verifier key"),
        ("a+b+c", "not 8 hex digits"),
        ("log.example/t/acme+00000000+AQ==", "Ed25519 key must be 32 bytes"),
        ("", "neither a file nor a verifier key"),
    ],
)
def test_garbage_keys_are_refused(key: str, message: str) -> None:
    with pytest.raises(VerifyError, match=message):
        load_verifier(key)


def test_a_private_key_is_refused_without_echoing_it(log: Log) -> None:
    with pytest.raises(VerifyError, match="private signer key") as caught:
        load_verifier(log.skey)
    assert log.skey.split("+", 4)[4] not in str(caught.value)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xff\xfe", b"{not json", b'{"no": 1}'])
def test_garbage_key_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(VerifyError):
        load_verifier(str(path))


def test_the_wrong_key_is_refused(log: Log, tmp_path: Path) -> None:
    _, same_name = generate_signer(log.checkpoint.origin)
    with pytest.raises(VerifyError, match=r"is not signed by key log\.example/t/acme"):
        load_checkpoint(log.checkpoint_path, parse_verifier(same_name))
    _, other_tenant = generate_signer(f"{HOST}/t/globex")
    with pytest.raises(VerifyError, match="wrong key, or a checkpoint of another log"):
        load_checkpoint(log.checkpoint_path, parse_verifier(other_tenant))


def test_a_tampered_checkpoint_is_refused(log: Log) -> None:
    verifier = parse_verifier(log.vkey)
    body, _, signature = log.note.partition("\n\n")
    bigger = body.replace("\n600\n", "\n601\n") + "\n\n" + signature
    with pytest.raises(VerifyError, match="does not verify: the checkpoint was altered"):
        open_checkpoint_bytes(bigger.encode(), verifier)
    sig = signature.split(" ")[-1]
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    with pytest.raises(VerifyError, match="does not verify"):
        open_checkpoint_bytes(log.note.replace(sig, flipped).encode(), verifier)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"garbage\n", "is not a signed note"),
        (b"\x00\x01\x02", "is not a signed note"),
        (b"{broken", "starts like JSON but is not JSON"),
        (b'{"origin": "x"}', 'JSON without a "note"'),
        (b"x" * 70_000, "over 64 KiB"),
    ],
)
def test_malformed_checkpoint_files_are_refused(log: Log, content: bytes, message: str) -> None:
    log.checkpoint_path.write_bytes(content)
    with pytest.raises(VerifyError, match=message):
        load_checkpoint(log.checkpoint_path, parse_verifier(log.vkey))


def test_a_signed_body_that_is_not_a_checkpoint_is_refused(log: Log) -> None:
    from trailkeep.integrity.note import sign_note

    note = sign_note(f"{log.checkpoint.origin}\nnot a size\nroot\n", parse_signer(log.skey))
    with pytest.raises(VerifyError, match="signed but not a valid checkpoint"):
        open_checkpoint_bytes(note.encode(), parse_verifier(log.vkey))


def test_the_checkpoint_json_of_the_api_is_accepted(log: Log) -> None:
    log.checkpoint_path.write_bytes(orjson.dumps({"origin": "x", "note": log.note}))
    assert load_checkpoint(log.checkpoint_path, parse_verifier(log.vkey)) == log.checkpoint


def test_a_missing_checkpoint_file(log: Log) -> None:
    with pytest.raises(VerifyError, match="cannot read checkpoint file"):
        load_checkpoint(log.directory / "nope", parse_verifier(log.vkey))


# ------------------------------------------------------------------ tiles


def test_forged_tiles_are_rejected_before_use(log: Log) -> None:
    tile = log.directory / tile_path(0, 1)
    data = bytearray(tile.read_bytes())
    data[5 * 32] ^= 1  # the leaf of seq 261, as a server hiding a change would forge it
    tile.write_bytes(bytes(data))
    lines = list(log.lines)
    lines[261] = with_field(lines[261], action="forged")
    report = log.check_tiles(lines)
    assert report.tiles is not None and report.tiles.status == "rejected"
    assert "do not hash to the checkpoint's root" in report.tiles.message
    assert not report.modified  # nothing is located from tiles that failed
    assert not report.ok
    # The tiles alone are enough to fail the check, even for an intact export.
    assert not log.check_tiles().ok


@pytest.mark.parametrize(
    ("damage", "status", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-1]), "rejected", "holds 8191 bytes"),
        (lambda p: p.unlink(), "unavailable", "not found"),
    ],
)
def test_broken_or_missing_tiles(log: Log, damage: Any, status: str, message: str) -> None:
    damage(log.directory / tile_path(0, 0))
    report = log.check_tiles()
    assert report.tiles is not None and report.tiles.status == status
    assert message in report.tiles.message and not report.ok


@pytest.mark.parametrize("grown_to", [600, 768])  # a wider partial tile 2, or a full one
def test_tiles_of_a_grown_log_serve_a_smaller_tree(tmp_path: Path, grown_to: int) -> None:
    log = build_log(tmp_path, grown_to, signed_size=530)  # tiles written for grown_to leaves
    assert not (log.directory / tile_path(0, 2, 18)).exists()
    lines = list(log.lines)
    lines[520] = with_field(lines[520], action="forged")
    report = log.check_tiles(lines[:530])
    assert report.tiles is not None and report.tiles.status == "verified"
    assert report.modified.items == [Modified(521, 520)]


def test_the_tile_directory_must_hold_tiles(log: Log) -> None:
    from trailkeep.integrity.verify_tiles import TileSourceError

    assert DirectoryTiles(log.directory / "tile").root == log.directory
    with pytest.raises(TileSourceError, match="holds no tile/ directory"):
        DirectoryTiles(log.directory / "nope")


def test_tiles_kept_as_digests_are_read_again_and_must_not_change(log: Log) -> None:
    fetch = DirectoryTiles(log.directory)
    tiles = check_tiles(600, log.checkpoint.root_hash, fetch, keep_tiles=0)
    assert tiles.leaf(300) == leaf_hash(log.lines[300])
    path = log.directory / tile_path(0, 0)
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(TileCheckError, match="changed between two reads"):
        tiles.leaf(3)


# ------------------------------------------------------------------ out-of-order storage


@pytest.mark.parametrize("sparse_limit", [1 << 20, 3])
def test_pending_leaves_sparse_and_dense(sparse_limit: int) -> None:
    pending = verify._Pending(sparse_limit)
    for seq in (9, 5, 7, 6, 12):
        pending.put(seq, bytes([seq]) * 32, base=2, size=14)
    assert (pending._sparse is None) == (sparse_limit == 3)
    assert 7 in pending and 8 not in pending and pending.count == 5
    assert pending.missing(2, 14) == ([(2, 4), (8, 8), (10, 11), (13, 13)], 7)
    assert pending.pop(5) == bytes([5]) * 32 and pending.pop(5) is None
    assert pending.count == 4


def test_pending_stays_sparse_where_dense_would_be_bigger() -> None:
    pending = verify._Pending(sparse_limit=3)
    for seq in range(10, 20):
        pending.put(seq, bytes(32), base=0, size=2**60)  # a huge log, a partial export
    assert pending.missing(0, 2**60) == ([(0, 9), (20, 2**60 - 1)], 2**60 - 10)


def test_a_gap_at_the_start_spills_to_dense_storage(log: Log, monkeypatch: Any) -> None:
    real = verify._Pending
    made: list[verify._Pending] = []
    monkeypatch.setattr(verify, "_Pending", lambda: made.append(real(10)) or made[-1])
    report = log.check(log.lines[1:])
    assert report.missing == [(0, 0)] and report.events == 599
    assert made[0]._sparse is None  # it went dense
    assert log.check([*log.lines[1:], log.lines[0]], any_order=True).ok
