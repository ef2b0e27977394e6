"""The monitor (integrity/monitor.py) against a fake log server on httpx.MockTransport.

The fake serves real signed checkpoints and real consistency proofs of real trees, so
every verdict (grew, unchanged, shrank, forked, rewritten) comes from the actual
cryptography; every way the server can fail to answer must end as MonitorError.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.unit.integrity.verify_log import (
    ORIGIN,
    FakeLog,
    Handler,
    Log,
    build_log,
    leaves,
    with_field,
)
from trailkeep.integrity.checkpoint import Checkpoint, sign_checkpoint
from trailkeep.integrity.monitor import (
    HttpTiles,
    LogClient,
    MonitorError,
    MonitorResult,
    monitor,
    write_atomic,
)
from trailkeep.integrity.note import generate_signer, parse_signer, parse_verifier
from trailkeep.integrity.verify import verify_export
from trailkeep.integrity.verify_inputs import VerifyError
from trailkeep.integrity.verify_report import Modified
from trailkeep.integrity.verify_tiles import TileSourceError
from trailkeep.kit.tiles import tile_path

SERVER = "https://log.example"


@pytest.fixture
def keys() -> tuple[str, str]:
    return generate_signer(ORIGIN)


@pytest.fixture
def fake(keys: tuple[str, str]) -> FakeLog:
    return FakeLog(keys[0], leaves(25))


def run(fake: FakeLog, since: Path, vkey: str, **kwargs: Any) -> MonitorResult:
    """``monitor`` through a LogClient on the fake; api_key and tenant go to the client."""
    api_key, tenant = kwargs.pop("api_key", None), kwargs.pop("tenant", None)
    transport = httpx.MockTransport(fake)
    with LogClient(SERVER, transport=transport, api_key=api_key, tenant=tenant) as client:
        return monitor(client, since, parse_verifier(vkey), tenant=tenant, **kwargs)


def saved_at(fake: FakeLog, tmp_path: Path, size: int) -> Path:
    path = tmp_path / "saved.txt"
    path.write_text(fake.note(size))
    return path


# ------------------------------------------------------------------ verdicts


def test_first_use_needs_init(fake: FakeLog, keys: tuple[str, str], tmp_path: Path) -> None:
    since = tmp_path / "saved.txt"
    with pytest.raises(VerifyError, match="run once with --init"):
        run(fake, since, keys[1])
    result = run(fake, since, keys[1], init=True)
    assert result.ok and result.status == "initialized" and result.updated
    assert since.read_text() == fake.note() and result.new.size == 25
    assert result.to_json()["old"] is None


def test_a_grown_log_is_ok_and_update_saves_it(
    fake: FakeLog, keys: tuple[str, str], tmp_path: Path
) -> None:
    since = saved_at(fake, tmp_path, 10)
    result = run(fake, since, keys[1])
    assert result.ok and result.status == "ok" and not result.updated
    assert result.message == "the log grew from 10 to 25 events, append-only"
    assert since.read_text() == fake.note(10)  # without --update nothing is written
    assert run(fake, since, keys[1], update=True).updated
    assert since.read_text() == fake.note(25)
    assert [p.name for p in tmp_path.iterdir()] == ["saved.txt"]  # no temporary left
    again = run(fake, since, keys[1], update=True)
    assert again.ok and again.message == "unchanged at size 25" and not again.updated


@pytest.mark.parametrize("old", [0, 1, 16, 24])
def test_every_old_size_is_checked(
    fake: FakeLog, keys: tuple[str, str], tmp_path: Path, old: int
) -> None:
    assert run(fake, saved_at(fake, tmp_path, old), keys[1]).ok


def test_a_log_that_shrank(fake: FakeLog, keys: tuple[str, str], tmp_path: Path) -> None:
    since = saved_at(fake, tmp_path, 25)
    fake.leaves = fake.leaves[:20]
    result = run(fake, since, keys[1], update=True)
    assert not result.ok and result.status == "shrunk" and not result.updated
    assert "the log shrank" in result.message and since.read_text().split("\n")[1] == "25"


def test_a_fork_at_the_same_size(fake: FakeLog, keys: tuple[str, str], tmp_path: Path) -> None:
    since = saved_at(fake, tmp_path, 25)
    fake.leaves = leaves(25, salt=b"other")
    result = run(fake, since, keys[1])
    assert result.status == "forked" and "two different signed roots" in result.message


def test_a_rewritten_history(fake: FakeLog, keys: tuple[str, str], tmp_path: Path) -> None:
    since = saved_at(fake, tmp_path, 10)
    fake.leaves = [*fake.leaves[:3], leaves(1, b"x")[0], *fake.leaves[4:]]
    result = run(fake, since, keys[1], update=True)
    assert result.status == "inconsistent" and not result.ok and not result.updated
    assert "does not extend the saved checkpoint" in result.message


# ------------------------------------------------------------------ the server misbehaves


def _answer(status: int, body: bytes | str = b"", **headers: str) -> Handler:
    return lambda request: httpx.Response(status, content=body, headers=headers)


@pytest.mark.parametrize(
    ("path", "handler", "message"),
    [
        (
            "/v1/checkpoint",
            _answer(404, b'{"error": {"code": "not_found", "message": "no checkpoint yet"}}'),
            "HTTP 404 not_found: no checkpoint yet",
        ),
        ("/v1/checkpoint", _answer(401, b"{}"), "pass --api-key or set TRAILKEEP_API_KEY"),
        ("/v1/checkpoint", _answer(500, b"boom"), "HTTP 500: 'boom'"),
        ("/v1/checkpoint", _answer(200, b"x" * (2 << 20)), "the answer is over"),
        ("/v1/proofs/consistency", _answer(400, b""), "HTTP 400"),
        ("/v1/proofs/consistency", _answer(200, b"[1]"), 'no "proof" list'),
        ("/v1/proofs/consistency", _answer(200, b"<html>"), "not JSON"),
        ("/v1/proofs/consistency", _answer(200, b'{"proof": ["!!"]}'), "not valid base64"),
        ("/v1/proofs/consistency", _answer(200, b'{"proof": ["AAAA"]}'), "3 bytes, want 32"),
        ("/v1/proofs/consistency", _answer(200, b'{"proof": []}'), "proof is malformed"),
        (
            "/v1/proofs/consistency",
            _answer(200, b'{"from": 1, "to": 25, "proof": []}'),
            "got one from 1 to 25",
        ),
    ],
)
def test_bad_answers_are_errors_not_verdicts(
    fake: FakeLog,
    keys: tuple[str, str],
    tmp_path: Path,
    path: str,
    handler: Handler,
    message: str,
) -> None:
    fake.routes[path] = handler
    with pytest.raises(MonitorError, match=re.escape(message)):
        run(fake, saved_at(fake, tmp_path, 10), keys[1])


def test_an_unreachable_server(fake: FakeLog, keys: tuple[str, str], tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    fake.routes["/v1/checkpoint"] = refuse
    with pytest.raises(MonitorError, match=r"cannot fetch .*Connection refused"):
        run(fake, saved_at(fake, tmp_path, 10), keys[1])


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"garbage", "is not a signed note"), (b"{}", 'JSON without a "note"')],
)
def test_a_garbage_checkpoint(
    fake: FakeLog, keys: tuple[str, str], tmp_path: Path, body: bytes, message: str
) -> None:
    fake.routes["/v1/checkpoint"] = _answer(200, body)
    with pytest.raises(VerifyError, match=message):
        run(fake, saved_at(fake, tmp_path, 10), keys[1])


def test_a_checkpoint_signed_by_another_key(keys: tuple[str, str], tmp_path: Path) -> None:
    impostor = FakeLog(generate_signer(ORIGIN)[0], leaves(25))
    since = tmp_path / "saved.txt"
    since.write_text(FakeLog(keys[0], leaves(25)).note(10))
    with pytest.raises(VerifyError, match="is not signed by key"):
        run(impostor, since, keys[1])
    with pytest.raises(VerifyError, match="is not signed by key"):
        run(impostor, tmp_path / "new.txt", keys[1], init=True)  # not even on first use
    assert not (tmp_path / "new.txt").exists()


def test_a_saved_checkpoint_of_another_log(fake: FakeLog, tmp_path: Path) -> None:
    skey, _ = generate_signer("log.example/t/globex")
    other = tmp_path / "saved.txt"
    checkpoint = Checkpoint("log.example/t/globex", 3, b"\0" * 32)
    other.write_text(sign_checkpoint(checkpoint, parse_signer(skey)))
    _, acme_vkey = generate_signer(ORIGIN)
    with pytest.raises(VerifyError, match="is not signed by key log"):
        run(fake, other, acme_vkey)


def test_the_json_checkpoint_is_accepted_and_saved_as_the_note(
    fake: FakeLog, keys: tuple[str, str], tmp_path: Path
) -> None:
    body = orjson.dumps({"origin": ORIGIN, "tree_size": 25, "note": fake.note()})
    fake.routes["/v1/checkpoint"] = _answer(200, body, **{"Content-Type": "application/json"})
    since = tmp_path / "saved.txt"
    assert run(fake, since, keys[1], init=True).ok
    assert since.read_text() == fake.note()


def test_requests_carry_the_api_key_and_tenant(
    fake: FakeLog, keys: tuple[str, str], tmp_path: Path
) -> None:
    run(fake, saved_at(fake, tmp_path, 10), keys[1], api_key="tk_secret", tenant="acme")
    # the note, the proof, then the checkpoint's JSON for how current it is (freshness)
    assert [r.url.path for r in fake.requests] == [
        "/v1/checkpoint",
        "/v1/proofs/consistency",
        "/v1/checkpoint",
    ]
    assert all(r.headers["Authorization"] == "Bearer tk_secret" for r in fake.requests)
    assert all(r.url.params["tenant_id"] == "acme" for r in fake.requests)
    assert fake.requests[0].headers["Accept"] == "text/plain"
    assert fake.requests[2].headers["Accept"] == "application/json"
    with pytest.raises(VerifyError, match="not --tenant 'globex'"):
        run(fake, saved_at(fake, tmp_path, 10), keys[1], tenant="globex")


def test_write_atomic_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old")
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["f"]
    with pytest.raises(OSError):
        write_atomic(tmp_path / "missing-dir" / "f", b"x")


# ------------------------------------------------------------------ tiles over HTTP


def _tile_server(log: Log) -> Handler:
    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/boom/tile/0/000":
            return httpx.Response(503, text="down")
        path = log.directory / request.url.path.removeprefix("/log/")
        if not path.is_file():
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "-"}})
        return httpx.Response(200, content=path.read_bytes())

    return serve


def test_http_tiles_locate_a_modified_event(tmp_path: Path) -> None:
    log = build_log(tmp_path, 300)
    lines = list(log.lines)
    lines[280] = with_field(lines[280], action="forged")
    tiles = HttpTiles(f"{SERVER}/log", transport=httpx.MockTransport(_tile_server(log)))
    report = verify_export(log.write(lines), log.checkpoint, tiles=tiles, tiles_label="http")
    assert report.tiles is not None and report.tiles.status == "verified"
    assert report.modified.items == [Modified(281, 280)]
    assert tiles(0, 9, 256) is None


def test_http_tiles_errors(tmp_path: Path) -> None:
    log = build_log(tmp_path, 300)
    tiles = HttpTiles(f"{SERVER}/boom/", transport=httpx.MockTransport(_tile_server(log)))
    with pytest.raises(TileSourceError, match="HTTP 503: 'down'"):
        tiles(0, 0, 256)
    report = verify_export(log.events_path, log.checkpoint, tiles=tiles, tiles_label="u")
    assert report.tiles is not None and report.tiles.status == "unavailable"
    assert not report.ok
    assert tile_path(0, 0) in report.tiles.message
