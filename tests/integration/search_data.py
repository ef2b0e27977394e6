"""acme's events for the search and stats tests: every field the query language reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import World, event

BASE = datetime(2024, 3, 1, tzinfo=UTC)
NAMES = {"u1": "Ada Lovelace", "u2": "Alan Turing", "u3": "Grace Hopper", "svc-a": None}
MESSAGES = [
    "disk full on host-7",
    "Disk is almost full",
    "password reset requested",
    "reset of the password failed",
    "Überweisung fehlgeschlagen",
    "user logged in from foo-bar.example",
    "exported 1500 rows to report.csv",
    "login ok",
    "full disk? no: disk quota",
    "'; DROP TABLE events; --",
]
IPS = ["10.1.2.3", "10.200.0.9", "192.168.1.20", "2001:db8::7", "fe80::1"]


def _acme_event(rng: random.Random, i: int) -> dict[str, Any]:
    actor = rng.choice(list(NAMES))
    body = event(
        rng.choice(
            ["user.login", "user.logout", "document.update", "document.read", "billing.pay"]
        ),
        actor,
        id=f"acme-{i}",
        occurred_at=(BASE + timedelta(minutes=rng.randrange(4 * 24 * 60))).isoformat(),
        severity=rng.choice(["DEBUG", "INFO", "INFO", "WARNING", "ERROR", "CRITICAL"]),
        outcome=rng.choice(["success", "success", "failure"]),
        message=rng.choice(MESSAGES),
    )
    if NAMES[actor]:
        body["actor"]["name"] = NAMES[actor]
    else:
        body["actor"]["type"] = "service"
    body["targets"] = [
        {"type": rng.choice(["document", "folder"]), "id": f"d{rng.randrange(4)}", "name": name}
        for name in rng.sample(["Q3 plan", "budget 2024", "Roadmap"], rng.randrange(3))
    ]
    body["metadata"] = {
        "plan": rng.choice(["free", "pro", "enterprise"]),
        "geo": {"zone": rng.choice(["eu-1", "us-2"])},
        "count": 5,
        # Text whose JSON form differs from it (quotes, escapes) or is not ASCII.
        "city": rng.choice(["Zürich", "São Paulo", "a/b", 'say "hi"', "back\\slash"]),
    }
    if rng.random() < 0.8:
        body["context"] = {"ip_address": rng.choice(IPS), "request_id": f"req-{i % 7}"}
    return body


@pytest.fixture
def acme(world: World) -> list[dict[str, Any]]:
    # The reference (tests/query_reference.py) is the query language over fields in
    # clear: names and addresses are not sealed here. Search over sealed fields (exact
    # only, by blind index) is tests/integration/test_privacy.py's.
    r = world.client.patch(
        "/v1/tenants/acme", json={"privacy": {"encrypt": []}}, headers=world.admin
    )
    assert r.status_code == 200, r.text
    rng = random.Random(5)
    batch = [_acme_event(rng, i) for i in range(120)]
    r = world.client.post(
        "/v1/events/batch", json={"events": batch}, headers=world.h("acme", "writer")
    )
    assert r.status_code == 200 and r.json()["created"] == 120, r.text
    return world.all_events("acme")
