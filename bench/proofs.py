"""Proof benchmark: latency of inclusion and consistency proofs on a tenant of a million events.

It builds (or reuses) bench/query.py's kind of data set (bench/dataset.py): the measured
tenant holds --events events (1,000,000), each of the --tenants - 1 others (9)
--other-events (10,000), written straight into the database with their Merkle tiles
(bench/trees.py). Then it starts a real server (``trailkeep serve``, own process, free
127.0.0.1 port, a signing key of the run's own) and:

1. appends --append events (100) to every tenant through POST /v1/events/batch: the
   service's writer must accept them on top of the preloaded trees, and each tenant's
   signed checkpoint must reach preloaded + appended events, with the root recomputed
   from the stored bodies (self-check of the preload);
2. measures sequential requests on one keep-alive connection (a reader key of the
   measured tenant), --repeats (1000) samples of each, interleaved sample by sample
   after --warmup-requests unmeasured rounds, p50/p95/p99:
     get          GET /v1/events/{id}, random events (the baseline)
     inclusion    GET /v1/events/{id}/proof, the same ids, against the latest checkpoint
     inclusion?size  the same with a random ?size= between seq + 1 and the latest size
     consistency  GET /v1/proofs/consistency?from=<random> (to = the latest size)
     checkpoint   GET /v1/checkpoint
   and the ratio inclusion p95 ÷ get p95. Target: p95 ≤ 5 ms for both proof kinds;
3. verifies every served proof against the signed checkpoint (note signature by the
   run's key, origin, size, root) with kit/merkle.py: each leaf hash is recomputed from
   the body GET /v1/events/{id} returned, each ?size= root is tied to the signed root
   by a consistency proof (fetched after the measurement). Any wrong answer fails the
   run (exit status 1), as does a missed target.

    .venv/bin/python bench/proofs.py --db bench/results/proofs.db          # builds, runs
    .venv/bin/python bench/proofs.py --db bench/results/proofs.db          # reuses it
    .venv/bin/python bench/proofs.py --database-url \\
        postgresql://postgres@127.0.0.1:5432/trailkeep_bench_proofs            # PostgreSQL
    .venv/bin/python bench/proofs.py --events 50000 --repeats 200             # smoke test
"""

from __future__ import annotations

import argparse
import base64
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from common import (
    Connection,
    Database,
    Server,
    add_output_args,
    build_request,
    check_database_url,
    create_admin_key,
    create_keys,
    emit_json,
    fmt_ms,
    latency_summary,
    machine_info,
    progress,
    remove_tree,
    result_console,
    run_async,
)
from dataset import Dataset, add_dataset_args, check_dataset_args, choose_place, open_dataset
from trailkeep.integrity.checkpoint import Checkpoint
from trailkeep.kit import merkle
from trailkeep.kit.timeutil import now_us
from trees import checkpoint_problems, open_signed, wait_for_checkpoint
from workload import EventFactory

TARGET_P95_MS = 5.0
KINDS = ("get", "inclusion", "inclusion?size", "consistency", "checkpoint")
PROOF_KINDS = ("inclusion", "inclusion?size", "consistency")
LABELS = {
    "get": "GET /v1/events/{id}",
    "inclusion": "GET /v1/events/{id}/proof",
    "inclusion?size": "GET /v1/events/{id}/proof?size=N",
    "consistency": "GET /v1/proofs/consistency?from=M",
    "checkpoint": "GET /v1/checkpoint",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Trailkeep proof benchmark (see the docstring of bench/proofs.py).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_dataset_args(p, other_events=10_000)
    p.add_argument("--repeats", type=int, default=1000, help="measured samples of each request")
    p.add_argument("--warmup-requests", type=int, default=20, help="unmeasured rounds first")
    p.add_argument(
        "--append",
        type=int,
        default=100,
        help="events appended to every tenant through the service before measuring (≥ 1: "
        "the latest checkpoint is then signed by this run's key)",
    )
    add_output_args(p)
    args = p.parse_args(argv)
    args.pg_url = check_database_url(args.database_url)
    check_dataset_args(p, args)
    if args.repeats < 1 or args.warmup_requests < 0 or not 1 <= args.append <= 10_000:
        p.error("--repeats must be at least 1, --append 1 to 10,000")
    return args


@dataclass
class Checks:
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.items.append({"check": name, "ok": ok, "detail": detail})
        mark = "[green]ok[/green]" if ok else "[red]FAILED[/red]"
        progress.print(f"  check {name}: {mark} ({detail})")

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.items)


# -- appending through the service ---------------------------------------------------------


def append_events(server: Server, admin: str, data: Dataset, per_tenant: int) -> dict[str, int]:
    """POST /v1/events/batch as a platform admin (tenant_id in each event): created counts."""
    factory = EventFactory(data.seed + 1)

    async def post_all() -> dict[str, int]:
        conn = await Connection.open(server.port)
        created: dict[str, int] = {}
        try:
            for tenant in data.counts:
                left = per_tenant
                while left:
                    n = min(left, 100)
                    events = [
                        {**factory.client_event(now_us() - 1_000_000), "tenant_id": tenant}
                        for _ in range(n)
                    ]
                    body = orjson.dumps({"events": events})
                    raw = build_request("POST", "/v1/events/batch", server.port, admin, body)
                    status, answer = await conn.request(raw)
                    if status != 201 and status != 200:
                        raise SystemExit(
                            f"error: appending to {tenant}: HTTP {status}: {answer[:300]!r}"
                        )
                    created[tenant] = created.get(tenant, 0) + orjson.loads(answer)["created"]
                    left -= n
        finally:
            await conn.close()
        return created

    result: dict[str, int] = run_async(post_all())
    return result


def check_appends(
    server: Server, admin: str, data: Dataset, checks: Checks, per_tenant: int
) -> None:
    progress.print(f"appending {per_tenant} events to each of {len(data.counts)} tenants ...")
    before = data.stored()
    created = append_events(server, admin, data, per_tenant)
    data.note_appended(created)
    checks.add(
        "the writer appends to the preloaded trees",
        all(created.get(t) == per_tenant for t in data.counts),
        f"created {sum(created.values()):,} of {per_tenant * len(data.counts):,}",
    )
    progress.print("recomputing every tenant's root from its stored bodies ...")
    began = time.perf_counter()
    expected = data.db.stored_roots(data.counts)
    problems = checkpoint_problems(server.port, admin, expected)
    checks.add(
        "signed checkpoints = preloaded + appended",
        not problems and all(expected[t][0] == before[t] + per_tenant for t in data.counts),
        "; ".join(problems[:3])
        or f"{data.measured}: size {expected[data.measured][0]:,}, every tenant's root as"
        f" recomputed from its bodies ({time.perf_counter() - began:.1f} s)",
    )


# -- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    seq: int
    event_id: str
    size: int  # for inclusion?size
    old: int  # for consistency


@dataclass
class Answer:
    status: int
    body: bytes
    elapsed: float


def make_samples(rng: random.Random, ids: dict[int, str], latest: int) -> list[Sample]:
    return [
        Sample(seq, ids[seq], rng.randint(seq + 1, latest), rng.randrange(1, latest)) for seq in ids
    ]


def request_paths(s: Sample) -> dict[str, str]:
    return {
        "get": f"/v1/events/{s.event_id}",
        "inclusion": f"/v1/events/{s.event_id}/proof",
        "inclusion?size": f"/v1/events/{s.event_id}/proof?size={s.size}",
        "consistency": f"/v1/proofs/consistency?from={s.old}",
        "checkpoint": "/v1/checkpoint",
    }


async def measure(
    port: int, token: str, samples: list[Sample], warmup: list[Sample]
) -> dict[str, list[Answer]]:
    """Every kind once per sample, in turn: the same conditions for each kind."""
    conn = await Connection.open(port)
    answers: dict[str, list[Answer]] = {kind: [] for kind in KINDS}
    try:
        for measured, pool in ((False, warmup), (True, samples)):
            for sample in pool:
                for kind, path in request_paths(sample).items():
                    raw = build_request("GET", path, port, token)
                    began = time.perf_counter()
                    status, body = await conn.request(raw)
                    elapsed = time.perf_counter() - began
                    if measured:
                        answers[kind].append(Answer(status, body, elapsed))
    finally:
        await conn.close()
    return answers


async def fetch_all(port: int, token: str, paths: list[str]) -> list[tuple[int, bytes]]:
    conn = await Connection.open(port)
    try:
        return [await conn.request(build_request("GET", p, port, token)) for p in paths]
    finally:
        await conn.close()


# -- verifying the answers -------------------------------------------------------------------


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@dataclass
class Verifier:
    """Checks each served answer against the signed checkpoint; collects what is wrong."""

    signed: Checkpoint
    note: str
    problems: list[str] = field(default_factory=list)
    verified: dict[str, int] = field(default_factory=dict)

    def fail(self, kind: str, sample: Sample, what: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(f"{kind} seq {sample.seq}: {what}")

    def check(self, kind: str, sample: Sample, test: Callable[..., str | None], *args: Any) -> None:
        """``test(*args)`` says what is wrong with one answer, or None."""
        try:
            problem = test(*args)
        except (KeyError, ValueError, TypeError) as exc:  # malformed answer, bad proof
            problem = f"malformed answer: {exc!r}"
        if problem is None:
            self.verified[kind] = self.verified.get(kind, 0) + 1
        else:
            self.fail(kind, sample, problem)

    def leaf(self, sample: Sample, got: Answer) -> bytes | None:
        if got.status != 200:
            return None
        doc = orjson.loads(got.body)
        if doc.get("seq") != sample.seq or doc.get("id") != sample.event_id:
            return None
        return merkle.leaf_hash(got.body)

    @staticmethod
    def found(leaf: bytes | None) -> str | None:
        return None if leaf is not None else "not the event with this id"

    def inclusion(self, s: Sample, got: Answer, leaf: bytes | None, size: int) -> str | None:
        if got.status != 200:
            return f"HTTP {got.status}: {got.body[:200]!r}"
        if leaf is None:
            return "GET /v1/events/{id} did not return the event"
        doc = orjson.loads(got.body)
        if (doc["leaf_index"], doc["tree_size"]) != (s.seq, size):
            return f"index/size {doc['leaf_index']}/{doc['tree_size']}, wanted {s.seq}/{size}"
        if _b64(doc["leaf_hash"]) != leaf:
            return "leaf_hash is not SHA-256(0x00 || the body GET returns)"
        root = _b64(doc["root_hash"])
        proof = [_b64(h) for h in doc["proof"]]
        if not merkle.verify_inclusion(leaf, s.seq, size, proof, root):
            return "the inclusion proof does not verify"
        if size == self.signed.size:
            if root != self.signed.root_hash:
                return "root_hash is not the signed checkpoint's"
            if doc["checkpoint"] != self.note:
                return "the checkpoint served with the proof is not the latest signed one"
        return None

    def consistency(self, s: Sample, got: Answer) -> str | None:
        if got.status != 200:
            return f"HTTP {got.status}: {got.body[:200]!r}"
        doc = orjson.loads(got.body)
        if (doc["from"], doc["to"]) != (s.old, self.signed.size):
            return f"from/to {doc['from']}/{doc['to']}, wanted {s.old}/{self.signed.size}"
        new_root = _b64(doc["to_root_hash"])
        if new_root != self.signed.root_hash:
            return "to_root_hash is not the signed checkpoint's"
        proof = [_b64(h) for h in doc["proof"]]
        if not merkle.verify_consistency(
            s.old, self.signed.size, _b64(doc["from_root_hash"]), new_root, proof
        ):
            return "the consistency proof does not verify"
        return None

    def sized_root(
        self, s: Sample, got: Answer, leaf: bytes | None, link: tuple[int, bytes]
    ) -> str | None:
        """A ?size= proof; its root must be the signed tree's prefix of that size."""
        problem = self.inclusion(s, got, leaf, s.size)
        if problem is not None:
            return problem
        status, body = link
        if status != 200:
            return f"consistency {s.size} -> latest: HTTP {status}"
        doc = orjson.loads(body)
        root = _b64(orjson.loads(got.body)["root_hash"])
        if _b64(doc["from_root_hash"]) != root:
            return "the root of the ?size= proof differs from the consistency proof's"
        proof = [_b64(h) for h in doc["proof"]]
        if not merkle.verify_consistency(
            s.size, self.signed.size, root, self.signed.root_hash, proof
        ):
            return "the ?size= root is not a prefix of the signed tree"
        return None

    def checkpoint(self, got: Answer) -> str | None:
        if got.status != 200:
            return f"HTTP {got.status}"
        if orjson.loads(got.body)["note"] != self.note:
            return "not the latest signed checkpoint"
        return None


def verify_answers(
    port: int, token: str, samples: list[Sample], answers: dict[str, list[Answer]], v: Verifier
) -> None:
    """Every answer of the measurement, checked after it (nothing here is timed)."""
    links: list[tuple[int, bytes]] = run_async(
        fetch_all(port, token, [f"/v1/proofs/consistency?from={s.size}" for s in samples])
    )
    latest = v.signed.size
    for i, s in enumerate(samples):
        got = {kind: answers[kind][i] for kind in KINDS}
        leaf = v.leaf(s, got["get"])
        v.check("get", s, v.found, leaf)
        v.check("inclusion", s, v.inclusion, s, got["inclusion"], leaf, latest)
        v.check("inclusion?size", s, v.sized_root, s, got["inclusion?size"], leaf, links[i])
        v.check("consistency", s, v.consistency, s, got["consistency"])
        v.check("checkpoint", s, v.checkpoint, got["checkpoint"])


# -- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace, db: Database, log_dir: Path) -> dict[str, Any]:
    checks = Checks()
    data = open_dataset(db, args)
    progress.print("creating a reader key and an admin key with the CLI ...")
    reader = create_keys(db, [data.measured], "reader")[data.measured]
    admin = create_admin_key(db)
    with Server(db, log_dir / "proofs-server.log") as server:
        check_appends(server, admin, data, checks, args.append)
        found = wait_for_checkpoint(server.port, admin, data.measured, data.stored()[data.measured])
        if found is None:
            raise SystemExit("error: the measured tenant's checkpoint was not signed")
        note = found["note"]
        signed = open_signed(note, data.measured)
        latest = signed.size
        rng = random.Random(args.seed)
        seqs = rng.sample(range(latest), min(latest, args.repeats + args.warmup_requests))
        ids = db.event_ids(data.measured, seqs)
        every = make_samples(rng, {seq: ids[seq] for seq in seqs}, latest)
        warmup, samples = every[: args.warmup_requests], every[args.warmup_requests :]
        progress.print(
            f"measuring {len(samples):,} samples of {len(KINDS)} requests on {data.measured}"
            f" (tree size {latest:,}) after {len(warmup)} unmeasured ..."
        )
        answers: dict[str, list[Answer]] = run_async(measure(server.port, reader, samples, warmup))
        progress.print("verifying every answer against the signed checkpoint ...")
        verifier = Verifier(signed, note)
        verify_answers(server.port, reader, samples, answers, verifier)
    checks.add(
        "every proof verifies against the signed checkpoint",
        not verifier.problems,
        "; ".join(verifier.problems[:3])
        or ", ".join(f"{kind} {n:,}" for kind, n in verifier.verified.items()),
    )
    results = {kind: latency_summary(a.elapsed for a in answers[kind]) for kind in KINDS}
    for kind in KINDS:
        results[kind]["samples"] = len(answers[kind])
    ratios = {
        f"{kind}_p95_vs_get_p95": results[kind]["p95_ms"] / results["get"]["p95_ms"]
        for kind in PROOF_KINDS
    }
    for kind in PROOF_KINDS:
        p95 = results[kind]["p95_ms"]
        checks.add(f"{kind}: p95 ≤ {TARGET_P95_MS:g} ms", p95 <= TARGET_P95_MS, f"p95 {p95:.2f} ms")
    return {
        "dataset": {**data.meta(), "built_now": data.built_now},
        "tree_size": latest,
        "results": results,
        "ratios": ratios,
        "checks": checks.items,
        "ok": checks.ok,
    }


# -- report ----------------------------------------------------------------------------------


def render(out: dict[str, Any], db: Database, console: Console) -> None:
    dataset = out["dataset"]
    title = (
        f"Proofs ({db.kind}), sequential, one connection: tenant {dataset['measured']}, tree"
        f" size {out['tree_size']:,}"
    )
    table = Table(title=title, title_justify="left")
    for col in ("request", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms", "p95 ÷ get p95"):
        table.add_column(col, justify="left" if col == "request" else "right")
    get_p95 = out["results"]["get"]["p95_ms"]
    for kind in KINDS:
        r = out["results"][kind]
        table.add_row(
            LABELS[kind],
            f"{r['samples']:,}",
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(r["p99_ms"]),
            fmt_ms(r["max_ms"]),
            f"{r['p95_ms'] / get_p95:.2f}",
        )
    console.print(table)
    failed = [c for c in out["checks"] if not c["ok"]]
    console.print(
        f"checks: {len(out['checks']) - len(failed)}/{len(out['checks'])} passed"
        + ("" if not failed else " — FAILED: " + "; ".join(c["check"] for c in failed))
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    place = choose_place(args, "trailkeep-proofs-")
    try:
        out = run(args, place.db, place.log_dir)
    finally:
        if place.tmp is not None and not args.keep:
            remove_tree(place.tmp)
        elif place.tmp is not None:
            progress.print(f"kept {place.tmp}")
    render(out, place.db, result_console(args.json))
    summary = {
        "benchmark": "proofs",
        "config": {
            "repeats": args.repeats,
            "warmup_requests": args.warmup_requests,
            "append": args.append,
            "target_p95_ms": TARGET_P95_MS,
        },
        "machine": machine_info(),
        "database": place.db.describe(),
        **out,
    }
    emit_json(summary, args.json, args.out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
