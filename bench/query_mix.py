"""The query mix of bench/query.py: what is asked, and how an answer is checked.

Each query is a list of ``Term``s that renders to the query language
(docs/query-language.md) and evaluates itself on an event's JSON, so every returned row
can be checked on its own (``row_problem``); bench/duck_baseline.py turns the same
terms into DuckDB SQL for the exact expected answer. A query varies over a small pool
of values (actors, target ids, days, words of a frequency class) chosen from the
seed, so the same data set always gets the same mix.

Classes and targets (issue 5): "filtered" (p95 <= 10 ms), "fulltext" (p95 <= 50 ms),
"stats" (p95 <= 20 ms and below DuckDB's p95 for the same numbers); "baseline" (no
filter) has no target.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trailkeep.kit.event_vocabulary import SEVERITY_RANK
from vocabulary import TOKEN, tokens, vocabulary
from workload import DAY_US, EventFactory, reserved_tokens, rfc3339_us

TARGETS_MS = {"filtered": 10.0, "fulltext": 50.0, "stats": 20.0}
CLASSES = ("baseline", "filtered", "fulltext", "stats")
POOL = 20  # values per query at most (each distinct request is checked exactly once)
STATS_DAYS = 30
STATS_GROUPS = ("action", "severity", "outcome", "actor", "target_type")
SEVERITIES = sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__)


@dataclass(frozen=True)
class Term:
    """One term of a query: ``field`` is a query field name, or "word", "prefix",
    "phrase". ``value``: the text; for severity the lowest level; for occurred a
    (from_us, to_us) pair of day starts."""

    field: str
    value: Any
    negated: bool = False

    def text(self) -> str:
        sign = "-" if self.negated else ""
        if self.field == "word":
            return sign + self.value
        if self.field == "prefix":
            return sign + self.value + "*"
        if self.field == "phrase":
            return f'{sign}"{self.value}"'
        if self.field == "severity":
            return f"{sign}severity>={self.value}"
        if self.field == "occurred":
            lo, hi = (rfc3339_us(t)[:10] for t in self.value)
            return f"{sign}occurred:{lo}..{hi}"
        return f"{sign}{self.field}:{self.value}"

    def holds(self, row: dict[str, Any], search: str) -> bool:
        return self._holds(row, search) != self.negated

    def _holds(self, row: dict[str, Any], search: str) -> bool:
        f, v = self.field, self.value
        if f == "action":
            action: str = row["action"]
            return action.startswith(v[:-1]) if v.endswith("*") else action == v
        if f in ("actor.id", "actor.type"):
            return bool((row.get("actor") or {}).get(f[6:]) == v)
        if f in ("target.type", "target.id"):
            return any(t.get(f[7:]) == v for t in row.get("targets") or ())
        if f == "outcome":
            return bool(row["outcome"] == v)
        if f == "severity":
            return SEVERITY_RANK[row["severity"]] >= SEVERITY_RANK[v]
        if f == "occurred":
            lo, hi = (rfc3339_us(t) for t in v)
            return bool(lo <= row["occurred_at"] < hi)
        if f.startswith("metadata."):
            return bool((row.get("metadata") or {}).get(f[9:]) == v)
        if f == "word":
            return f" {v} " in search
        if f == "prefix":
            return f" {v}" in search
        if f == "phrase":
            return f" {' '.join(tokens(v))} " in search
        raise ValueError(f"no such term field {f!r}")


def query_text(terms: tuple[Term, ...]) -> str:
    return " ".join(t.text() for t in terms)


def search_text(row: dict[str, Any]) -> str:
    """An event's full-text fields as tokens: "| message tokens | actor name | target
    names... | metadata values... |"; " word " inside means the token is in one field."""
    fields: list[str] = []
    if isinstance(row.get("message"), str):
        fields.append(row["message"])
    name = (row.get("actor") or {}).get("name")
    if isinstance(name, str):
        fields.append(name)
    fields += [t["name"] for t in row.get("targets") or () if isinstance(t.get("name"), str)]
    fields += _metadata_values(row.get("metadata"))
    # Lower-casing the joined tokens is lower-casing each (str.lower maps characters).
    parts = (" ".join(TOKEN.findall(text)).lower() for text in fields)
    return "|" + "|".join(f" {p} " for p in parts if p) + "|"


def _metadata_values(value: Any) -> list[str]:
    """Strings and numbers anywhere in metadata, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [str(value)]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [text for item in items for text in _metadata_values(item)]


# -- the mix -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventQuery:
    """GET /v1/events?q=...: one of ``pool`` per request (a cycle shuffled by the seed)."""

    name: str
    cls: str
    pool: tuple[tuple[Term, ...], ...]
    deep: bool = False  # followed by the cursor walk

    def texts(self) -> list[str]:
        return [query_text(terms) for terms in self.pool]


@dataclass(frozen=True)
class StatsQuery:
    """GET /v1/stats?q=...&group_by=...&interval=...&top=N over one of ``pool``."""

    name: str
    group_by: str
    interval: str
    pool: tuple[tuple[Term, ...], ...]  # each starts with its occurred range
    cls: str = "stats"

    def params(self, terms: tuple[Term, ...], top: int) -> dict[str, str]:
        return {
            "q": query_text(terms),
            "group_by": self.group_by,
            "interval": self.interval,
            "top": str(top),
        }


@dataclass(frozen=True)
class Timeline:
    """The full UTC days of the data set: [first_day, end_day) in µs."""

    first_day: int
    end_day: int  # start of the last, partial day: the end of the last full day

    @classmethod
    def of(cls, end_us: int, span_us: int) -> Timeline:
        start = end_us - span_us
        return cls(-(-start // DAY_US) * DAY_US, end_us // DAY_US * DAY_US)

    def days(self) -> int:
        return (self.end_day - self.first_day) // DAY_US


def _pool(rng: random.Random, items: list[Any], size: int = POOL) -> list[Any]:
    return items if len(items) <= size else rng.sample(items, size)


def word_classes(factory: EventFactory, rng: random.Random) -> dict[str, list[str]]:
    """The query words of each frequency class (deterministic for a seed)."""
    vocab = vocabulary()
    reserved = reserved_tokens()
    mid = vocab.words_of_class("mid", reserved)[:10]
    rare = sorted(vocab.words_of_class("rare", reserved))
    return {"common": vocab.words_of_class("common"), "mid": mid, "rare": _pool(rng, rare)}


def event_queries(factory: EventFactory, timeline: Timeline, seed: int) -> list[EventQuery]:
    rng = random.Random(f"{seed}:query-mix")
    users = [a.id for a in factory.actors if a.type == "user"]
    actors = _pool(rng, users)
    docs = [f"doc_{n:06d}" for n in _pool(rng, list(range(50_000)))]
    days = [timeline.first_day + d * DAY_US for d in range(timeline.days())]
    words = word_classes(factory, rng)

    def one(*terms: Term) -> tuple[tuple[Term, ...], ...]:
        return (terms,)

    T = Term
    severe = T("severity", "ERROR")
    return [
        EventQuery("no filter", "baseline", ((),)),
        EventQuery("action", "filtered", one(T("action", "user.login"))),
        EventQuery("actor.id", "filtered", tuple((T("actor.id", a),) for a in actors)),
        EventQuery("action prefix", "filtered", one(T("action", "user.*")), deep=True),
        EventQuery(
            "target type+id",
            "filtered",
            tuple((T("target.type", "document"), T("target.id", d)) for d in docs),
        ),
        EventQuery("severity", "filtered", one(severe), deep=True),
        EventQuery("outcome", "filtered", one(T("outcome", "failure"))),
        EventQuery(
            "one day",
            "filtered",
            tuple((T("occurred", (d, d + DAY_US)),) for d in _pool(rng, days)),
        ),
        EventQuery(
            "action+outcome",
            "filtered",
            one(T("action", "document.updated"), T("outcome", "failure")),
        ),
        EventQuery(
            "not action+severity",
            "filtered",
            one(T("action", "user.login", negated=True), T("severity", "WARNING")),
        ),
        EventQuery("actor.type", "filtered", one(T("actor.type", "service"))),
        EventQuery("metadata+severity", "filtered", one(T("metadata.plan", "enterprise"), severe)),
        EventQuery("common word", "fulltext", tuple((T("word", w),) for w in words["common"])),
        EventQuery("mid word", "fulltext", tuple((T("word", w),) for w in words["mid"])),
        EventQuery("rare word", "fulltext", tuple((T("word", w),) for w in words["rare"])),
        EventQuery("word prefix", "fulltext", one(T("prefix", "pass"))),
        EventQuery("phrase", "fulltext", one(T("phrase", "disk full"))),
        EventQuery(
            "word+filter", "fulltext", one(T("word", "session"), T("action", "user.*")), deep=True
        ),
        EventQuery(
            "not word+filter",
            "fulltext",
            one(T("word", "session", negated=True), T("action", "document.*")),
        ),
    ]


def stats_queries(timeline: Timeline, shifts: int = 5) -> list[StatsQuery]:
    """30-day windows of whole days ending with the data set's last full day (or up to
    ``shifts - 1`` days before it): absolute dates, so a reused data set gives the same
    answers on a later day."""
    windows = [
        occurred_term(timeline.end_day - (k + STATS_DAYS) * DAY_US, timeline.end_day - k * DAY_US)
        for k in range(shifts)
        if timeline.end_day - (k + STATS_DAYS) * DAY_US >= timeline.first_day
    ] or [occurred_term(timeline.first_day, timeline.end_day)]
    plain = tuple((w,) for w in windows)
    out = [StatsQuery(f"{g} by day", g, "day", plain) for g in STATS_GROUPS]
    out.append(StatsQuery("action by hour", "action", "hour", plain))
    failed = tuple((w, Term("outcome", "failure")) for w in windows)
    out.append(StatsQuery("failed actions by day", "action", "day", failed))
    return out


def occurred_term(lo: int, hi: int) -> Term:
    return Term("occurred", (lo, hi))


def request_cycle(pool: tuple[Any, ...], seed: int, name: str) -> Iterator[Any]:
    """The pool's items in an endless sequence of seeded shuffles."""
    rng = random.Random(f"{seed}:{name}")
    while True:
        order = list(pool)
        rng.shuffle(order)
        yield from order


# -- checking an answer ------------------------------------------------------------------


def row_problem(row: dict[str, Any], terms: tuple[Term, ...], tenant: str) -> str | None:
    """Why ``row`` should not be in the answer (None when it should)."""
    if row.get("tenant_id") != tenant:
        return f"row seq {row.get('seq')} of tenant {row.get('tenant_id')}"
    search = search_text(row)
    for term in terms:
        if not term.holds(row, search):
            return f"row seq {row['seq']} fails {term.text()!r}"
    return None


def page_problems(rows: list[dict[str, Any]], terms: tuple[Term, ...], tenant: str) -> list[str]:
    problems = [p for p in (row_problem(r, terms, tenant) for r in rows) if p]
    keys = [(r.get("occurred_at", ""), r.get("seq", 0)) for r in rows]
    if any(a <= b for a, b in itertools.pairwise(keys)):
        problems.append("rows not newest first")
    return problems
