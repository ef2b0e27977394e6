"""The server audits itself (issue 14 item 5), on both backends with a second tenant:
the scrubber re-hashes stored events against the tree, raises an alarm naming the
tenant and seqs for an edited body or a deleted row, shows it on /readyz, and the
tenant is never signed again while the other tenant goes on."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import World, event
from tests.integration.test_integrity import wait_checkpoint


def _alarm(world: World) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found: dict[str, Any] = world.client.get("/readyz").json()["integrity"]
        if found["scrub"]["alarms"]:
            return found
        time.sleep(0.05)
    raise AssertionError("no integrity alarm")


@pytest.mark.settings(scrub_events_per_second=5000)
@pytest.mark.parametrize("tamper", ["edit", "delete"])
def test_a_tampered_row_stops_signing_and_is_named(world: World, tamper: str) -> None:
    for i in range(12):
        assert world.post("acme", event(id=f"e{i}", message=f"m{i}")).status_code == 201
    wait_checkpoint(world, 12, "acme")
    healthy = world.client.get("/readyz").json()["integrity"]
    assert healthy["scrub"]["alarms"] == {} and healthy["signing_stopped"] == {}
    store = world.client.app.state.services.store  # type: ignore[attr-defined]

    def edit(conn: Any) -> None:
        if tamper == "edit":
            (body,) = conn.execute(
                "SELECT body FROM events WHERE tenant_id = ? AND seq = 7", ("acme",)
            ).fetchone()
            conn.execute(
                "UPDATE events SET body = ? WHERE tenant_id = ? AND seq = 7",
                (bytes(body).replace(b'"m7"', b'"mX"'), "acme"),
            )
        else:
            for table in (
                ("event_targets", "event_ids", "events")
                if store.postgres
                else (
                    "event_targets",
                    "events",
                )
            ):
                conn.execute(f"DELETE FROM {table} WHERE tenant_id = ? AND seq = 7", ("acme",))

    world.client.portal.call(store._write, edit)  # type: ignore[union-attr]
    found = _alarm(world)
    alarm = found["scrub"]["alarms"]["acme"]
    assert "seqs 7" in alarm or "no stored event: 7" in alarm, alarm
    assert "acme" in found["signing_stopped"]
    assert "globex" not in found["scrub"]["alarms"]
    # nothing is signed for acme any more; globex goes on
    assert world.post("acme", event(id="after")).status_code == 201
    assert world.post("globex", event(id="g-after")).status_code == 201
    world.globex_ids.append("g-after")
    wait_checkpoint(world, 6, "globex")
    time.sleep(0.3)
    r = world.client.get("/v1/checkpoint", headers=world.h("acme", "reader"))
    assert r.json()["tree_size"] == 12
