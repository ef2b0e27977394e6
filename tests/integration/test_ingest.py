"""Ingest through the HTTP app: one event, batches, idempotency, seqs, normalisation."""

from __future__ import annotations

from tests.conftest import World, event


def test_single_event_is_stored_and_normalised(world: World) -> None:
    r = world.post(
        "acme",
        event(
            "document.update",
            occurred_at="2026-03-01T10:00:00+02:00",
            severity="high",
            targets=[{"type": "document", "id": "d1", "name": "Plan"}],
            context={"ip_address": "2001:db8::1", "request_id": "r1"},
            changes={"before": {"t": 1}, "after": {"t": 2}},
            metadata={"plan": "pro", "n": 3},
        ),
    )
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["tenant_id"] == "acme"
    assert stored["seq"] == 0
    assert stored["occurred_at"] == "2026-03-01T08:00:00.000000Z"
    assert stored["received_at"].endswith("Z") and len(stored["received_at"]) == 27
    assert stored["severity"] == "ERROR"
    assert stored["outcome"] == "success"
    assert stored["actor"] == {"id": "u1", "type": "user"}
    assert stored["targets"] == [{"type": "document", "id": "d1", "name": "Plan"}]
    got = world.client.get(f"/v1/events/{stored['id']}", headers=world.h("acme", "reader"))
    assert got.status_code == 200
    assert got.json() == stored


def test_seqs_are_per_tenant_and_gapless(world: World) -> None:
    seqs = [world.post("acme", event(message=str(i))).json()["seq"] for i in range(7)]
    assert seqs == list(range(7))
    r = world.client.post(
        "/v1/events/batch",
        json={"events": [event(message=str(i)) for i in range(10)]},
        headers=world.h("acme", "writer"),
    )
    assert [item["seq"] for item in r.json()["results"]] == list(range(7, 17))


def test_idempotent_retry_returns_stored_event(world: World) -> None:
    body = event(id="order-77", message="first")
    first = world.post("acme", body)
    again = world.post("acme", body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(world.all_events("acme")) == 1


def test_same_id_other_body_is_409(world: World) -> None:
    assert world.post("acme", event(id="k1", message="a")).status_code == 201
    r = world.post("acme", event(id="k1", message="b"))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_conflict"
    assert [e["message"] for e in world.all_events("acme")] == ["a"]


def test_same_id_in_two_tenants_is_two_events(world: World) -> None:
    r = world.post("acme", event(id="globex-0"))
    assert r.status_code == 201
    assert r.json()["tenant_id"] == "acme"


def test_batch_answers_item_by_item(world: World) -> None:
    world.post("acme", event(id="dup", message="x"))
    r = world.client.post(
        "/v1/events/batch",
        json={
            "events": [
                event(id="new-1"),
                {"action": "bad action", "actor": {"id": "u"}},
                event(id="dup", message="x"),
                event(id="dup", message="changed"),
                event(id="new-2", resource_type="invoice", resource_id="inv-1"),
                event(id="new-1"),
            ]
        },
        headers=world.h("acme", "writer"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    statuses = [item["status"] for item in body["results"]]
    assert statuses == ["created", "rejected", "duplicate", "conflict", "created", "duplicate"]
    assert body["results"][1]["error"]["details"][0]["loc"] == ["events", 1, "action"]
    assert body["created"] == 2 and body["duplicates"] == 2 and body["rejected"] == 2
    stored = {e["id"]: e for e in world.all_events("acme")}
    assert set(stored) == {"dup", "new-1", "new-2"}
    assert stored["new-2"]["targets"] == [{"type": "invoice", "id": "inv-1"}]


def test_batch_limits(world: World) -> None:
    too_many = {"events": [event() for _ in range(1001)]}
    r = world.client.post("/v1/events/batch", json=too_many, headers=world.h("acme", "writer"))
    assert r.status_code == 413
    big = {"events": [event(message="x" * 8000) for _ in range(700)]}  # > 5 MiB
    r = world.client.post("/v1/events/batch", json=big, headers=world.h("acme", "writer"))
    assert r.status_code == 413
    r = world.client.post(
        "/v1/events/batch", json={"events": []}, headers=world.h("acme", "writer")
    )
    assert r.status_code == 422
    assert world.all_events("acme") == []


def test_full_batch_of_1000_is_accepted(world: World) -> None:
    batch = {"events": [event(message=f"m{i}") for i in range(1000)]}
    r = world.client.post("/v1/events/batch", json=batch, headers=world.h("acme", "writer"))
    assert r.status_code == 200 and r.json()["created"] == 1000
    assert len(world.all_events("acme")) == 1000


def test_platform_admin_names_the_tenant(world: World) -> None:
    r = world.client.post("/v1/events", json=event(tenant_id="acme"), headers=world.admin)
    assert r.status_code == 201 and r.json()["tenant_id"] == "acme"
    r = world.client.post("/v1/events", json=event(), headers=world.admin)
    assert r.status_code == 400
    r = world.client.post("/v1/events", json=event(tenant_id="nope"), headers=world.admin)
    assert r.status_code == 404


def test_tenant_key_cannot_write_into_another_tenant(world: World) -> None:
    r = world.post("acme", event(tenant_id="globex"))
    assert r.status_code == 403
    r = world.post("acme", event(tenant_id="acme"))
    assert r.status_code == 201


def test_an_event_near_the_size_limit_round_trips(world: World) -> None:
    big = {f"k{i}": "v" * 60 for i in range(200)}  # ~13 KB of metadata
    body = event(message="m" * 8000, metadata=big, changes={"before": big, "after": {}})
    r = world.post("acme", body)
    assert r.status_code == 201, r.text
    got = world.client.get(f"/v1/events/{r.json()['id']}", headers=world.h("acme", "reader"))
    assert got.json()["metadata"] == big and got.json()["message"] == "m" * 8000
    assert len(got.content) > 30_000
