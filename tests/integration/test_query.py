"""GET /v1/events and GET /v1/events/{id}: order, filters, pagination, cursors, scoping.

Every filter is checked against the same filter computed in Python over everything
ingested, so a wrong SQL condition, a lost or duplicated row, or a leak of globex's
events (the `world` fixture stores five, with target document/shared-doc) shows up.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import World, event

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE = datetime(2024, 3, 1, tzinfo=UTC)  # safely in the past on any test machine
RANK = {"DEBUG": 0, "INFO": 1, "NOTICE": 2, "WARNING": 3, "ERROR": 4, "CRITICAL": 5}
ALIAS = {"LOW": "INFO", "MEDIUM": "WARNING", "HIGH": "ERROR"}
ACTIONS = [
    "user.login",
    "user.logout",
    "user.mfa.enable",
    "user",
    "userx.foo",
    "document.update",
    "document.read",
]
SEVERITIES_SENT = [*RANK, "low", "MEDIUM", "high", "warning", "critical"]
TZS = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]


def us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def iso(moment_us: int, tz: timezone = UTC) -> str:
    return (EPOCH + timedelta(microseconds=moment_us)).astimezone(tz).isoformat()


@dataclass(frozen=True)
class Ev:
    id: str
    seq: int
    occurred: int
    actor: str
    action: str
    targets: tuple[tuple[str, str], ...]
    severity: int
    outcome: str


def _random_event(rng: random.Random, index: int, instants: list[int]) -> dict[str, Any]:
    body: dict[str, Any] = event(rng.choice(ACTIONS), rng.choice(["u1", "u2", "u3", "svc-a"]))
    body["id"] = f"acme-{index}"
    body["occurred_at"] = iso(rng.choice(instants), rng.choice(TZS))
    kind = rng.randrange(6)
    if kind == 1:
        body["targets"] = [{"type": "document", "id": rng.choice(["d1", "d2"])}]
    elif kind == 2:  # two targets of the same type: must not duplicate the event
        body["targets"] = [{"type": "document", "id": "d1"}, {"type": "document", "id": "d2"}]
    elif kind == 3:
        body["targets"] = [{"type": "folder", "id": "f1"}, {"type": "document", "id": "d2"}]
    elif kind == 4:  # the same target as globex's events
        body["targets"] = [{"type": "document", "id": "shared-doc"}]
    elif kind == 5:
        body["resource_type"], body["resource_id"] = "invoice", f"inv-{index % 3}"
    if rng.random() < 0.8:
        body["severity"] = rng.choice(SEVERITIES_SENT)
    if rng.random() < 0.7:
        body["outcome"] = rng.choice(["success", "failure"])
    return body


def _model(body: dict[str, Any], seq: int) -> Ev:
    targets = tuple((t["type"], t["id"]) for t in body.get("targets", []))
    if "resource_type" in body:
        targets += ((body["resource_type"], body["resource_id"]),)
    severity = body.get("severity", "INFO").upper()
    return Ev(
        id=body["id"],
        seq=seq,
        occurred=us(datetime.fromisoformat(body["occurred_at"])),
        actor=body["actor"]["id"],
        action=body["action"],
        targets=targets,
        severity=RANK[ALIAS.get(severity, severity)],
        outcome=body.get("outcome", "success"),
    )


@pytest.fixture
def data(world: World) -> list[Ev]:
    """~200 varied acme events; returns them newest first, as the API must."""
    rng = random.Random(20260301)
    # Few distinct instants, so many events share an occurred_at and seq breaks the tie.
    instants = [us(BASE) + rng.randrange(0, 30 * 86_400 * 10**6) for _ in range(70)]
    bodies = [_random_event(rng, i, instants) for i in range(200)]
    models: list[Ev] = []
    for chunk in (bodies[:120], bodies[120:]):
        r = world.client.post(
            "/v1/events/batch", json={"events": chunk}, headers=world.h("acme", "writer")
        )
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [item["status"] for item in results] == ["created"] * len(chunk)
        models += [_model(b, item["seq"]) for b, item in zip(chunk, results, strict=True)]
    assert len({m.occurred for m in models}) < len(models)  # ties exist
    return sorted(models, key=lambda m: (m.occurred, m.seq), reverse=True)


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


def assert_error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert err["request_id"] == r.headers["x-request-id"]
    return err


def _bounds(data: list[Ev]) -> tuple[int, int]:
    """Two instants that are exactly some events' occurred_at (inclusive/exclusive edges)."""
    times = sorted({m.occurred for m in data})
    return times[len(times) // 4], times[3 * len(times) // 4]


Case = tuple[Callable[[list[Ev]], dict[str, Any]], Callable[[Ev, list[Ev]], bool]]


def _has_type(m: Ev, kind: str, ident: str | None = None) -> bool:
    return any(t == kind and (ident is None or i == ident) for t, i in m.targets)


CASES: dict[str, Case] = {
    "no filter": (lambda d: {}, lambda m, d: True),
    "occurred_after inclusive": (
        lambda d: {"occurred_after": iso(_bounds(d)[0])},
        lambda m, d: m.occurred >= _bounds(d)[0],
    ),
    "occurred_after with offset": (
        lambda d: {"occurred_after": iso(_bounds(d)[0], TZS[2])},
        lambda m, d: m.occurred >= _bounds(d)[0],
    ),
    "occurred_before exclusive": (
        lambda d: {"occurred_before": iso(_bounds(d)[1], TZS[1])},
        lambda m, d: m.occurred < _bounds(d)[1],
    ),
    "time window": (
        lambda d: {"occurred_after": iso(_bounds(d)[0]), "occurred_before": iso(_bounds(d)[1])},
        lambda m, d: _bounds(d)[0] <= m.occurred < _bounds(d)[1],
    ),
    "actor_id": (lambda d: {"actor_id": "u2"}, lambda m, d: m.actor == "u2"),
    "action exact": (lambda d: {"action": "user.login"}, lambda m, d: m.action == "user.login"),
    "action exact is not a prefix": (lambda d: {"action": "user"}, lambda m, d: m.action == "user"),
    "action prefix user.*": (
        lambda d: {"action": "user.*"},
        lambda m, d: m.action.startswith("user."),
    ),
    "action prefix document*": (
        lambda d: {"action": "document*"},
        lambda m, d: m.action.startswith("document"),
    ),
    "target_type": (lambda d: {"target_type": "document"}, lambda m, d: _has_type(m, "document")),
    "target_type legacy resource": (
        lambda d: {"target_type": "invoice"},
        lambda m, d: _has_type(m, "invoice"),
    ),
    "target_type+target_id": (
        lambda d: {"target_type": "document", "target_id": "d2"},
        lambda m, d: _has_type(m, "document", "d2"),
    ),
    "target shared with globex": (
        lambda d: {"target_type": "document", "target_id": "shared-doc"},
        lambda m, d: _has_type(m, "document", "shared-doc"),
    ),
    "severity minimum": (lambda d: {"severity": "WARNING"}, lambda m, d: m.severity >= 3),
    "severity alias HIGH": (lambda d: {"severity": "HIGH"}, lambda m, d: m.severity >= 4),
    "severity alias lowercase": (lambda d: {"severity": "medium"}, lambda m, d: m.severity >= 3),
    "outcome failure": (lambda d: {"outcome": "failure"}, lambda m, d: m.outcome == "failure"),
    "outcome success": (lambda d: {"outcome": "success"}, lambda m, d: m.outcome == "success"),
    "action prefix+severity+outcome": (
        lambda d: {"action": "user.*", "severity": "NOTICE", "outcome": "failure"},
        lambda m, d: m.action.startswith("user.") and m.severity >= 2 and m.outcome == "failure",
    ),
    "target+actor+window": (
        lambda d: {
            "target_type": "document",
            "actor_id": "u1",
            "occurred_after": iso(_bounds(d)[0]),
            "occurred_before": iso(_bounds(d)[1]),
        },
        lambda m, d: (
            _has_type(m, "document")
            and m.actor == "u1"
            and _bounds(d)[0] <= m.occurred < _bounds(d)[1]
        ),
    ),
    "target id+action+severity": (
        lambda d: {
            "target_type": "document",
            "target_id": "d1",
            "action": "user.*",
            "severity": "low",
        },
        lambda m, d: (
            _has_type(m, "document", "d1") and m.action.startswith("user.") and m.severity >= 1
        ),
    ),
    "nothing matches": (lambda d: {"actor_id": "nobody"}, lambda m, d: False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_filter_matches_python(world: World, data: list[Ev], name: str) -> None:
    params_of, keep = CASES[name]
    expected = [m.id for m in data if keep(m, data)]
    if name == "no filter":
        assert len(expected) == 200
    elif name != "nothing matches":
        assert 0 < len(expected) < len(data), "the data set must exercise this filter"
    r = world.list("acme", **params_of(data), limit=1000)
    assert r.status_code == 200, r.text
    body = r.json()
    assert ids(body["data"]) == expected
    assert body["next_cursor"] is None
    assert all(e["tenant_id"] == "acme" for e in body["data"])


def test_newest_first_by_occurred_then_seq(world: World, data: list[Ev]) -> None:
    got = world.all_events("acme")
    keys = [(e["occurred_at"], e["seq"]) for e in got]
    assert keys == sorted(keys, reverse=True)
    assert ids(got) == [m.id for m in data]
    by_id = {m.id: m for m in data}
    for e in got:  # the stored form agrees with what was sent
        m = by_id[e["id"]]
        assert e["seq"] == m.seq
        moment = EPOCH + timedelta(microseconds=m.occurred)
        assert e["occurred_at"] == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert RANK[e["severity"]] == m.severity


def test_two_targets_of_one_type_do_not_duplicate(world: World, data: list[Ev]) -> None:
    doubled = [m.id for m in data if sum(t == "document" for t, _ in m.targets) == 2]
    assert len(doubled) >= 5
    got = ids(world.all_events("acme", target_type="document"))
    assert len(got) == len(set(got))
    assert set(doubled) <= set(got)


PAGED = [
    ("no filter", 7),
    ("target_type", 7),
    ("target_type+target_id", 7),
    ("action prefix user.*", 7),
    ("target+actor+window", 7),
    ("severity alias HIGH", 7),
    # Merged branches (one per action) with residual filters checked on the merged keys:
    # pages end inside a step of keys, and steps come back with few or no matches.
    ("action prefix+severity+outcome", 1),
    ("action prefix+severity+outcome", 2),
    # limit=1: a page boundary falls between every pair of rows of a doubled target.
    ("target_type", 1),
    ("target_type+target_id", 1),
]


@pytest.mark.parametrize(("name", "limit"), PAGED)
def test_pagination_returns_each_event_once_in_order(
    world: World, data: list[Ev], name: str, limit: int
) -> None:
    params_of, keep = CASES[name]
    params = params_of(data)
    expected = [m.id for m in data if keep(m, data)]
    seen: list[str] = []
    cursor = None
    for _ in range(len(expected) + 2):
        query = dict(params, limit=limit)
        if cursor:
            query["cursor"] = cursor
        r = world.list("acme", **query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= limit
        seen += ids(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert len(page["data"]) == limit  # only a full page promises more
    assert cursor is None, "pagination did not terminate"
    assert seen == expected


def test_cursor_may_change_limit_but_not_filters(world: World, data: list[Ev]) -> None:
    expected = [m.id for m in data if m.action.startswith("user.")]
    first = world.list("acme", action="user.*", limit=7).json()
    cursor = first["next_cursor"]
    assert ids(first["data"]) == expected[:7] and cursor
    r = world.list("acme", action="user.*", limit=5, cursor=cursor)
    assert r.status_code == 200 and ids(r.json()["data"]) == expected[7:12]
    for other in (
        {"action": "user.login"},
        {"action": "user.*", "severity": "INFO"},
        {},
        {"action": "user.*", "target_type": "document"},
    ):
        err = assert_error(world.list("acme", **other, cursor=cursor), 400, "invalid_cursor")
        assert "cursor" in err["message"]


def test_cursor_of_one_tenant_is_refused_for_another(world: World, data: list[Ev]) -> None:
    cursor = world.list("acme", limit=3).json()["next_cursor"]
    assert cursor
    assert_error(world.list("globex", limit=3, cursor=cursor), 400, "invalid_cursor")


def _unb64(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_tampered_cursor_is_refused(world: World, data: list[Ev]) -> None:
    cursor = world.list("acme", limit=7).json()["next_cursor"]
    raw = _unb64(cursor)
    for index in range(len(raw)):
        forged = bytearray(raw)
        forged[index] ^= 0x01
        r = world.list("acme", limit=7, cursor=_b64(bytes(forged)))
        assert_error(r, 400, "invalid_cursor")
    # A position rewritten by hand, signature kept, is refused too.
    payload = raw[12:].replace(b"[", b"[1", 1)
    assert_error(
        world.list("acme", limit=7, cursor=_b64(raw[:12] + payload)), 400, "invalid_cursor"
    )
    for garbage in ("x", "not-a-cursor", "%%%%", "AAAA" * 20, "é"):
        assert_error(world.list("acme", limit=7, cursor=garbage), 400, "invalid_cursor")


def test_limit_bounds(world: World, data: list[Ev]) -> None:
    default = world.list("acme").json()
    assert len(default["data"]) == 50 and default["next_cursor"]
    one = world.list("acme", limit=1).json()
    assert ids(one["data"]) == [data[0].id] and one["next_cursor"]
    full = world.list("acme", limit=1000).json()
    assert len(full["data"]) == 200 and full["next_cursor"] is None
    for bad in (0, -1, 1001, 10**12, "ten", ""):
        err = assert_error(world.list("acme", limit=bad), 422, "validation_error")
        assert any("limit" in d["loc"] for d in err["details"])


def test_bad_filter_values_are_4xx(world: World, data: list[Ev]) -> None:
    assert_error(world.list("acme", severity="LOUD"), 400, "bad_request")
    assert_error(world.list("acme", outcome="maybe"), 400, "bad_request")
    assert_error(world.list("acme", target_id="d1"), 400, "bad_request")
    assert_error(world.list("acme", action="*"), 400, "bad_request")
    assert_error(world.list("acme", actor_id="a\x00b"), 400, "bad_request")
    assert_error(world.list("acme", actor_id="x" * 300), 400, "bad_request")
    err = assert_error(
        world.list("acme", occurred_after="2024-03-01T00:00:00"), 422, "validation_error"
    )
    assert any("occurred_after" in d["loc"] for d in err["details"])


def test_acme_never_sees_globex(world: World, data: list[Ev]) -> None:
    for params in (
        {},
        {"target_type": "document", "target_id": "shared-doc"},
        {"action": "secret.read"},
        {"actor_id": "g0"},
    ):
        got = world.all_events("acme", **params)
        assert all(e["tenant_id"] == "acme" for e in got)
        assert not {e["id"] for e in got} & set(world.globex_ids)
    shared = world.all_events("acme", target_type="document", target_id="shared-doc")
    assert shared and all(e["id"].startswith("acme-") for e in shared)
    # globex sees its own five and nothing of acme's, under the same filter.
    theirs = world.all_events("globex", target_type="document", target_id="shared-doc")
    assert sorted(ids(theirs)) == sorted(world.globex_ids)


def test_tenant_scoping_of_reads(world: World, data: list[Ev]) -> None:
    reader = world.h("acme", "reader")
    r = world.client.get("/v1/events", params={"tenant_id": "globex"}, headers=reader)
    assert_error(r, 403, "forbidden")
    r = world.client.get("/v1/events", params={"tenant_id": "acme", "limit": 1000}, headers=reader)
    assert r.status_code == 200 and len(r.json()["data"]) == 200
    r = world.client.get("/v1/events/globex-0", params={"tenant_id": "globex"}, headers=reader)
    assert_error(r, 403, "forbidden")
    assert_error(
        world.client.get("/v1/events", headers=world.h("acme", "writer")), 403, "forbidden"
    )
    r = world.client.get("/v1/events")
    assert_error(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == "Bearer"
    # A platform admin must name the tenant, and then sees exactly that tenant.
    assert_error(world.client.get("/v1/events", headers=world.admin), 400, "bad_request")
    r = world.client.get(
        "/v1/events", params={"tenant_id": "acme", "limit": 1000}, headers=world.admin
    )
    assert ids(r.json()["data"]) == [m.id for m in data]


def test_get_one_event(world: World, data: list[Ev]) -> None:
    listed = {e["id"]: e for e in world.all_events("acme")}
    for m in (data[0], data[100], data[-1]):
        r = world.client.get(f"/v1/events/{m.id}", headers=world.h("acme", "reader"))
        assert r.status_code == 200
        assert r.json() == listed[m.id]
    r = world.client.get(
        f"/v1/events/{data[3].id}", params={"tenant_id": "acme"}, headers=world.admin
    )
    assert r.status_code == 200 and r.json()["seq"] == data[3].seq


def test_get_unknown_or_foreign_event_is_404(world: World, data: list[Ev]) -> None:
    reader = world.h("acme", "reader")
    for missing in ("no-such-event", "globex-0", "acme-200", "%00"):
        err = assert_error(
            world.client.get(f"/v1/events/{missing}", headers=reader), 404, "not_found"
        )
        assert set(err) == {"code", "message", "details", "request_id"}
    # The foreign id answers exactly like an unknown one (no existence oracle).
    a = world.client.get("/v1/events/globex-1", headers=reader).json()["error"]["message"]
    b = world.client.get("/v1/events/globex-x", headers=reader).json()["error"]["message"]
    assert a.replace("globex-1", "ID") == b.replace("globex-x", "ID")


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_pages_across_events_of_one_instant(world: World, limit: int) -> None:
    """Many events at one instant: the steps of a page that reads on (merged branches
    with residual filters, windows in time on PostgreSQL) neither skip nor repeat the
    rows that share the window's edge time."""
    at = "2026-03-01T12:00:00Z"
    actions = ["user.login", "user.logout", "document.update"]
    severities = ["INFO", "WARNING", "ERROR", "DEBUG", "CRITICAL"]
    batch = [
        event(actions[i % 3], "u1", id=f"tie-{i}", occurred_at=at, severity=severities[i % 5])
        for i in range(60)
    ]
    batch += [
        event("user.login", "u1", id=f"before-{i}", occurred_at=f"2026-02-{10 + i}T00:00:00Z")
        | {"severity": "ERROR"}
        for i in range(5)
    ]
    r = world.client.post(
        "/v1/events/batch", json={"events": batch}, headers=world.h("acme", "writer")
    )
    assert r.status_code == 200, r.text
    q = "action:user.* severity>=WARNING"
    # Newest first: the instant's events by seq (batch order) descending, then the
    # older ones by time.
    ties = [f"tie-{i}" for i in range(59, -1, -1) if i % 3 != 2 and i % 5 in (1, 2, 4)]
    expected = ties + [f"before-{i}" for i in range(4, -1, -1)]
    assert [e["id"] for e in world.all_events("acme", q=q)] == expected
    seen: list[str] = []
    cursor = None
    for _ in range(len(expected) + 2):
        params = {"q": q, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = world.list("acme", **params).json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    assert len(set(seen)) == len(seen)
