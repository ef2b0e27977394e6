"""GET /v1/stats on both backends: rollups and scans give the reference's counts.

The counts are computed in Python from acme's events (tests/query_reference.py) for
every group_by and interval, with filters the rollups serve (source "rollup") and
filters only a scan serves (source "scan"); globex's events must never be counted.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import World
from tests.query_reference import matches, occurred_us
from trailkeep.kit.event_vocabulary import SEVERITY_RANK
from trailkeep.kit.timeutil import format_us, now_us
from trailkeep.query.parser import parse_query

HOUR = 3_600_000_000
DAY = 24 * HOUR
WINDOW = "occurred:2024-02-29T22:30Z..2024-03-04T12:00Z"  # widened to whole buckets


def _keys(event: dict[str, Any], group_by: str) -> list[Any]:
    if group_by == "target_type":
        return sorted({t["type"] for t in event.get("targets") or []})
    if group_by == "actor":
        return [event["actor"].get("id")]
    if group_by == "severity":
        return [SEVERITY_RANK[event["severity"]]]
    return [event[group_by]]


def _expected(
    events: list[dict[str, Any]], q: str, group_by: str, width: int, top: int
) -> dict[str, Any]:
    query = parse_query(q, now_us=now_us())
    start = parse_query("occurred>=2024-02-29T22:30Z", now_us=0).terms[0].start  # type: ignore[union-attr]
    end = parse_query("occurred<2024-03-04T12:00Z", now_us=0).terms[0].end  # type: ignore[union-attr]
    assert start is not None and end is not None
    low, high = start - start % width, -(-end // width) * width
    chosen = [e for e in events if matches(e, query) and low <= occurred_us(e) < high]
    per_key: Counter[Any] = Counter(k for e in chosen for k in _keys(e, group_by))
    ranked = sorted(per_key.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    names = ["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"]
    buckets = []
    for at in range(low, high, width):
        inside = [e for e in chosen if at <= occurred_us(e) < at + width]
        buckets.append(
            {
                "start": format_us(at),
                "count": len(inside),
                "counts": [sum(key in _keys(e, group_by) for e in inside) for key, _ in ranked],
            }
        )
    return {
        "from": format_us(low),
        "to": format_us(high),
        "total": len(chosen),
        "top": [{"key": names[k] if group_by == "severity" else k, "count": c} for k, c in ranked],
        "buckets": buckets,
    }


CASES = [
    ("", "rollup"),
    ("outcome:failure", "rollup"),
    ("action:user.* -severity:DEBUG", "rollup"),
    ("-action:document.read severity:INFO,ERROR outcome:success", "rollup"),
    ("disk", "scan"),
    ("-disk metadata.plan:pro", "scan"),
    ("target.type:document", "scan"),
    ("actor.type:service ip:10.0.0.0/8", "scan"),
]
GROUPS = ["action", "severity", "outcome", "actor", "target_type"]


@pytest.mark.parametrize(("q", "main_source"), CASES)
def test_stats_match_the_reference(
    world: World,
    acme: list[dict[str, Any]],
    q: str,
    main_source: str,
) -> None:
    for group_by in GROUPS:
        for interval, width in (("day", DAY), ("hour", HOUR)):
            r = world.client.get(
                "/v1/stats",
                params={"q": f"{q} {WINDOW}", "group_by": group_by, "interval": interval, "top": 3},
                headers=world.h("acme", "reader"),
            )
            assert r.status_code == 200, r.text
            body = r.json()
            want = _expected(acme, q, group_by, width, 3)
            label = (q, group_by, interval)
            assert body["total"] == want["total"], label
            assert body["top"] == want["top"], label
            assert body["buckets"] == want["buckets"], label
            assert (body["from"], body["to"]) == (want["from"], want["to"])
            # Rollups answer whatever they hold: the main dimensions by hour and day,
            # target types by hour and day, actors by day.
            served = main_source == "rollup" and (
                group_by in ("action", "severity", "outcome")
                or (q == "" and (group_by == "target_type" or interval == "day"))
            )
            assert body["source"] == ("rollup" if served else "scan"), label
    assert any(b["count"] for b in body["buckets"])


def test_stats_default_window_and_limits(world: World, acme: list[dict[str, Any]]) -> None:
    headers = world.h("acme", "reader")
    r = world.client.get("/v1/stats", params={"group_by": "action"}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["buckets"]) in (30, 31)  # the last 30 days, in whole days
    assert body["total"] == 0  # acme's events are from 2024
    r = world.client.get(
        "/v1/stats",
        params={"group_by": "action", "interval": "hour", "q": "occurred>=2020-01-01"},
        headers=headers,
    )
    assert r.status_code == 400 and "buckets" in r.json()["error"]["message"]
    for params in (
        {"group_by": "nope"},
        {"group_by": "action", "interval": "week"},
        {"group_by": "action", "top": 0},
        {},
    ):
        r = world.client.get("/v1/stats", params=params, headers=headers)
        assert r.status_code == 422, (params, r.text)
    r = world.client.get(
        "/v1/stats", params={"group_by": "action"}, headers=world.h("globex", "reader")
    )
    assert r.json()["total"] == 5  # globex sees its own five events (stored now) only
    world.assert_globex_untouched()


def test_rollups_follow_ingest_and_tenant_deletion(world: World) -> None:
    headers = world.admin
    r = world.client.post("/v1/tenants", json={"id": "tmp-co"}, headers=headers)
    assert r.status_code == 201, r.text
    batch = [
        {
            "action": "a.b",
            "actor": {"id": "x"},
            "occurred_at": "2024-05-01T10:00:00Z",
            "tenant_id": "tmp-co",
        }
        for _ in range(4)
    ]
    for item in batch:
        assert world.client.post("/v1/events", json=item, headers=headers).status_code == 201
    params = {"group_by": "action", "tenant_id": "tmp-co", "q": "occurred:2024-05-01"}
    body = world.client.get("/v1/stats", params=params, headers=headers).json()
    assert body["source"] == "rollup" and body["top"] == [{"key": "a.b", "count": 4}]
    assert world.client.delete("/v1/tenants/tmp-co", headers=headers).status_code == 204
    r = world.client.post("/v1/tenants", json={"id": "tmp-co2"}, headers=headers)
    assert r.status_code == 201
    params["tenant_id"] = "tmp-co2"
    body = world.client.get("/v1/stats", params=params, headers=headers).json()
    assert body["total"] == 0


def test_long_windows_add_up_wide_buckets_exactly(world: World) -> None:
    """Actors over ~70 days (the 2 to 16-day actor rollups) and actions over days read
    by the hour (daily buckets in the middle, hours at the edges): the reference's
    numbers for windows at many offsets."""
    headers = world.admin
    assert world.client.post("/v1/tenants", json={"id": "long-co"}, headers=headers).is_success
    rng = random.Random(7)
    base = datetime(2024, 1, 3, tzinfo=UTC)
    events = [
        {
            "action": rng.choice(["a.read", "a.write", "b.login", "c.export"]),
            "actor": {"id": f"u{min(rng.randrange(12), rng.randrange(12))}"},
            "occurred_at": (base + timedelta(minutes=rng.randrange(70 * 24 * 60))).isoformat(),
            "outcome": rng.choice(["success", "success", "failure"]),
            "tenant_id": "long-co",
        }
        for _ in range(600)
    ]
    for start in range(0, len(events), 200):
        r = world.client.post(
            "/v1/events/batch",
            json={"events": events[start : start + 200]},
            headers=headers,
        )
        assert r.status_code == 200 and r.json()["created"] == 200, r.text

    def check(lo: datetime, hi: datetime, group_by: str, interval: str, source: str) -> None:
        q = f"occurred>={lo.isoformat()} occurred<{hi.isoformat()}"
        params = {"q": q, "group_by": group_by, "interval": interval, "top": 5}
        r = world.client.get(
            "/v1/stats", params={**params, "tenant_id": "long-co"}, headers=headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        key = "actor" if group_by == "actor" else "action"
        inside = [e for e in events if lo <= datetime.fromisoformat(e["occurred_at"]) < hi]
        counts = Counter(e[key]["id"] if key == "actor" else e[key] for e in inside)
        want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        label = (lo, hi, group_by, interval)
        assert body["source"] == source, label
        assert body["total"] == len(inside), label
        assert [(t["key"], t["count"]) for t in body["top"]] == want, label
        assert sum(b["count"] for b in body["buckets"]) == len(inside), label
        for i, (k, n) in enumerate(want):
            assert sum(b["counts"][i] for b in body["buckets"]) == n, (label, k)

    for offset, days in ((0, 70), (1, 30), (5, 33), (17, 45), (40, 3), (12, 1)):
        lo = base + timedelta(days=offset)
        check(lo, lo + timedelta(days=days), "actor", "day", "rollup")
    for offset_h, hours in ((5, 80), (30, 7), (2, 24 * 20 + 3)):
        lo = base + timedelta(hours=offset_h)
        check(lo, lo + timedelta(hours=hours), "action", "hour", "rollup")
