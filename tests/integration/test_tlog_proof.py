"""An auditor's receipt (issue 14 item 9), on both backends with a second tenant present:
``GET /v1/events/{id}/proof?format=tlog-proof`` is a C2SP tlog-proof that ``trailkeep
verify --proof`` accepts offline, and every alteration of it fails: a flipped bit in a
hash, the event changed, another index, another tenant's key or checkpoint."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.conftest import World, event
from trailkeep.cli import app as cli_app
from trailkeep.integrity.tlog_proof import HEADER


def _receipt(
    world: World, event_id: str, tenant: str = "acme", wait: float = 20, **params: Any
) -> Any:
    deadline = time.monotonic() + wait
    while True:
        r = world.client.get(
            f"/v1/events/{event_id}/proof",
            params={"format": "tlog-proof", **params},
            headers=world.h(tenant, "reader"),
        )
        if r.status_code != 404 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)  # not in a checkpoint yet


def _verify(tmp: Path, text: str, vkey: str, *extra: str) -> Any:
    path = tmp / f"r{len(list(tmp.iterdir()))}.tlog-proof"
    path.write_text(text)
    return CliRunner().invoke(cli_app, ["verify", "--proof", str(path), "--key", vkey, *extra])


def test_a_receipt_verifies_offline_and_any_change_fails(world: World, tmp_path: Path) -> None:
    for i in range(7):
        assert world.post("acme", event(id=f"e{i}", message=f"m{i}")).status_code == 201
    r = _receipt(world, "e5")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    lines = text.split("\n")
    assert lines[0] == HEADER and lines[1].startswith("extra ") and lines[2] == "index 5"
    vkey = world.client.get("/v1/integrity/key", headers=world.h("acme", "reader")).json()["vkey"]
    ok = _verify(tmp_path, text, vkey)
    assert ok.exit_code == 0 and "entry 5" in ok.output, ok.output

    # a flipped bit in a proof hash
    first_hash = base64.b64decode(lines[3])
    flipped = base64.b64encode(bytes([first_hash[0] ^ 1]) + first_hash[1:]).decode()
    bad = _verify(tmp_path, text.replace(lines[3], flipped, 1), vkey)
    assert bad.exit_code == 1 and "not in the log" in bad.output
    # the event changed (its message), keeping the proof
    stored = base64.b64decode(lines[1][6:]).replace(b'"m5"', b'"mX"')
    changed = text.replace(lines[1], "extra " + base64.b64encode(stored).decode(), 1)
    assert _verify(tmp_path, changed, vkey).exit_code == 1
    # another index
    assert _verify(tmp_path, text.replace("index 5", "index 4", 1), vkey).exit_code == 1
    assert _verify(tmp_path, text.replace("index 5", "index 05", 1), vkey).exit_code == 1
    # the checkpoint's signature altered
    assert _verify(tmp_path, text[:-10] + "AAAAAAAAA\n", vkey).exit_code == 1
    # another tenant's key does not accept acme's receipt
    assert world.post("globex", event(id="g-x")).status_code == 201
    world.globex_ids.append("g-x")
    gkey = world.client.get("/v1/integrity/key", headers=world.h("globex", "reader")).json()
    assert _verify(tmp_path, text, gkey["vkey"]).exit_code == 1
    # another tenant cannot fetch acme's event's receipt
    assert _receipt(world, "e5", tenant="globex", wait=0).status_code == 404
    # a size that is not a checkpoint cannot carry a signed checkpoint
    sizes = world.client.get("/v1/checkpoints", headers=world.h("acme", "reader")).json()
    checkpointed = {c["tree_size"] for c in sizes["data"]}
    unsigned = (
        next(n for n in range(6, 8) if n not in checkpointed) if len(checkpointed) < 2 else None
    )
    if unsigned is not None:
        r = _receipt(world, "e5", size=unsigned)
        assert r.status_code == 400 and "checkpointed" in r.text
    # a receipt without the event, with the event given separately
    bare = "\n".join(line for line in lines if not line.startswith("extra "))
    (tmp_path / "e5.json").write_bytes(base64.b64decode(lines[1][6:]))
    assert _verify(tmp_path, bare, vkey, "--event", str(tmp_path / "e5.json")).exit_code == 0
    assert _verify(tmp_path, bare, vkey).exit_code == 1
    # garbage is a clear failure, never OK
    assert _verify(tmp_path, "not a proof\n\nx", vkey).exit_code == 1
