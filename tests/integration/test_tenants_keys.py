"""Tenants CRUD (platform admins) and per-tenant API keys (tenant admins)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import GLOBEX_SECRET, World, auth, event, make_settings, seed_keys
from trailkeep.app import create_app

TENANT_FIELDS = {
    "id",
    "display_name",
    "retention_days",
    "legal_hold",
    "legal_hold_info",
    "retention",
    "privacy",
    "created_at",
    "updated_at",
}
KEY_FIELDS = {"id", "tenant_id", "role", "name", "created_at", "revoked_at", "last_used_at"}
NON_ADMIN_ROLES = ("tenant_admin", "writer", "reader")


def create_tenant(world: World, tenant_id: str, **fields: Any) -> dict[str, Any]:
    r = world.client.post("/v1/tenants", json={"id": tenant_id, **fields}, headers=world.admin)
    assert r.status_code == 201, r.text
    return r.json()


def keys_url(tenant: str, key: str = "") -> str:
    return f"/v1/tenants/{tenant}/api-keys" + (f"/{key}" if key else "")


def key_id(token: str) -> str:
    return token.split("_")[1]


def flush_key_usage(world: World) -> None:
    world.client.portal.call(world.client.app.state.services.auth.flush_last_used)


# -- tenants ------------------------------------------------------------------------------


def test_create_and_get_tenant(world: World) -> None:
    created = create_tenant(world, "initech", display_name="Initech", retention_days=90)
    assert set(created) == TENANT_FIELDS
    assert created["id"] == "initech" and created["display_name"] == "Initech"
    assert created["retention_days"] == 90 and created["legal_hold"] is False
    assert created["created_at"].endswith("Z")
    got = world.client.get("/v1/tenants/initech", headers=world.admin)
    assert got.status_code == 200 and got.json() == created
    plain = create_tenant(world, "hooli")
    assert plain["display_name"] == "hooli" and plain["retention_days"] is None


def test_duplicate_tenant_is_409(world: World) -> None:
    for tenant in ("acme", "globex"):
        r = world.client.post("/v1/tenants", json={"id": tenant}, headers=world.admin)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "conflict"
    got = world.client.get("/v1/tenants/acme", headers=world.admin).json()
    assert got["display_name"] == "Acme"


@pytest.mark.parametrize(
    "bad",
    ["Acme", "-acme", "_x", "a b", "", "a/b", "../etc", "a" * 64, "acmé", "a\u0000", 42, None],
)
def test_bad_tenant_id_is_422(world: World, bad: Any) -> None:
    r = world.client.post("/v1/tenants", json={"id": bad}, headers=world.admin)
    assert r.status_code == 422, r.text
    assert ["body", "id"] in [d["loc"] for d in r.json()["error"]["details"]]
    listed = world.client.get("/v1/tenants", headers=world.admin).json()["data"]
    assert [t["id"] for t in listed] == ["acme", "globex"]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "ok", "retention_days": 0},
        {"id": "ok", "retention_days": 36_501},
        {"id": "ok", "legal_hold": "yes please"},
        {"id": "ok", "display_name": ""},
        {"id": "ok", "owner": "me"},
    ],
)
def test_bad_tenant_settings_are_422(world: World, body: dict[str, Any]) -> None:
    assert world.client.post("/v1/tenants", json=body, headers=world.admin).status_code == 422
    assert world.client.get("/v1/tenants/ok", headers=world.admin).status_code == 404


def test_list_tenants_with_cursor_paging(world: World) -> None:
    new = [f"t{i:02d}" for i in range(7)]
    for tenant in reversed(new):
        create_tenant(world, tenant)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = world.client.get("/v1/tenants", params=params, headers=world.admin)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["data"]) <= 3
        seen += [t["id"] for t in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(["acme", "globex", *new])
    assert pages >= 3
    r = world.client.get("/v1/tenants", params={"limit": 0}, headers=world.admin)
    assert r.status_code == 422


def test_patch_tenant_settings(world: World) -> None:
    before = world.client.get("/v1/tenants/acme", headers=world.admin).json()
    r = world.client.patch(
        "/v1/tenants/acme",
        json={"retention_days": 365, "legal_hold": True, "display_name": "Acme Inc"},
        headers=world.admin,
    )
    assert r.status_code == 200, r.text
    after = r.json()
    assert (after["retention_days"], after["legal_hold"], after["display_name"]) == (
        365,
        True,
        "Acme Inc",
    )
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] >= before["updated_at"]
    assert world.client.get("/v1/tenants/acme", headers=world.admin).json() == after
    r = world.client.patch("/v1/tenants/acme", json={"legal_hold": False}, headers=world.admin)
    assert r.json()["legal_hold"] is False and r.json()["retention_days"] == 365
    assert r.json()["display_name"] == "Acme Inc"
    r = world.client.patch("/v1/tenants/acme", json={"retention_days": None}, headers=world.admin)
    assert r.json()["retention_days"] is None
    for bad in ({"retention_days": 0}, {"legal_hold": "maybe"}, {"id": "other"}, {"x": 1}):
        r = world.client.patch("/v1/tenants/acme", json=bad, headers=world.admin)
        assert r.status_code == 422, (bad, r.text)
    r = world.client.patch("/v1/tenants/nope", json={"legal_hold": True}, headers=world.admin)
    assert r.status_code == 404
    assert world.client.get("/v1/tenants/globex", headers=world.admin).json()["legal_hold"] is False


def test_delete_tenant_then_404(world: World) -> None:
    create_tenant(world, "initech")
    r = world.client.delete("/v1/tenants/initech", headers=world.admin)
    assert r.status_code == 204 and r.content == b""
    for method in ("GET", "DELETE"):
        r = world.client.request(method, "/v1/tenants/initech", headers=world.admin)
        assert r.status_code == 404, (method, r.text)
    r = world.client.patch("/v1/tenants/initech", json={"legal_hold": True}, headers=world.admin)
    assert r.status_code == 404
    listed = world.client.get("/v1/tenants", headers=world.admin).json()["data"]
    assert [t["id"] for t in listed] == ["acme", "globex"]


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
def test_non_admin_cannot_manage_tenants(world: World, role: str) -> None:
    h = world.h("acme", role)
    calls = [
        ("POST", "/v1/tenants", {"id": "sneaky"}),
        ("GET", "/v1/tenants", None),
        # (a tenant admin may set its own tenant's retention and legal hold:
        # test_retention.py)
        ("PATCH", "/v1/tenants/acme", {"display_name": "renamed"}),
        ("PATCH", "/v1/tenants/globex", {"display_name": "pwned"}),
        ("PATCH", "/v1/tenants/globex", {"legal_hold": True}),
        ("DELETE", "/v1/tenants/acme", None),
        ("DELETE", "/v1/tenants/globex", None),
    ]
    for method, path, body in calls:
        r = world.client.request(method, path, json=body, headers=h)
        # Another tenant's settings: refused, or (what a tenant admin may change) not found.
        refused = (403, 404) if path.endswith("globex") else (403,)
        assert r.status_code in refused, (method, path, r.text)
        assert "Globex" not in r.text
    listed = world.client.get("/v1/tenants", headers=world.admin).json()["data"]
    assert [(t["id"], t["display_name"], t["legal_hold"]) for t in listed] == [
        ("acme", "Acme", False),
        ("globex", "Globex", False),
    ]


def test_tenant_credential_sees_only_its_own_tenant(world: World) -> None:
    for role in ("tenant_admin", "reader"):
        h = world.h("acme", role)
        own = world.client.get("/v1/tenants/acme", headers=h)
        assert own.status_code == 200 and own.json()["id"] == "acme"
        other = world.client.get("/v1/tenants/globex", headers=h)
        missing = world.client.get("/v1/tenants/nosuch", headers=h)
        assert other.status_code == missing.status_code == 404
        assert other.json()["error"]["message"].replace("globex", "X") == missing.json()["error"][
            "message"
        ].replace("nosuch", "X")
        assert "Globex" not in other.text
    assert (
        world.client.get("/v1/tenants/acme", headers=world.h("acme", "writer")).status_code == 403
    )


def test_delete_refused_under_legal_hold(world: World) -> None:
    world.post("acme", event(id="held"))
    world.client.patch("/v1/tenants/acme", json={"legal_hold": True}, headers=world.admin)
    r = world.client.delete("/v1/tenants/acme", headers=world.admin)
    assert r.status_code == 409, r.text
    assert "legal hold" in r.json()["error"]["message"]
    assert world.client.get("/v1/tenants/acme", headers=world.admin).status_code == 200
    assert [e["id"] for e in world.all_events("acme")] == ["held"]
    assert world.list("acme").status_code == 200  # its keys still work
    created = create_tenant(world, "held-co", legal_hold=True)
    assert created["legal_hold"] is True
    assert world.client.delete("/v1/tenants/held-co", headers=world.admin).status_code == 409


# No checkpoint may be signed before the delete: a signed log's id is never reused
# (test_integrity.py shows that), and this test is about an id that can be.
@pytest.mark.settings(checkpoint_interval_seconds=3600)
def test_delete_removes_events_and_keys_and_seq_restarts(world: World) -> None:
    create_tenant(world, "initech")
    r = world.client.post(keys_url("initech"), json={"role": "writer"}, headers=world.admin)
    writer = r.json()["token"]
    r = world.client.post(keys_url("initech"), json={"role": "reader"}, headers=world.admin)
    reader = r.json()["token"]
    for i in range(3):
        r = world.client.post("/v1/events", json=event(id=f"i{i}"), headers=auth(writer))
        assert r.status_code == 201 and r.json()["seq"] == i
    assert world.client.delete("/v1/tenants/initech", headers=world.admin).status_code == 204

    for token in (writer, reader):
        r = world.client.get("/v1/events", headers=auth(token))
        assert r.status_code == 401, r.text
    r = world.client.get("/v1/events", params={"tenant_id": "initech"}, headers=world.admin)
    assert r.status_code == 404  # the tenant is gone, and so are its events
    r = world.client.post("/v1/events", json=event(tenant_id="initech"), headers=world.admin)
    assert r.status_code == 404  # not stored into a tenant that no longer exists

    create_tenant(world, "initech")
    r = world.client.post(keys_url("initech"), headers=world.admin, json={"role": "writer"})
    assert r.status_code == 201
    r = world.client.post(
        "/v1/events", json=event(id="fresh", tenant_id="initech"), headers=world.admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["seq"] == 0
    r = world.client.post("/v1/events", json=event(), headers=auth(writer))
    assert r.status_code == 401  # old keys stay dead after the tenant id is reused
    r = world.client.get("/v1/events", params={"tenant_id": "initech"}, headers=world.admin)
    assert [(e["id"], e["seq"]) for e in r.json()["data"]] == [("fresh", 0)]
    keys = world.client.get(keys_url("initech"), headers=world.admin).json()["data"]
    assert key_id(writer) not in {k["id"] for k in keys} and len(keys) == 1
    assert world.post("acme", event()).json()["seq"] == 0


def test_deletion_and_revocation_apply_at_once_despite_key_cache(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth_cache_seconds=600.0)
    keys = seed_keys(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        admin = auth(keys["platform"]["admin"])
        writer, reader = keys["acme"]["writer"], keys["acme"]["reader"]
        assert client.post("/v1/events", json=event(), headers=auth(writer)).status_code == 201
        assert client.get("/v1/events", headers=auth(reader)).status_code == 200
        r = client.delete(keys_url("acme", key_id(writer)), headers=admin)
        assert r.status_code == 204
        assert client.post("/v1/events", json=event(), headers=auth(writer)).status_code == 401
        assert client.delete("/v1/tenants/acme", headers=admin).status_code == 204
        assert client.get("/v1/events", headers=auth(reader)).status_code == 401
        r = client.get("/v1/events", headers=auth(keys["globex"]["reader"]))
        assert r.status_code == 200


# -- API keys ---------------------------------------------------------------------------------


def test_tenant_admin_creates_keys_shown_once(world: World) -> None:
    ta = world.h("acme", "tenant_admin")
    made: dict[str, dict[str, Any]] = {}
    for role in ("writer", "reader", "tenant_admin"):
        r = world.client.post(
            keys_url("acme"), json={"role": role, "name": f"ci-{role}"}, headers=ta
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert set(body) == KEY_FIELDS | {"token"}
        assert (body["tenant_id"], body["role"], body["name"]) == ("acme", role, f"ci-{role}")
        assert body["token"].startswith(f"tk_{body['id']}_")
        assert body["revoked_at"] is None and body["last_used_at"] is None
        made[role] = body
    w, rd = auth(made["writer"]["token"]), auth(made["reader"]["token"])
    assert world.client.post("/v1/events", json=event(id="k1"), headers=w).status_code == 201
    assert world.client.get("/v1/events", headers=w).status_code == 403
    assert [e["id"] for e in world.client.get("/v1/events", headers=rd).json()["data"]] == ["k1"]

    listed = world.client.get(keys_url("acme"), headers=ta)
    assert listed.status_code == 200
    rows = listed.json()["data"]
    assert all(set(row) == KEY_FIELDS for row in rows)
    assert {m["id"] for m in made.values()} <= {row["id"] for row in rows}
    assert all(row["tenant_id"] == "acme" for row in rows)
    text = listed.text
    for m in made.values():
        assert m["token"] not in text and m["token"].split("_", 2)[2] not in text
    for token in world.keys["acme"].values():
        assert token.split("_", 2)[2] not in text
    assert "hash" not in text and "secret" not in text


def test_key_listing_is_per_tenant(world: World) -> None:
    acme_ids = {key_id(t) for t in world.keys["acme"].values()}
    globex_ids = {key_id(t) for t in world.keys["globex"].values()}
    rows = world.client.get(keys_url("acme"), headers=world.h("acme", "tenant_admin")).json()
    assert {row["id"] for row in rows["data"]} == acme_ids
    rows = world.client.get(keys_url("globex"), headers=world.admin).json()
    assert {row["id"] for row in rows["data"]} == globex_ids
    r = world.client.get(keys_url("globex"), headers=world.h("acme", "tenant_admin"))
    assert r.status_code == 404
    assert not any(k in r.text for k in globex_ids)
    assert key_id(world.keys["platform"]["admin"]) not in str(rows)


def test_tenant_admin_cannot_create_keys_elsewhere_or_admin_keys(world: World) -> None:
    ta = world.h("acme", "tenant_admin")
    for tenant in ("globex", "nosuch"):
        r = world.client.post(keys_url(tenant), json={"role": "writer"}, headers=ta)
        assert r.status_code == 404, r.text
        assert "token" not in r.json()
    r = world.client.post(keys_url("acme"), json={"role": "admin"}, headers=ta)
    assert r.status_code == 403
    r = world.client.post(keys_url("acme"), json={"role": "admin"}, headers=world.admin)
    assert r.status_code == 403
    r = world.client.post(keys_url("nosuch"), json={"role": "writer"}, headers=world.admin)
    assert r.status_code == 404
    for bad in (
        {"role": "root"},
        {},
        {"role": "writer", "x": 1},
        {"role": "writer", "name": ""},
        {"role": "writer", "name": "a\u0000"},
    ):
        assert world.client.post(keys_url("acme"), json=bad, headers=ta).status_code == 422
    globex = world.client.get(keys_url("globex"), headers=world.admin).json()["data"]
    acme = world.client.get(keys_url("acme"), headers=world.admin).json()["data"]
    assert len(globex) == 4 and len(acme) == 4  # the seeded keys, one per tenant role


@pytest.mark.parametrize("role", ["writer", "reader"])
def test_writer_and_reader_cannot_manage_keys(world: World, role: str) -> None:
    h = world.h("acme", role)
    victim = key_id(world.keys["acme"]["tenant_admin"])
    assert (
        world.client.post(keys_url("acme"), json={"role": "writer"}, headers=h).status_code == 403
    )
    assert world.client.get(keys_url("acme"), headers=h).status_code == 403
    assert world.client.delete(keys_url("acme", victim), headers=h).status_code == 403
    assert world.list("acme").status_code == 200
    assert (
        world.client.get("/v1/events", headers=world.h("acme", "tenant_admin")).status_code == 200
    )


def test_revoke_key_then_second_revoke_is_404(world: World) -> None:
    ta = world.h("acme", "tenant_admin")
    made = world.client.post(keys_url("acme"), json={"role": "writer"}, headers=ta).json()
    token = made["token"]
    assert world.client.post("/v1/events", json=event(), headers=auth(token)).status_code == 201
    assert world.client.delete(keys_url("acme", made["id"]), headers=ta).status_code == 204
    assert world.client.post("/v1/events", json=event(), headers=auth(token)).status_code == 401
    r = world.client.delete(keys_url("acme", made["id"]), headers=ta)
    assert r.status_code == 404
    rows = {k["id"]: k for k in world.client.get(keys_url("acme"), headers=ta).json()["data"]}
    assert rows[made["id"]]["revoked_at"] is not None
    assert rows[key_id(world.keys["acme"]["writer"])]["revoked_at"] is None
    assert len(world.all_events("acme")) == 1


def test_cannot_revoke_another_tenants_key(world: World) -> None:
    globex_writer = world.keys["globex"]["writer"]
    for path, h in [
        (keys_url("acme", key_id(globex_writer)), world.h("acme", "tenant_admin")),
        (keys_url("globex", key_id(globex_writer)), world.h("acme", "tenant_admin")),
        (keys_url("acme", key_id(globex_writer)), world.admin),
        (keys_url("acme", "0000000000000000"), world.h("acme", "tenant_admin")),
    ]:
        assert world.client.delete(path, headers=h).status_code == 404, path
    r = world.client.get("/v1/events", headers=auth(world.keys["globex"]["reader"]))
    assert r.status_code == 200 and GLOBEX_SECRET in r.text
    r = world.client.get(keys_url("globex"), headers=world.admin).json()["data"]
    assert all(k["revoked_at"] is None for k in r)


def test_last_used_at_is_recorded(world: World) -> None:
    ta = world.h("acme", "tenant_admin")
    used = world.client.post(keys_url("acme"), json={"role": "reader"}, headers=ta).json()
    idle = world.client.post(keys_url("acme"), json={"role": "reader"}, headers=ta).json()
    flush_key_usage(world)
    rows = {k["id"]: k for k in world.client.get(keys_url("acme"), headers=ta).json()["data"]}
    assert rows[used["id"]]["last_used_at"] is None
    assert world.client.get("/v1/events", headers=auth(used["token"])).status_code == 200
    flush_key_usage(world)
    rows = {k["id"]: k for k in world.client.get(keys_url("acme"), headers=ta).json()["data"]}
    stamp = rows[used["id"]]["last_used_at"]
    assert stamp is not None and stamp.endswith("Z") and stamp >= used["created_at"]
    assert rows[idle["id"]]["last_used_at"] is None
    assert rows[key_id(world.keys["acme"]["tenant_admin"])]["last_used_at"] is not None
    assert world.client.get("/v1/events", headers=auth(used["token"])).status_code == 200
    flush_key_usage(world)
    rows = {k["id"]: k for k in world.client.get(keys_url("acme"), headers=ta).json()["data"]}
    assert rows[used["id"]]["last_used_at"] >= stamp
