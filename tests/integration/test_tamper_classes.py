"""Every tamper class is detected (issue 14's target), on both backends with a second
tenant: someone with write access to the database edits it under a running service,
and at least one of the service's own checks (the integrity scrub, the signer) or the
auditor's offline ``trailkeep verify`` of an export catches it, naming the tenant. The
other tenant keeps being signed. (A restored older backup: test_backup_restore.py; a
fork re-signed with forged tiles, which needs the signing key: the monitor's tests in
tests/e2e/test_verify_server.py.)"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import World, event
from tests.integration.test_integrity import wait_checkpoint

EVENTS = 12


def _body(conn: Any, seq: int) -> bytes:
    (body,) = conn.execute(
        "SELECT body FROM events WHERE tenant_id = 'acme' AND seq = ?", (seq,)
    ).fetchone()
    return bytes(body)


def _set_body(conn: Any, seq: int, body: bytes) -> None:
    conn.execute("UPDATE events SET body = ? WHERE tenant_id = 'acme' AND seq = ?", (body, seq))


def _delete(conn: Any, postgres: bool, seqs: list[int], tiles_from: int | None = None) -> None:
    tables = ("event_targets", "event_ids", "events") if postgres else ("event_targets", "events")
    for seq in seqs:
        for table in tables:
            conn.execute(f"DELETE FROM {table} WHERE tenant_id = 'acme' AND seq = ?", (seq,))
    if tiles_from is not None:  # truncate the tree too, as a careful forger would
        conn.execute("DELETE FROM merkle_tiles WHERE tenant_id = 'acme'")


def _insert_beyond(conn: Any, postgres: bool) -> None:
    """A copy of seq 3 written as seq 1000, past the tree, ids and all."""
    columns = (
        "tenant_id, seq, id, occurred_at, received_at, action, actor_id, actor_type,"
        " severity, outcome, request_hash, body"
    )
    row = list(
        conn.execute(
            f"SELECT {columns} FROM events WHERE tenant_id = 'acme' AND seq = 3"
        ).fetchone()
    )
    row[1], row[2] = 1000, "forged-1000"
    marks = ",".join("?" * len(row))
    conn.execute(f"INSERT INTO events ({columns}) VALUES ({marks})", row)
    if postgres:
        conn.execute(
            "INSERT INTO event_ids (tenant_id, seq, id, occurred_at) VALUES (?, ?, ?, ?)",
            (row[0], row[1], row[2], row[3]),
        )


def _tamper(kind: str, postgres: bool) -> Any:
    def apply(conn: Any) -> None:
        if kind == "edit":
            _set_body(conn, 5, _body(conn, 5).replace(b'"m5"', b'"mX"'))
        elif kind == "delete":
            _delete(conn, postgres, [5])
        elif kind == "swap":
            five, six = _body(conn, 5), _body(conn, 6)
            _set_body(conn, 5, six)
            _set_body(conn, 6, five)
        elif kind == "insert":
            _insert_beyond(conn, postgres)
        elif kind == "truncate":
            _delete(conn, postgres, list(range(8, EVENTS)), tiles_from=8)

    return apply


@pytest.mark.settings(scrub_events_per_second=5000)
@pytest.mark.parametrize("kind", ["edit", "delete", "swap", "insert", "truncate"])
def test_each_tamper_class_is_caught_and_stops_signing(world: World, kind: str) -> None:
    for i in range(EVENTS):
        assert world.post("acme", event(id=f"e{i}", message=f"m{i}")).status_code == 201
    wait_checkpoint(world, EVENTS, "acme")
    store = world.client.app.state.services.store  # type: ignore[attr-defined]
    signer = world.client.app.state.signer  # type: ignore[attr-defined]
    world.client.portal.call(store._write, _tamper(kind, store.postgres))  # type: ignore[union-attr]
    if kind != "insert":
        # one more event, so that the signer has something to refuse
        world.post("acme", event(id="after", message="after"))
    deadline = time.monotonic() + 15
    while "acme" not in signer.faults and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "acme" in signer.faults, f"{kind}: not detected"
    ready = world.client.get("/readyz").json()["integrity"]
    assert "acme" in ready["signing_stopped"]
    # Once found, nothing more is signed for acme (a checkpoint signed in the moment
    # before the scrub came by commits to the intact leaves, not to the edit).
    found_at = world.client.get("/v1/checkpoint", headers=world.h("acme", "reader")).json()
    assert found_at["signing_stopped"]
    world.post("acme", event(id="later", message="later"))
    time.sleep(0.3)
    r = world.client.get("/v1/checkpoint", headers=world.h("acme", "reader"))
    assert r.json()["tree_size"] == found_at["tree_size"] <= EVENTS + 1
    assert world.post("globex", event(id="g-after")).status_code == 201
    world.globex_ids.append("g-after")
    wait_checkpoint(world, 6, "globex")
