"""The indexer: full text and stats follow the log after commit (store/log/follower.py).

What a reader sees: filtered reads see an event as soon as it is acknowledged; full-text
pages and stats say up to which seq they are current (Trailkeep-Indexed-To-Seq), and
what they answer holds at least every event below it. A poisoned event is skipped, recorded
with its seq, and never stops indexing for other events or tenants. Every other test of
search and stats reads after the indexer caught up (tests/conftest.py); these read
without waiting.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World, event
from trailkeep.store.fulltext import text_worker

HEADER = "Trailkeep-Indexed-To-Seq"


def _unsettled(world: World) -> None:
    """Read without letting the indexer catch up first."""
    world.client.event_hooks["request"] = []


def _caught_up(world: World) -> None:
    assert world.client.portal is not None
    store = world.client.app.state.services.store  # type: ignore[attr-defined]
    assert world.client.portal.call(store.index_caught_up, 30.0)


def _stats(world: World, tenant: str, **params: Any) -> Any:
    params.setdefault("group_by", "action")
    r = world.client.get("/v1/stats", params=params, headers=world.h(tenant, "reader"))
    assert r.status_code == 200, r.text
    return r


def test_a_filtered_read_sees_an_event_at_once_and_derived_reads_say_how_far_they_are(
    world: World,
) -> None:
    _unsettled(world)
    for round_no in range(6):
        batch = [
            event("doc.edit", f"u{i}", message=f"quarterly report round{round_no}")
            for i in range(200)
        ]
        r = world.client.post(
            "/v1/events/batch", json={"events": batch}, headers=world.h("acme", "writer")
        )
        assert r.status_code == 200, r.text
        last_seq = r.json()["results"][-1]["seq"]
        # The log: a filtered read sees the acknowledged events at once.
        page = world.list("acme", action="doc.edit", limit=1)
        assert page.json()["data"][0]["seq"] == last_seq
        assert HEADER not in page.headers  # no derived data in that answer
        # Stats: every event below the watermark is counted (the watermark is read
        # first: the indexer may have gone further by the time the counts are read).
        answer = _stats(world, "acme")
        indexed = answer.json()["indexed_to_seq"]
        assert int(answer.headers[HEADER]) == indexed
        assert 0 <= indexed <= answer.json()["total"] <= last_seq + 1
        # Full text: the header says how far the search could see.
        found = world.client.get(
            "/v1/events",
            params={"q": f"quarterly round{round_no}", "limit": 1000},
            headers=world.h("acme", "reader"),
        )
        assert found.status_code == 200
        searched_to = int(found.headers[HEADER])
        this_round = range(last_seq - 199, last_seq + 1)
        seqs = {e["seq"] for e in found.json()["data"]}
        assert seqs <= set(this_round)
        assert seqs >= {seq for seq in this_round if seq < searched_to}
    _caught_up(world)
    answer = _stats(world, "acme").json()
    assert answer["total"] == answer["indexed_to_seq"] == 1200
    globex = _stats(world, "globex").json()
    assert globex["total"] == globex["indexed_to_seq"] == len(world.globex_ids)


@pytest.mark.sqlite_only  # PostgreSQL's indexer runs no per-event code that can fail
@pytest.mark.settings(index_processes=0)  # tokenize in this process, where the test breaks it
def test_a_poisoned_event_is_skipped_recorded_and_does_not_stop_indexing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = text_worker.text_of

    def exploding(doc: dict[str, Any]) -> str:
        if doc.get("message") == "poison":
            raise ValueError("the tokenizer choked")
        return real(doc)

    monkeypatch.setattr(text_worker, "text_of", exploding)
    good = [event("a.one", "u1", message="alpha before"), event("a.two", "u2", message="poison")]
    good.append(event("a.three", "u3", message="alpha after"))
    r = world.client.post(
        "/v1/events/batch", json={"events": good}, headers=world.h("acme", "writer")
    )
    assert r.status_code == 200, r.text
    poisoned = r.json()["results"][1]["seq"]
    other = world.post("globex", event("g.later", "g9", message="alpha globex"))
    assert other.status_code == 201, other.text
    world.globex_ids.append(other.json()["id"])
    _caught_up(world)
    store = world.client.app.state.services.store  # type: ignore[attr-defined]
    assert world.client.portal is not None
    skips = world.client.portal.call(store.index_skips, "acme")
    assert [seq for seq, _error in skips] == [poisoned]
    assert "ValueError: the tokenizer choked" in skips[0][1]
    found = world.client.get(
        "/v1/events", params={"q": "alpha"}, headers=world.h("acme", "reader")
    ).json()["data"]
    assert sorted(e["action"] for e in found) == ["a.one", "a.three"]
    # The skipped event is still in the log and in the stats (only its text failed),
    # and the indexer went on past it, for this tenant and the other.
    assert world.list("acme", action="a.two").json()["data"][0]["seq"] == poisoned
    answer = _stats(world, "acme").json()
    assert answer["indexed_to_seq"] == 3 and answer["total"] == 3
    globex = world.client.get(
        "/v1/events", params={"q": "alpha"}, headers=world.h("globex", "reader")
    ).json()["data"]
    assert [e["action"] for e in globex] == ["g.later"]
    indexer = world.client.get("/readyz").json()["indexer"]  # counted where operators look
    assert indexer["skipped"] == 1 and indexer["running"] is True


@pytest.mark.sqlite_only  # the worker process tokenizes SQLite's full-text rows
@pytest.mark.settings(index_processes=1)
def test_the_tokenizer_process_indexes_what_a_thread_would(world: World) -> None:
    r = world.client.post(
        "/v1/events/batch",
        json={
            "events": [event("doc.read", f"u{i}", message=f"Zebra crossing {i}") for i in range(50)]
        },
        headers=world.h("acme", "writer"),
    )
    assert r.status_code == 200, r.text
    found = world.client.get(
        "/v1/events", params={"q": "zebra", "limit": 100}, headers=world.h("acme", "reader")
    )
    assert found.status_code == 200
    assert sorted(e["message"] for e in found.json()["data"]) == sorted(
        f"Zebra crossing {i}" for i in range(50)
    )
    assert int(found.headers[HEADER]) == 50
