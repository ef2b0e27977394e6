"""Realistic events for the benchmarks, and the plan of a bulk load (moved out of common.py).

- ``EventFactory``: deterministic (seeded) client bodies and stored rows exactly as the
  service stores them: the body is the event's RFC 8785 (JCS) form, which its Merkle
  leaf hashes (store/log/event_rows.py). Messages come from bench/vocabulary.py (words of
  known frequencies, for full-text search); targets have names, metadata a plan and a
  region;
- the rows of a preload (``LoadPlan``, ``generate_rows``) are made in bench/rowgen.py.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.event_vocabulary import SEVERITY_RANK
from trailkeep.kit.hashing import digest16
from trailkeep.kit.jsonutil import dumps_sorted
from trailkeep.kit.timeutil import format_us
from vocabulary import (
    COMMON,
    FILLER_COUNTS,
    PHRASES,
    message_share,
    tokens,
    vocabulary,
    word_list,
)

T = TypeVar("T")
EventRowT = tuple[Any, ...]
TargetRowT = tuple[str, int, str, str, int]
# One transaction's worth of rows for a raw (no service) write.
Txn = tuple[list[EventRowT], list[TargetRowT]]
DAY_US = 86_400 * 1_000_000
# Bumped when generated events change in a way a kept data set should be rebuilt for
# (2: messages of bench/vocabulary.py, target names, metadata.plan; chunked streams).
WORKLOAD_VERSION = 2
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
FIRST = word_list(
    """Ada Grace Alan Edsger Barbara Donald Frances Ken Dennis Margaret John Radia Tim Vint
    Leslie Niklaus Shafi Whitfield Adele Jean Lynn Butler Fran Robin Silvio Sophie Yukihiro
    Guido Bjarne Anders Hedy Katherine Mary Dorothy Kathleen"""
)
LAST = word_list(
    """Lovelace, Hopper, Turing, Dijkstra, Liskov, Knuth, Allen, Thompson, Ritchie,
    Hamilton, McCarthy, Perlman, Berners-Lee, Cerf, Lamport, Wirth, Goldwasser, Diffie,
    Goldberg, Sammet, Conway, Lampson, Milner, Micali, Wilson, Matsumoto, van Rossum,
    Stroustrup, Hejlsberg, Lamarr, Johnson""",
    ",",
)
# Names of the named target kinds: stem number n % len(stems), then n (one name per id).
TARGET_NAMES: dict[str, tuple[str, ...]] = {
    "document": (
        "Roadmap", "Budget", "Contract", "Design spec", "Meeting notes", "Release plan",
        "Onboarding guide", "Quarterly review",
    ),
    "folder": ("Finance", "Engineering", "Legal", "Marketing", "Sales", "People"),
    "project": ("Apollo", "Gemini", "Mercury", "Atlas", "Orion", "Zephyr", "Nimbus"),
    "api_key": ("CI deploy", "Reporting", "Backup", "Terraform", "Zapier"),
    "organization": ("Acme Corp",),
    "role": ("Admin", "Editor", "Viewer", "Billing manager", "Auditor", "Support agent"),
}  # fmt: skip
AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Firefox/127.0",
    "acme-sdk-python/2.4.1 (CPython 3.12; linux)",
    "Terraform/1.8.5 acme-provider/0.19.0",
)
REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-southeast-2")
PLANS: tuple[tuple[str, float], ...] = (("free", 60), ("pro", 30), ("enterprise", 10))
SERVICE_NAME = "integration"  # service actors are "integration-N"


def pick_any(rng: random.Random, items: Sequence[T]) -> T:
    """rng.choice without its Python-level rejection sampling (a tiny bias is fine here)."""
    return items[int(rng.random() * len(items))]


def presence_table(
    words: Sequence[tuple[str, float]], phrases: Sequence[tuple[str, float]]
) -> Iterator[tuple[tuple[tuple[str, ...], tuple[str, ...]], float]]:
    """Every combination of present words and phrases, with its probability (each
    present independently with its own probability)."""
    items = [*words, *phrases]
    for present in itertools.product((False, True), repeat=len(items)):
        p = 1.0
        for (_, share), here in zip(items, present, strict=True):
            p *= share if here else 1.0 - share
        chosen = [text for (text, _), here in zip(items, present, strict=True) if here]
        cut = sum(present[: len(words)])
        yield (tuple(chosen[:cut]), tuple(chosen[cut:])), p


def verb_text(action: str) -> str:
    """The start of an event's message: the action's verb, "password_reset" -> "password reset"."""
    return action.split(".", 1)[1].replace("_", " ")


def reserved_tokens() -> set[str]:
    """Tokens that events carry besides the filler words of their messages: verbs, actor
    and target names, metadata values. A word of these has no exact expected share."""
    texts = [verb_text(a) for a, _ in ACTIONS] + list(FIRST) + list(LAST)
    texts += [s for stems in TARGET_NAMES.values() for s in stems]
    texts += [SERVICE_NAME, "denied", *REGIONS, *(p for p, _ in PLANS)]
    return {t for text in texts for t in tokens(text)}


def fast_uuid7(ms: int, rnd: int) -> str:
    """A UUIDv7 for a given millisecond (same layout as trailkeep.kit.ids.uuid7)."""
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rnd >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rnd & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_MINUTES: dict[int, str] = {}
_MINUTE_US = 60_000_000


def rfc3339_us(us: int) -> str:
    """Same text as trailkeep.kit.timeutil.format_us, with the part up to the minute cached."""
    minute, rest = divmod(us, _MINUTE_US)
    head = _MINUTES.get(minute)
    if head is None:
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        head = _MINUTES[minute] = format_us(minute * _MINUTE_US)[:17]
    sec, frac = divmod(rest, 1_000_000)
    return f"{head}{sec:02d}.{frac:06d}Z"


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
            doc = {"id": ident, "type": "service", "name": f"{SERVICE_NAME}-{i % 37}"}
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
        self.seed = seed
        self.rng = random.Random(seed)
        self.actors = make_actors(random.Random(seed + 1))
        # Mildly skewed: the busiest actors produce ~10x the events of the quietest.
        weights = [1.0 / (1 + i / 500) for i in range(len(self.actors))]
        self.actor_pick = Weighted(self.actors, weights)
        self.action_pick = Weighted([a for a, _ in ACTIONS], [w for _, w in ACTIONS])
        self.severity_pick = Weighted([s for s, _ in SEVERITIES], [w for _, w in SEVERITIES])
        self.plan_pick = Weighted([p for p, _ in PLANS], [w for _, w in PLANS])
        self.ips = [f"203.0.113.{i}" for i in range(1, 255)] + ["2001:db8::7"]
        self.vocab = vocabulary()
        self.verbs = {a: verb_text(a) for a, _ in ACTIONS}
        # Which COMMON words and PHRASES a message has (independent draws, as one pick).
        extras = list(presence_table(COMMON, PHRASES))
        self.extras_pick = Weighted([e for e, _ in extras], [p for _, p in extras])
        self.checked = 0  # stored bodies compared with canonical_json (see stored_row)

    def reseeded(self, seed: str) -> EventFactory:
        """The same pools with a random stream of its own (one per chunk of a preload)."""
        other = copy.copy(self)
        other.rng = random.Random(seed)
        return other

    # -- shares, for choosing filters and query words ---------------------------------
    def action_share(self, predicate: Callable[[str], bool]) -> float:
        return self.action_pick.share(predicate)

    def severity_share(self, min_rank: int) -> float:
        return self.severity_pick.share(lambda s: SEVERITY_RANK[s] >= min_rank)

    def word_share(self, word: str) -> float:
        """The share of events whose message has the token ``word`` (exact for words
        not in reserved_tokens(): those are also in names and metadata)."""
        verb_share = {
            token: self.action_share(lambda a, t=token: t in tokens(self.verbs[a]))  # type: ignore[misc]
            for token in tokens(" ".join(self.verbs.values()))
        }
        return message_share(word, verb_share, FAILURE_RATE)

    # -- building one event ------------------------------------------------------------
    def _target(self, spec: tuple[str, int, str, bool]) -> dict[str, str]:
        kind, pool, prefix, named = spec
        n = int(self.rng.random() * pool)
        target = {"type": kind, "id": f"{prefix}_{n:06d}"}
        if named:
            stems = TARGET_NAMES[kind]
            target["name"] = stems[0] if pool == 1 else f"{stems[n % len(stems)]} {n}"
        return target

    def _message(self, action: str, failed: bool) -> str:
        rng = self.rng
        common, phrases = self.extras_pick.pick(rng)
        vocab = self.vocab
        count = FILLER_COUNTS[int(rng.random() * len(FILLER_COUNTS))]
        filler = rng.choices(vocab.words, cum_weights=vocab.cum_weights, k=count)
        text = " ".join([self.verbs[action], *common, *filler, *phrases])
        if failed:
            text += " denied"
        return text[0].upper() + text[1:]

    def fields(self) -> dict[str, Any]:
        """The client-supplied part of an event (no id, no times)."""
        rng = self.rng
        action = self.action_pick.pick(rng)
        prefix = action.split(".", 1)[0]
        actor = self.actor_pick.pick(rng)
        first, second, second_p = TARGETS[prefix]
        targets = [self._target(first)]
        if rng.random() < second_p:
            targets.append(self._target(second))
        failed = rng.random() < FAILURE_RATE
        out: dict[str, Any] = {
            "action": action,
            "actor": actor.doc,
            "targets": targets,
            "outcome": "failure" if failed else "success",
            "severity": self.severity_pick.pick(rng),
            "message": self._message(action, failed),
            "context": {
                "ip_address": pick_any(rng, self.ips),
                "user_agent": pick_any(rng, AGENTS),
                "request_id": f"req_{rng.getrandbits(48):012x}",
            },
            "metadata": {"plan": self.plan_pick.pick(rng), "region": pick_any(rng, REGIONS)},
        }
        if actor.type == "user" and rng.random() < 0.25:
            out["context"]["session_id"] = f"ses_{rng.getrandbits(40):010x}"
        if action.endswith(("updated", "renamed", "settings_changed", "plan_changed")):
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

        The body is the document's RFC 8785 form. Every string made here is ASCII
        without control characters and every number a small integer, so that form is
        orjson's output with sorted keys; canonical_json (which checks exactly that,
        walking the document) confirms it for one event in 256 and the first 16.
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
        body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        self.checked += 1
        if (self.checked <= 16 or not self.checked % 256) and canonical_json(doc) != body:
            raise RuntimeError(f"generated event is not in its RFC 8785 form: {body[:200]!r}")
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
            body,
        )
        seen: dict[tuple[str, str], None] = dict.fromkeys(
            (t["type"], t["id"]) for t in sent["targets"]
        )
        targets = [(tenant_id, seq, kind, ident, occurred_us) for kind, ident in seen]
        return row, targets
