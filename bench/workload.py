"""Realistic events for the benchmarks, and the plan of a bulk load (moved out of common.py).

- ``EventFactory``: deterministic (seeded) client bodies and stored rows exactly as the
  service stores them: the body is the event's RFC 8785 (JCS) form, which its Merkle
  leaf hashes (store/event_rows.py);
- ``LoadPlan`` and ``generate_rows``: rows for a preload, tenants interleaved over one
  timeline, in chunks.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from trailkeep.events.schema import SEVERITY_RANK
from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.hashing import digest16
from trailkeep.kit.jsonutil import dumps_sorted
from trailkeep.kit.timeutil import format_us

T = TypeVar("T")
EventRowT = tuple[Any, ...]
TargetRowT = tuple[str, int, str, str, int]
# One transaction's worth of rows for a raw (no service) write.
Txn = tuple[list[EventRowT], list[TargetRowT]]
DAY_US = 86_400 * 1_000_000
BODY = 11  # index of the stored body in an event row


# -- realistic events --------------------------------------------------------------------


class Weighted(Generic[T]):
    """Picks items with the given relative weights (cumulative table + bisect)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.total)]

    def share(self, predicate: Callable[[T], bool]) -> float:
        """The expected fraction of picks satisfying ``predicate``."""
        prev = 0.0
        hit = 0.0
        for item, cum in zip(self.items, self.cum, strict=True):
            if predicate(item):
                hit += cum - prev
            prev = cum
        return hit / self.total


# 50 actions in 7 prefixes, with relative frequencies.
ACTIONS: tuple[tuple[str, float], ...] = (
    ("user.login", 20),
    ("user.logout", 8),
    ("user.login_failed", 4),
    ("user.password_reset", 1),
    ("user.mfa_enabled", 0.5),
    ("user.mfa_disabled", 0.2),
    ("user.created", 1),
    ("user.updated", 2),
    ("user.deleted", 0.3),
    ("user.invited", 1),
    ("user.role_changed", 0.5),
    ("user.session_revoked", 0.5),
    ("document.viewed", 15),
    ("document.created", 4),
    ("document.updated", 8),
    ("document.deleted", 1),
    ("document.shared", 2),
    ("document.unshared", 0.5),
    ("document.exported", 1),
    ("document.downloaded", 3),
    ("document.renamed", 1),
    ("document.moved", 1),
    ("project.created", 1),
    ("project.updated", 2),
    ("project.archived", 0.3),
    ("project.deleted", 0.2),
    ("project.member_added", 1),
    ("project.member_removed", 0.5),
    ("project.settings_changed", 0.5),
    ("project.viewed", 4),
    ("billing.invoice_created", 0.5),
    ("billing.invoice_paid", 0.5),
    ("billing.payment_failed", 0.1),
    ("billing.plan_changed", 0.2),
    ("billing.card_updated", 0.2),
    ("billing.refund_issued", 0.05),
    ("api_key.created", 0.3),
    ("api_key.revoked", 0.2),
    ("api_key.used", 5),
    ("api_key.rotated", 0.1),
    ("api_key.scopes_changed", 0.1),
    ("org.settings_updated", 0.3),
    ("org.sso_configured", 0.05),
    ("org.domain_verified", 0.05),
    ("org.member_invited", 0.5),
    ("org.member_removed", 0.2),
    ("role.created", 0.1),
    ("role.updated", 0.2),
    ("role.deleted", 0.05),
    ("role.assigned", 0.5),
)
# prefix -> (target type, pool size, id prefix, named?) and an optional second target.
TARGETS: dict[str, tuple[tuple[str, int, str, bool], tuple[str, int, str, bool], float]] = {
    "user": (("user", 5_000, "usr", False), ("organization", 1, "org", True), 0.2),
    "document": (("document", 50_000, "doc", True), ("folder", 2_000, "fld", True), 0.5),
    "project": (("project", 500, "prj", True), ("user", 5_000, "usr", False), 0.3),
    "billing": (("invoice", 20_000, "inv", False), ("subscription", 1_000, "sub", False), 0.5),
    "api_key": (("api_key", 2_000, "key", True), ("project", 500, "prj", True), 0.3),
    "org": (("organization", 1, "org", True), ("user", 5_000, "usr", False), 0.5),
    "role": (("role", 50, "rol", True), ("user", 5_000, "usr", False), 0.6),
}
SEVERITIES: tuple[tuple[str, float], ...] = (
    ("DEBUG", 3),
    ("INFO", 75),
    ("NOTICE", 8),
    ("WARNING", 7),
    ("ERROR", 5),
    ("CRITICAL", 2),
)
FAILURE_RATE = 0.05
ACTOR_COUNT = 5_000
SERVICE_ACTORS = 100
FIRST = (
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Dennis",
    "Margaret",
    "John",
    "Radia",
    "Tim",
    "Vint",
    "Leslie",
    "Niklaus",
    "Shafi",
    "Whitfield",
    "Adele",
    "Jean",
    "Lynn",
    "Butler",
    "Fran",
    "Robin",
    "Silvio",
    "Sophie",
    "Yukihiro",
    "Guido",
    "Bjarne",
    "Anders",
    "Hedy",
    "Katherine",
    "Mary",
    "Dorothy",
    "Kathleen",
)
LAST = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Ritchie",
    "Hamilton",
    "McCarthy",
    "Perlman",
    "Berners-Lee",
    "Cerf",
    "Lamport",
    "Wirth",
    "Goldwasser",
    "Diffie",
    "Goldberg",
    "Sammet",
    "Conway",
    "Lampson",
    "Milner",
    "Micali",
    "Wilson",
    "Matsumoto",
    "van Rossum",
    "Stroustrup",
    "Hejlsberg",
    "Lamarr",
    "Johnson",
)
AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Firefox/127.0",
    "acme-sdk-python/2.4.1 (CPython 3.12; linux)",
    "Terraform/1.8.5 acme-provider/0.19.0",
)
REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2")


def fast_uuid7(ms: int, rnd: int) -> str:
    """A UUIDv7 for a given millisecond (same layout as trailkeep.kit.ids.uuid7)."""
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rnd >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rnd & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_SECONDS: dict[int, str] = {}


def rfc3339_us(us: int) -> str:
    """Same text as trailkeep.kit.timeutil.format_us, with the seconds part cached."""
    sec, frac = divmod(us, 1_000_000)
    head = _SECONDS.get(sec)
    if head is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        head = _SECONDS[sec] = format_us(sec * 1_000_000)[:19]
    return f"{head}.{frac:06d}Z"


@dataclass(frozen=True, slots=True)
class Actor:
    doc: dict[str, str]  # the stored/sent "actor" object
    id: str
    type: str


def make_actors(rng: random.Random, count: int = ACTOR_COUNT) -> list[Actor]:
    actors = []
    for i in range(count):
        if i >= count - SERVICE_ACTORS:
            ident = f"svc_{i:05d}"
            doc = {"id": ident, "type": "service", "name": f"integration-{i % 37}"}
        else:
            ident = f"usr_{i:05d}"
            first, last = rng.choice(FIRST), rng.choice(LAST)
            doc = {"id": ident, "type": "user", "name": f"{first} {last}"}
            if i % 2:  # half the users are known by e-mail too
                doc["email"] = f"{first[0]}{last}{i}@example.com".lower().replace(" ", "")
        actors.append(Actor(doc, ident, doc["type"]))
    return actors


class EventFactory:
    """Deterministic (seeded) realistic events: the same seed gives the same pools."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.actors = make_actors(random.Random(seed + 1))
        # Mildly skewed: the busiest actors produce ~10x the events of the quietest.
        weights = [1.0 / (1 + i / 500) for i in range(len(self.actors))]
        self.actor_pick = Weighted(self.actors, weights)
        self.action_pick = Weighted([a for a, _ in ACTIONS], [w for _, w in ACTIONS])
        self.severity_pick = Weighted([s for s, _ in SEVERITIES], [w for _, w in SEVERITIES])
        self.ips = [f"203.0.113.{i}" for i in range(1, 255)] + ["2001:db8::7"]

    # -- shares, for choosing filters that reach deep pages ---------------------------
    def action_share(self, predicate: Callable[[str], bool]) -> float:
        return self.action_pick.share(predicate)

    def severity_share(self, min_rank: int) -> float:
        return self.severity_pick.share(lambda s: SEVERITY_RANK[s] >= min_rank)

    # -- building one event ------------------------------------------------------------
    def _target(self, spec: tuple[str, int, str, bool]) -> dict[str, str]:
        kind, pool, prefix, named = spec
        n = self.rng.randrange(pool)
        target = {"type": kind, "id": f"{prefix}_{n:06d}"}
        if named:
            target["name"] = f"{kind.replace('_', ' ').title()} {n}"
        return target

    def fields(self) -> dict[str, Any]:
        """The client-supplied part of an event (no id, no times)."""
        rng = self.rng
        action = self.action_pick.pick(rng)
        prefix, verb = action.split(".", 1)
        actor = self.actor_pick.pick(rng)
        first, second, second_p = TARGETS[prefix]
        targets = [self._target(first)]
        if rng.random() < second_p:
            targets.append(self._target(second))
        failed = rng.random() < FAILURE_RATE
        subject = targets[0].get("name", targets[0]["id"])
        out: dict[str, Any] = {
            "action": action,
            "actor": actor.doc,
            "targets": targets,
            "outcome": "failure" if failed else "success",
            "severity": self.severity_pick.pick(rng),
            "message": f"{verb.replace('_', ' ')} {subject}" + (" (denied)" if failed else ""),
            "context": {
                "ip_address": rng.choice(self.ips),
                "user_agent": rng.choice(AGENTS),
                "request_id": f"req_{rng.getrandbits(48):012x}",
            },
            "metadata": {"region": rng.choice(REGIONS)},
        }
        if actor.type == "user" and rng.random() < 0.25:
            out["context"]["session_id"] = f"ses_{rng.getrandbits(40):010x}"
        if verb in ("updated", "renamed", "settings_changed", "plan_changed"):
            out["changes"] = {
                "before": {"title": f"Draft {rng.randrange(1000)}"},
                "after": {"title": f"Final {rng.randrange(1000)}"},
            }
        return out

    def client_event(self, occurred_us: int) -> dict[str, Any]:
        """What an integrator POSTs (the server assigns the id)."""
        return {**self.fields(), "occurred_at": rfc3339_us(occurred_us)}

    def stored_row(
        self, tenant_id: str, seq: int, occurred_us: int, received_us: int
    ) -> tuple[EventRowT, list[TargetRowT]]:
        """A row exactly as event_writes.write_events would store it.

        The body is the document's RFC 8785 form (``canonical_json``: orjson when that
        agrees, as for every event made here), the bytes its Merkle leaf hashes.
        """
        sent = self.client_event(occurred_us)
        request_hash = digest16(dumps_sorted(sent))
        event_id = fast_uuid7(received_us // 1000, self.rng.getrandbits(74))
        doc = {
            **sent,
            "id": event_id,
            "tenant_id": tenant_id,
            "seq": seq,
            "received_at": rfc3339_us(received_us),
        }
        actor = sent["actor"]
        row = (
            tenant_id,
            seq,
            event_id,
            occurred_us,
            received_us,
            sent["action"],
            actor["id"],
            actor["type"],
            SEVERITY_RANK[sent["severity"]],
            sent["outcome"],
            request_hash,
            canonical_json(doc),
        )
        seen: dict[tuple[str, str], None] = dict.fromkeys(
            (t["type"], t["id"]) for t in sent["targets"]
        )
        targets = [(tenant_id, seq, kind, ident, occurred_us) for kind, ident in seen]
        return row, targets


# -- bulk loading --------------------------------------------------------------------------


@dataclass
class LoadPlan:
    """How many events each tenant gets, interleaved over one timeline ending at ``end_us``."""

    counts: dict[str, int]
    end_us: int
    span_us: int = 90 * DAY_US
    seed: int = 7

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _interleave(plan: LoadPlan) -> list[int]:
    """Tenant index of each global position: exact counts, shuffled (seeded)."""
    order = [i for i, n in enumerate(plan.counts.values()) for _ in range(n)]
    random.Random(plan.seed).shuffle(order)
    return order


def generate_rows(
    plan: LoadPlan, factory: EventFactory, next_seq: dict[str, int], chunk: int = 20_000
) -> Iterator[tuple[list[EventRowT], list[TargetRowT]]]:
    """Rows in chunks, in time order (as they would have arrived), tenants interleaved."""
    tenants = list(plan.counts)
    order = _interleave(plan)
    start = plan.end_us - plan.span_us
    step = plan.span_us / max(1, len(order))
    rng = factory.rng
    events: list[EventRowT] = []
    targets: list[TargetRowT] = []
    for i, t_index in enumerate(order):
        tenant = tenants[t_index]
        seq = next_seq[tenant]
        next_seq[tenant] = seq + 1
        received = start + int(i * step)
        occurred = received - rng.randrange(5_000_000)  # clients report a few s late
        row, trows = factory.stored_row(tenant, seq, occurred, received)
        events.append(row)
        targets.extend(trows)
        if len(events) >= chunk:
            yield events, targets
            events, targets = [], []
    if events:
        yield events, targets
