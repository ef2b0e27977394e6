"""GET /v1/events?q=: the query language over both backends, full text included.

Every query's answer is compared with tests/query_reference.py evaluated over all of
acme's events, so both backends are shown to give the same results (and to follow the
documented rules); globex's events (the `world` fixture) must never appear. Each query
runs with the full-text probe large enough to answer (common words), and with a probe
of 3 rows, which sends every positive word to the full-text index: there (SQLite) with
few matches looked up one by one, and with FEW_MATCHES at 1, walking events newest
first against the set of matches.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GLOBEX_SECRET, World
from tests.query_reference import matches
from trailkeep.kit.timeutil import now_us
from trailkeep.query.parser import parse_query
from trailkeep.store.reads import fulltext, fulltext_walk

QUERIES = [
    "",
    "disk",
    "DISK full",
    '"disk full"',
    '"full disk"',
    "dis*",
    "pass* reset",
    "-disk",
    "-disk -password action:user.*",
    "überweisung",
    "foo-bar",
    '"foo bar example"',
    "1500",
    "lovelace",
    '"ada lovelace"',
    '"lovelace reset"',  # across fields: never a phrase
    "roadmap",
    '"budget 2024"',
    "enterprise",
    "eu",
    "drop table",
    "nosuchword",
    "action:user.login",
    "action:user.*,billing.pay",
    "-action:user.* severity>=WARNING",
    "actor.id:u1,u3 outcome:failure",
    "actor.id:svc*",
    "-actor.id:u1",
    "actor.type:service",
    "-actor.type:service",
    "actor.type:service metadata.plan:pro",
    "actor.type:service reset",
    "actor.type:user,service -metadata.plan:free severity>=NOTICE",
    'actor.name:"Ada Lovelace"',
    'actor.name:"Ada"*',
    "-actor.name:Alan*",
    "target.type:document",
    "target.type:document target.id:d1",
    "target.type:folder target.id:d1,d2",
    "target.id:d3*",
    "-target.type:folder",
    "severity:INFO,CRITICAL",
    "-severity:DEBUG",
    "outcome:failure -severity>=ERROR",
    "ip:10.0.0.0/8",
    "ip:2001:db8::/32",
    "-ip:10.1.2.3",
    "request_id:req-3",
    "request_id:req*",
    "metadata.plan:pro",
    "metadata.plan:e*",
    "-metadata.plan:free",
    "metadata.geo.zone:eu-1",
    "metadata.count:5",  # numbers never match (strings only)
    "metadata.city:Zürich",
    'metadata.city:"São Paulo",a/b',
    'metadata.city:"say \\"hi\\""',
    'metadata.city:"back\\\\slash"',
    'metadata.city:"say \\"h"*',
    "metadata.city:Z*,S*",
    "-metadata.city:Zürich",
    "occurred:2024-03-02",
    "occurred>=2024-03-02T12:00Z occurred<2024-03-03",
    "-occurred:2024-03-01..2024-03-03",
    "occurred:2024-03-02..2024-03-04 disk -action:document.*",
    "reset metadata.plan:pro,free target.type:document",
    "globex",  # another tenant's words never leak
]


@pytest.mark.parametrize(
    ("probe", "first", "few"),
    [
        (fulltext.PROBE_ROWS, fulltext.PROBE_FIRST, fulltext.FEW_MATCHES),
        # A probe in steps sized by the matches seen, giving up or filling the page.
        (60, 4, fulltext.FEW_MATCHES),
        (3, 3, fulltext.FEW_MATCHES),
        (3, 3, 1),
    ],
)
def test_queries_match_the_reference(
    world: World,
    acme: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    probe: int,
    first: int,
    few: int,
) -> None:
    monkeypatch.setattr(fulltext, "PROBE_ROWS", probe)
    monkeypatch.setattr(fulltext, "PROBE_FIRST", first)
    monkeypatch.setattr(fulltext, "FEW_MATCHES", few)
    # PostgreSQL's walk: windows from ``first`` rows, the GIN index after ``probe``.
    monkeypatch.setattr(fulltext_walk, "WALK_FIRST", first)
    monkeypatch.setattr(fulltext_walk, "WALK_ROWS", probe)
    assert len(acme) == 120
    for text in QUERIES:
        got = world.all_events("acme", q=text)
        query = parse_query(text, now_us=now_us())
        want = [e["id"] for e in acme if matches(e, query)]
        assert [e["id"] for e in got] == want, text
        # A small page: the probe's steps fill it, or give up for the index.
        first = world.list("acme", q=text, limit=5)
        assert first.status_code == 200, first.text
        assert [e["id"] for e in first.json()["data"]] == want[:5], text
    assert any(world.all_events("acme", q="disk")), "the data must exercise full text"
    for text in QUERIES:
        if text.startswith("metadata.city:"):
            assert world.all_events("acme", q=text), f"the data must match {text}"
    assert world.all_events("acme", q=GLOBEX_SECRET) == []
    world.assert_globex_untouched()


def test_pages_of_a_search_follow_each_other(world: World, acme: list[dict[str, Any]]) -> None:
    for text in ("disk", "-disk action:user.*", "occurred>-3650d reset"):
        query = parse_query(text, now_us=now_us())
        want = [e["id"] for e in acme if matches(e, query)]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"q": text, "limit": 7}
            if cursor:
                params["cursor"] = cursor
            r = world.list("acme", **params)
            assert r.status_code == 200, r.text
            seen += [e["id"] for e in r.json()["data"]]
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        assert seen == want, text
    # A cursor is bound to its query.
    r = world.list("acme", q="disk", limit=2)
    r = world.list("acme", q="reset", cursor=r.json()["next_cursor"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"


def test_q_combines_with_the_filter_parameters(world: World, acme: list[dict[str, Any]]) -> None:
    got = world.all_events("acme", q="disk", action="user.*", severity="WARNING")
    query = parse_query("disk action:user.* severity>=WARNING", now_us=now_us())
    assert [e["id"] for e in got] == [e["id"] for e in acme if matches(e, query)]


BAD = [
    ('foo "disk full', "unbalanced quote", 4),
    ("actr.id:u1", "did you mean 'actor.id'", 0),
    ("severity>=SEVERE", "unknown severity", 10),
    ("occurred:2026-02-01..2026-01-01", "empty range", 9),
    ("occurred>=99999-01-01", "", None),
    ("' OR 1=1 --", "no letters or digits", 0),
    ("a OR b", "OR is not supported", 2),
    ("x\x00y", "", None),
    ("(action:a)", "", None),
    ("/.*/", "", None),
    ("a" * 60_000, "longer than", None),  # the client library caps URLs at 64 KiB
    (" ".join(["w"] * 40), "terms", None),
    ("x" * 300, "", None),
]


@pytest.mark.parametrize(("text", "message", "position"), BAD)
def test_bad_queries_are_400_naming_the_problem(
    world: World, text: str, message: str, position: int | None
) -> None:
    r = world.list("acme", q=text)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_query"
    assert message in error["message"]
    assert isinstance(error["details"]["position"], int)
    if position is not None:
        assert error["details"]["position"] == position
    r = world.client.get(
        "/v1/stats", params={"q": text, "group_by": "action"}, headers=world.h("acme", "reader")
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_query"
    world.assert_globex_untouched()


def test_words_longer_than_the_index_takes_match_nothing(
    world: World, acme: list[dict[str, Any]]
) -> None:
    r = world.list("acme", q="a" * 65)
    assert r.status_code == 200 and r.json()["data"] == []
    assert len(world.all_events("acme", q="-" + "a" * 65)) == len(acme)
