"""Storage for privacy, through the Store API, on both backends: subjects' data keys
(one live key per subject, generations after erasure), the tenant's index key, the
tenant's privacy settings, and the events per subject that the indexer counts.

Every test has a second tenant, "other", holding the same subject ids, so each one also
shows that nothing of one tenant is returned for another.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from tests.conftest import make_settings
from trailkeep.app import build_store
from trailkeep.kit.jsonutil import loads
from trailkeep.kit.timeutil import format_us, now_us
from trailkeep.store.derived.check import derived_problems
from trailkeep.store.models import EventDraft, SubjectKey, SubjectStats, TenantRecord
from trailkeep.store.protocol import Store
from trailkeep.store.sql_store import SharedSqlStore

A, B = "acme", "other"
Body = Callable[[Store], Awaitable[None]]


@asynccontextmanager
async def _open(tmp_path: Path) -> AsyncIterator[Store]:
    store = build_store(make_settings(tmp_path))
    await store.start()
    store.start_indexer()
    try:
        yield store
    finally:
        await store.close()


def _run(tmp_path: Path, body: Body) -> None:
    async def main() -> None:
        async with _open(tmp_path) as store:
            for tenant in (A, B):
                assert await store.create_tenant(TenantRecord(tenant, tenant, None, False, 1, 1))
            await body(store)

    asyncio.run(main())


def _key(tenant: str, key_id: str, subject: str, at: int = 1) -> SubjectKey:
    return SubjectKey(tenant, key_id, subject, f"wrapped:{tenant}:{key_id}".encode(), at)


_BASE_US = now_us() - 3_600_000_000  # an hour ago: the partitions PostgreSQL makes at start


def _draft(tenant: str, n: int, occurred: int, doc: dict[str, Any] | None = None) -> EventDraft:
    """An event as the domain hands it to the store (events/normalize.to_draft)."""
    event_id = f"{tenant}-{n}"
    full = {
        "action": "doc.read",
        "actor": {"id": f"u{n % 5}"},
        "targets": [{"type": "document", "id": f"d{n % 3}"}],
        "outcome": "success",
        "severity": "info",
        "id": event_id,
        "tenant_id": tenant,
        "occurred_at": format_us(occurred),
        "received_at": format_us(occurred),
        **(doc or {}),
    }
    return EventDraft(
        tenant_id=tenant,
        id=event_id,
        id_supplied=False,
        occurred_at=occurred,
        received_at=occurred,
        action="doc.read",
        actor_id=f"u{n % 5}",
        actor_type="user",
        severity=2,
        outcome="success",
        request_hash=n.to_bytes(16, "big"),
        doc=full,
        targets=[("document", f"d{n % 3}")],
    )


def _subject(sid: str) -> dict[str, Any]:
    return {"subject": {"id": sid, "key": f"k-{sid}"}}


# -- subject keys -------------------------------------------------------------------------


def test_subject_keys_are_added_and_found_per_tenant(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        assert await store.live_subject_keys(A, ["s1"]) == {}
        added = await store.add_subject_keys(A, [_key(A, "ka1", "s1"), _key(A, "ka2", "s2")])
        assert added == {"s1": _key(A, "ka1", "s1"), "s2": _key(A, "ka2", "s2")}
        # The same subject ids in the other tenant are other subjects with other keys.
        theirs = await store.add_subject_keys(B, [_key(B, "kb1", "s1")])
        assert theirs == {"s1": _key(B, "kb1", "s1")}

        live = await store.live_subject_keys(A, ["s1", "s2", "s3", "s1"])
        assert live == {"s1": _key(A, "ka1", "s1"), "s2": _key(A, "ka2", "s2")}
        assert await store.live_subject_keys(B, ["s1", "s2"]) == {"s1": _key(B, "kb1", "s1")}
        assert await store.live_subject_keys(A, []) == {}

        # An existing live key wins over a new candidate (and is what the add returns).
        again = await store.add_subject_keys(A, [_key(A, "ka9", "s1"), _key(A, "ka3", "s3")])
        assert again == {"s1": _key(A, "ka1", "s1"), "s3": _key(A, "ka3", "s3")}
        assert await store.subject_keys_by_id(A, ["ka9"]) == {}

        by_id = await store.subject_keys_by_id(A, ["ka1", "ka3", "kb1", "nope"])
        assert by_id == {"ka1": _key(A, "ka1", "s1"), "ka3": _key(A, "ka3", "s3")}
        assert await store.subject_keys_by_id(B, ["ka1", "kb1"]) == {"kb1": _key(B, "kb1", "s1")}
        assert await store.subject_key_history(A, "s1") == [_key(A, "ka1", "s1")]
        assert await store.subject_key_history(A, "nobody") == []

        # IN lists longer than one chunk (500).
        many = [_key(A, f"m{i}", f"many-{i}") for i in range(1200)]
        assert len(await store.add_subject_keys(A, many)) == 1200
        found = await store.live_subject_keys(A, [f"many-{i}" for i in range(1200)])
        assert found == {k.subject_id: k for k in many}
        assert len(await store.subject_keys_by_id(A, [f"m{i}" for i in range(1200)])) == 1200
        assert await store.live_subject_keys(B, [f"many-{i}" for i in range(1200)]) == {}

    _run(tmp_path, body)


def test_racing_adds_for_one_subject_agree_on_one_key(tmp_path: Path) -> None:
    """Two stores on one database (as two processes would be) and concurrent calls within
    each: whoever commits first wins, and every caller gets the winner."""

    async def body(store: Store) -> None:
        second = build_store(make_settings(tmp_path))
        await second.start()
        try:
            for round_no in range(5):
                subjects = [f"r{round_no}-{i}" for i in range(40)]
                calls = [
                    s.add_subject_keys(
                        A, [_key(A, f"{name}-{round_no}-{sid}", sid) for sid in order]
                    )
                    for s, name, order in (
                        (store, "x", subjects),
                        (second, "y", subjects[::-1]),
                        (store, "z", subjects[::-1]),
                        (second, "w", subjects),
                    )
                ]
                answers = await asyncio.gather(*calls)
                assert all(answer == answers[0] for answer in answers[1:])
                assert set(answers[0]) == set(subjects)
                for sid in subjects:
                    history = await store.subject_key_history(A, sid)
                    assert history == [answers[0][sid]]
            # A candidate repeated in one call: its first wins.
            twice = await store.add_subject_keys(A, [_key(A, "t1", "dup"), _key(A, "t2", "dup")])
            assert twice == {"dup": _key(A, "t1", "dup")}
            assert await store.live_subject_keys(B, ["dup", "r0-0"]) == {}
        finally:
            await second.close()

    _run(tmp_path, body)


def test_erasure_drops_the_key_and_the_subject_gets_a_new_generation(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        await store.add_subject_keys(A, [_key(A, "g1", "s1", at=10), _key(A, "o1", "s2")])
        await store.add_subject_keys(B, [_key(B, "b1", "s1", at=10)])

        erased = await store.erase_subject_keys(A, "s1", 20, "admin:k1")
        gone = SubjectKey(A, "g1", "s1", None, 10, 20, "admin:k1")
        assert erased == [gone]
        assert await store.live_subject_keys(A, ["s1", "s2"]) == {"s2": _key(A, "o1", "s2")}
        assert await store.subject_keys_by_id(A, ["g1"]) == {"g1": gone}
        # Nothing else was erased: not the other tenant's s1, not erased twice.
        assert await store.live_subject_keys(B, ["s1"]) == {"s1": _key(B, "b1", "s1", at=10)}
        assert await store.erase_subject_keys(A, "s1", 30, "admin:k1") == []
        assert await store.erase_subject_keys(A, "unknown", 30, "admin:k1") == []
        assert await store.erase_subject_keys(B, "s2", 30, "admin:k1") == []

        # The next event of the subject gets a new key: its next generation.
        fresh = await store.add_subject_keys(A, [_key(A, "g2", "s1", at=40)])
        assert fresh == {"s1": _key(A, "g2", "s1", at=40)}
        assert await store.subject_key_history(A, "s1") == [gone, _key(A, "g2", "s1", at=40)]
        both = await store.subject_keys_by_id(A, ["g1", "g2"])
        assert both == {"g1": gone, "g2": _key(A, "g2", "s1", at=40)}
        second = await store.erase_subject_keys(A, "s1", 50, "admin:k2")
        assert second == [SubjectKey(A, "g2", "s1", None, 40, 50, "admin:k2")]
        assert [k.key_id for k in await store.subject_key_history(A, "s1")] == ["g1", "g2"]
        assert await store.subject_key_history(B, "s1") == [_key(B, "b1", "s1", at=10)]

    _run(tmp_path, body)


# -- the tenant's index key ---------------------------------------------------------------


def test_the_tenant_index_key_is_stored_once(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        assert await store.sample_tenant_index_key() is None
        assert await store.tenant_index_key(A) is None
        assert await store.add_tenant_index_key(A, b"first", 1) == b"first"
        # An existing key wins; racing adds all get the stored one.
        answers = await asyncio.gather(
            *(store.add_tenant_index_key(A, f"late{i}".encode(), 2) for i in range(4))
        )
        assert answers == [b"first"] * 4
        assert await store.tenant_index_key(A) == b"first"
        assert await store.tenant_index_key(B) is None
        assert await store.sample_tenant_index_key() == (A, b"first")
        assert await store.add_tenant_index_key(B, b"theirs", 3) == b"theirs"
        assert await store.tenant_index_key(A) == b"first"
        assert await store.sample_tenant_index_key() in ((A, b"first"), (B, b"theirs"))

    _run(tmp_path, body)


# -- the tenant's privacy settings --------------------------------------------------------


def test_tenant_privacy_settings_round_trip(tmp_path: Path) -> None:
    settings = {"fields": {"actor.email": "seal"}, "mask": ["context.ip_address"], "n": 1.5}

    async def body(store: Store) -> None:
        record = TenantRecord("private", "Private", None, False, 5, 5, settings)
        assert await store.create_tenant(record)
        got = await store.get_tenant("private")
        assert got is not None and got.privacy == settings
        assert (await store.get_tenant(A)) == TenantRecord(A, A, None, False, 1, 1)
        listed = {t.id: t.privacy for t in await store.list_tenants(None, 10)}
        assert listed == {A: None, B: None, "private": settings}

        changed = {"fields": {"actor.name": "seal"}}
        assert await store.update_tenant("private", {"privacy": changed, "updated_at": 6})
        got = await store.get_tenant("private")
        assert got is not None and got.privacy == changed and got.updated_at == 6
        assert await store.update_tenant(A, {"privacy": {"fields": {}}})
        assert await store.update_tenant("private", {"privacy": None})
        got = await store.get_tenant("private")
        assert got is not None and got.privacy is None
        acme = await store.get_tenant(A)
        assert acme is not None and acme.privacy == {"fields": {}}
        other = await store.get_tenant(B)
        assert other is not None and other.privacy is None
        assert not await store.update_tenant("missing", {"privacy": changed})

    _run(tmp_path, body)


# -- events per subject -------------------------------------------------------------------


def _expected(drafts: list[EventDraft], seqs: list[int]) -> dict[str, SubjectStats]:
    """The Python count of what subject_stats must hold (check.py has its own twin)."""
    found: dict[str, SubjectStats] = {}
    for draft, seq in zip(drafts, seqs, strict=True):
        subject = draft.doc.get("subject")
        if not isinstance(subject, dict):
            continue
        sid, at = subject["id"], draft.occurred_at
        was = found.get(sid)
        found[sid] = (
            SubjectStats(sid, 1, seq, seq, at, at)
            if was is None
            else SubjectStats(
                sid,
                was.events + 1,
                min(was.first_seq, seq),
                max(was.last_seq, seq),
                min(was.first_at, at),
                max(was.last_at, at),
            )
        )
    return found


async def _append(store: Store, drafts: list[EventDraft], batch: int) -> list[int]:
    seqs: list[int] = []
    for start in range(0, len(drafts), batch):
        results = await store.append_events(drafts[start : start + batch])
        assert all(r.status == "created" for r in results)
        seqs += [r.seq for r in results]
    return seqs


async def _derived_problems(store: Store, tenant: str) -> list[str]:
    """The recount check (store/derived/check.py), on one of the store's own read
    connections (both backends' stores are SharedSqlStores)."""
    sql = cast(SharedSqlStore, store)
    postgres = sql.postgres
    return await sql._read(lambda c: derived_problems(c, postgres, tenant))


def _acme_events() -> list[EventDraft]:
    """300 events: 3 subjects (occurred times out of seq order, so the earliest event of
    a subject need not be its first seq), some without a subject, and some that only
    mention a subject below the top level (which counts for nobody)."""
    drafts = []
    for n in range(300):
        occurred = _BASE_US + ((n * 7919) % 300) * 1_000_000
        if n % 10 == 9:
            doc: dict[str, Any] = {"message": "no subject"}
        elif n % 10 == 8:
            doc = {"metadata": {"subject": {"id": "s1", "key": "nested"}}}
        else:
            doc = _subject(("s1", "s2", "s3")[n % 3])
            if n % 7 == 0:
                doc["metadata"] = {"note": 'a "subject":{ look-alike'}
        drafts.append(_draft(A, n, occurred, doc))
    return drafts


def test_subject_stats_count_exactly_what_the_indexer_applied(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        mine = _acme_events()
        theirs = [_draft(B, n, _BASE_US + n, _subject(("s1", "s9")[n % 2])) for n in range(40)]
        their_seqs = await _append(store, theirs, 13)
        seqs = await _append(store, mine[:150], 1)  # one range per event or a few
        seqs += await _append(store, mine[150:], 70)
        assert await store.index_caught_up(10)
        assert await store.indexed_through(A) == 300

        want = _expected(mine, seqs)
        assert set(want) == {"s1", "s2", "s3"}
        assert sum(s.events for s in want.values()) == 240
        for sid, stats in want.items():
            assert await store.subject_stats(A, sid) == stats
        assert await store.subject_stats(A, "s9") is None
        assert await store.subject_stats(A, "nested") is None
        want_theirs = _expected(theirs, their_seqs)
        for sid in ("s1", "s9"):
            assert await store.subject_stats(B, sid) == want_theirs[sid]
        assert await _derived_problems(store, A) == []
        assert await _derived_problems(store, B) == []

        # Later events add to the counts and widen the bounds.
        later = [_draft(A, 300 + n, _BASE_US - 5_000_000 + n, _subject("s2")) for n in range(5)]
        later_seqs = await _append(store, later, 5)
        assert await store.index_caught_up(10)
        s2 = await store.subject_stats(A, "s2")
        assert s2 == _expected(mine + later, seqs + later_seqs)["s2"]
        assert s2 is not None and s2.last_seq == 304 and s2.first_at == _BASE_US - 5_000_000
        assert await _derived_problems(store, A) == []

    _run(tmp_path, body)


def test_deleting_a_tenant_removes_its_keys_and_counts(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        for tenant in (A, B):
            await store.add_subject_keys(tenant, [_key(tenant, f"{tenant}-k", "s1")])
            await store.add_tenant_index_key(tenant, tenant.encode(), 1)
            await _append(store, [_draft(tenant, n, _BASE_US, _subject("s1")) for n in range(3)], 3)
        assert await store.index_caught_up(10)
        assert await store.delete_tenant(A)

        assert await store.live_subject_keys(A, ["s1"]) == {}
        assert await store.subject_keys_by_id(A, [f"{A}-k"]) == {}
        assert await store.subject_key_history(A, "s1") == []
        assert await store.tenant_index_key(A) is None
        assert await store.subject_stats(A, "s1") is None
        assert await store.sample_tenant_index_key() == (B, B.encode())
        # The other tenant keeps everything.
        assert await store.live_subject_keys(B, ["s1"]) == {"s1": _key(B, f"{B}-k", "s1")}
        assert await store.tenant_index_key(B) == B.encode()
        stats = await store.subject_stats(B, "s1")
        assert stats == SubjectStats("s1", 3, 0, 2, _BASE_US, _BASE_US)

    _run(tmp_path, body)


def test_get_event_at_returns_the_stored_body_of_a_seq(tmp_path: Path) -> None:
    async def body(store: Store) -> None:
        mine = await store.append_events(
            [_draft(A, n, _BASE_US + n, _subject("s1")) for n in range(3)]
        )
        theirs = await store.append_events([_draft(B, 0, _BASE_US)])
        for result in mine:
            assert await store.get_event_at(A, result.seq) == result.body
        assert loads(mine[1].body)["seq"] == 1 and loads(mine[1].body)["subject"]["id"] == "s1"
        assert await store.get_event_at(B, 0) == theirs[0].body != mine[0].body
        assert await store.get_event_at(A, 3) is None
        assert await store.get_event_at(B, 1) is None
        assert await store.get_event_at("nobody", 0) is None

    _run(tmp_path, body)
