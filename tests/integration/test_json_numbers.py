"""Every accepted event survives parse -> canonicalise -> parse unchanged, in Python and
in JavaScript, and an honest log always verifies (issue 14 item 1), on both backends.

The I-JSON rule: a number of magnitude beyond 2**53-1, integer or not, is a 422 naming
its field (RFC 8785 would write 5.2775053738783674e+17 as 527750537387836740, which
ordinary parsers read as an inexact integer). Hypothesis sends arbitrary free-form
metadata; the stored lines are then re-canonicalised by Node.js (JSON.parse, then
RFC 8785's serialisation, which is ECMAScript's JSON.stringify with sorted keys) and by
``trailkeep verify`` against the signed checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import World, event
from trailkeep.cli import app as cli_app

SAFE = 2**53 - 1
EXAMPLES = 250
PER_BATCH = 50  # 250 batches of 40 to 50: over 10,000 events per backend

_NODE_JCS = r"""
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
const jcs = (v) => Array.isArray(v) ? "[" + v.map(jcs).join(",") + "]"
  : v !== null && typeof v === "object"
    ? "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + jcs(v[k])).join(",") + "}"
    : JSON.stringify(v);
let bad = 0;
for (const line of lines) { if (jcs(JSON.parse(line)) !== line) { bad++; console.log(line); } }
console.log(JSON.stringify({lines: lines.length, bad}));
"""

_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-SAFE, SAFE),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-SAFE, max_value=SAFE),
    st.floats(allow_nan=False, allow_infinity=False, width=32, min_value=-1e6, max_value=1e6),
    _text,
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=8,
)


@pytest.mark.parametrize(
    "number", [b"5.2775053738783674e+17", b"9007199254740992.0", b"-1e16", b"1.5e300"]
)
def test_numbers_beyond_the_exact_range_are_refused_by_field(world: World, number: bytes) -> None:
    body = b'{"action": "a.b", "actor": {"id": "u"}, "metadata": {"deep": [1, ' + number + b"]}}"
    r = world.client.post(
        "/v1/events",
        content=body,
        headers={**world.h("acme", "writer"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["loc"] == ["metadata", "deep", 1]
    batch = b'{"events": [' + body + b', {"action": "a.b", "actor": {"id": "u"}}]}'
    r = world.client.post(
        "/v1/events/batch",
        content=batch,
        headers={**world.h("acme", "writer"), "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    assert r.json()["results"][0]["error"]["details"][0]["loc"] == [
        "events",
        0,
        "metadata",
        "deep",
        1,
    ]


def test_every_accepted_body_round_trips_and_verifies(world: World, tmp_path: Path) -> None:
    posted: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(st.dictionaries(_text, _json, max_size=3), min_size=40, max_size=PER_BATCH))
    def post(metadatas: list[dict[str, Any]]) -> None:
        events = [event("json.fuzz", "u1", metadata=m) for m in metadatas]
        r = world.client.post(
            "/v1/events/batch", json={"events": events}, headers=world.h("acme", "writer")
        )
        assert r.status_code == 200, r.text
        rejected = [i for i in r.json()["results"] if i["status"] == "rejected"]
        assert not rejected, rejected  # every generated body is within the rules
        posted.append(len(events))

    post()
    total = sum(posted)
    assert total >= 10_000
    # the stored lines, in seq order, byte for byte, and the checkpoint that covers them
    stored = _stored_lines(world, total)
    node = subprocess.run(
        ["node", "-e", _NODE_JCS], input=b"\n".join(stored), capture_output=True, timeout=120
    )
    summary = json.loads(node.stdout.decode().strip().splitlines()[-1])
    assert summary == {"lines": total, "bad": 0}, node.stdout.decode()[:2000]
    checkpoint = _checkpoint(world, total)
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(stored) + b"\n")
    (tmp_path / "checkpoint.txt").write_text(checkpoint)
    vkey = world.client.get("/v1/integrity/key", headers=world.h("acme", "reader")).json()["vkey"]
    result = CliRunner().invoke(
        cli_app,
        ["verify", str(tmp_path / "events.jsonl"), "--checkpoint", str(tmp_path / "checkpoint.txt"),
         "--key", vkey],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


class _Page(msgspec.Struct):
    data: list[msgspec.Raw]  # each event's bytes exactly as the server spliced them in
    next_cursor: str | None


def _stored_lines(world: World, total: int) -> list[bytes]:
    """The stored bodies byte for byte (``form=stored`` pages splice them in as they
    are stored), in seq order."""
    out: list[bytes] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, "form": "stored"}
        if cursor:
            params["cursor"] = cursor
        r = world.client.get("/v1/events", params=params, headers=world.h("acme", "reader"))
        page = msgspec.json.decode(r.content, type=_Page)
        out += [bytes(raw) for raw in page.data]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(out) == total
    return sorted(out, key=lambda line: json.loads(line)["seq"])


def _checkpoint(world: World, size: int) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = world.client.get("/v1/checkpoint", headers=world.h("acme", "reader"))
        if r.status_code == 200 and r.json()["tree_size"] >= size:
            note: str = r.json()["note"]
            return note
        time.sleep(0.05)
    raise AssertionError("no checkpoint covers the events")
