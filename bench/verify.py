"""Verify benchmark: how many exported events per second ``trailkeep verify`` checks.

It writes N realistic stored events (bench/common.py's EventFactory: the documents the
service stores, ~600 bytes each, seq/tenant_id/received_at included, one per line as
GET /v1/events/{id} returns them), the C2SP tlog-tiles of their tree
(kit/tiles.TileFrontier) and a checkpoint signed with a fresh key
(note.generate_signer) into a temporary directory, or into --dir, where a later run
with the same --events and --seed reuses them. Then it times, best of --repeat:

  function    integrity.verify.verify_export() in this process: events/s (wall and CPU)
  cli         ``trailkeep verify EVENTS --checkpoint CP --key VKEY --json`` in a
              subprocess, interpreter start-up included
  cli+tiles   the same with --tiles DIR: every level-0 tile is read and checked against
              the signed root first, then each event is compared with its tile's leaf

The target is 100,000 events/s for the plain CLI run; the exit status is 1 when it is
missed or when any run does not report OK.

    .venv/bin/python bench/verify.py                      # 1,000,000 events
    .venv/bin/python bench/verify.py --events 100000      # smoke test
    .venv/bin/python bench/verify.py --dir /tmp/vbench --json --out bench/results/verify.json
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from common import (
    EventFactory,
    emit_json,
    machine_info,
    progress,
    result_console,
    trailkeep_command,
)
from trailkeep.integrity.checkpoint import Checkpoint, sign_checkpoint
from trailkeep.integrity.note import generate_signer, parse_signer
from trailkeep.integrity.verify import verify_export
from trailkeep.integrity.verify_inputs import load_checkpoint, load_verifier
from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.tiles import TileFrontier, tile_path

TARGET = 100_000  # events/s, the CLI end to end
TENANT = "acme"
ORIGIN = f"bench.trailkeep.example/t/{TENANT}"
START_US = 1_790_000_000_000_000
CHUNK = 20_000


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Trailkeep verify benchmark (see the docstring of bench/verify.py).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=3, help="runs of each case; the best counts")
    p.add_argument("--dir", type=Path, default=None, help="keep (and reuse) the files here")
    p.add_argument("--no-tiles", action="store_true", help="skip the cli+tiles case")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--out", type=Path, default=None, help="write the JSON summary here")
    return p.parse_args()


# -- the log ------------------------------------------------------------------------------


def event_lines(count: int, seed: int) -> Iterator[list[bytes]]:
    """The stored documents, in chunks, exactly as the service stores them (sorted keys)."""
    factory = EventFactory(seed=seed)
    for first in range(0, count, CHUNK):
        rows = (
            factory.stored_row(TENANT, seq, START_US + seq * 1000, START_US + seq * 1000 + 7)
            for seq in range(first, min(count, first + CHUNK))
        )
        yield [row[11] for row, _ in rows]


def write_log(directory: Path, count: int, seed: int) -> None:
    """events.jsonl, tile/..., checkpoint.txt and vkey.txt for ``count`` events."""
    frontier = TileFrontier()
    tiles: dict[tuple[int, int], bytes] = {}
    began = time.perf_counter()
    with (directory / "events.jsonl").open("wb") as out:
        for lines in event_lines(count, seed):
            if frontier.size == 0:  # the stored bytes must be the leaf bytes (RFC 8785)
                assert all(canonical_json(orjson.loads(line)) == line for line in lines[:500])
            out.write(b"\n".join(lines) + b"\n")
            leaves = [hashlib.sha256(b"\x00" + line).digest() for line in lines]
            tiles.update(frontier.extend(leaves))
            if frontier.size % 200_000 == 0:
                progress.print(f"  generated {frontier.size:,}/{count:,} events")
    progress.print(f"  generated {count:,} events in {time.perf_counter() - began:.1f} s")
    for (level, index), data in tiles.items():
        path = directory / tile_path(level, index, len(data) // 32)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    skey, vkey = generate_signer(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, count, frontier.root()), parse_signer(skey))
    (directory / "checkpoint.txt").write_text(note)
    (directory / "vkey.txt").write_text(vkey + "\n")
    (directory / "meta.json").write_bytes(orjson.dumps({"events": count, "seed": seed}))


def prepare(directory: Path, count: int, seed: int) -> None:
    meta = directory / "meta.json"
    if meta.exists() and orjson.loads(meta.read_bytes()) == {"events": count, "seed": seed}:
        progress.print(f"reusing the {count:,} events in {directory}")
        return
    directory.mkdir(parents=True, exist_ok=True)
    progress.print(f"writing {count:,} events, their tiles and a checkpoint to {directory}")
    write_log(directory, count, seed)


# -- the timings ----------------------------------------------------------------------------


def time_function(directory: Path, count: int, repeat: int) -> dict[str, Any]:
    verifier = load_verifier(str(directory / "vkey.txt"))
    checkpoint = load_checkpoint(directory / "checkpoint.txt", verifier)
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        report = verify_export(directory / "events.jsonl", checkpoint)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        assert report.ok, report.details()
    return _rates("function", count, best_wall, best_cpu, True)


def time_cli(directory: Path, count: int, repeat: int, tiles: bool) -> dict[str, Any]:
    command = [
        *trailkeep_command(),
        "verify",
        str(directory / "events.jsonl"),
        "--checkpoint",
        str(directory / "checkpoint.txt"),
        "--key",
        str(directory / "vkey.txt"),
        "--json",
        *(["--tiles", str(directory)] if tiles else []),
    ]
    best, ok = float("inf"), True
    for _ in range(repeat):
        began = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, timeout=3600)
        best = min(best, time.perf_counter() - began)
        ok = ok and proc.returncode == 0 and orjson.loads(proc.stdout)["ok"] is True
    label = "cli+tiles" if tiles else "cli"
    return {**_rates(label, count, best, None, ok), "command": " ".join(command)}


def _rates(case: str, count: int, wall: float, cpu: float | None, ok: bool) -> dict[str, Any]:
    return {
        "case": case,
        "events": count,
        "seconds": round(wall, 3),
        "events_per_s": count / wall,
        "cpu_seconds": None if cpu is None else round(cpu, 3),
        "events_per_cpu_s": None if cpu is None else count / cpu,
        "ok": ok,
    }


def show(results: list[dict[str, Any]], to_stderr: bool) -> None:
    table = Table("case", "events", "seconds", "events/s", "events/CPU-s", "OK")
    for r in results:
        per_cpu = r["events_per_cpu_s"]
        table.add_row(
            r["case"],
            f"{r['events']:,}",
            f"{r['seconds']:.2f}",
            f"{r['events_per_s']:,.0f}",
            "-" if per_cpu is None else f"{per_cpu:,.0f}",
            "yes" if r["ok"] else "NO",
        )
    result_console(to_stderr).print(table)


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="trailkeep-verify-bench-") as tmp:
        directory = args.dir or Path(tmp)
        prepare(directory, args.events, args.seed)
        results = [time_function(directory, args.events, args.repeat)]
        results.append(time_cli(directory, args.events, args.repeat, tiles=False))
        if not args.no_tiles:
            results.append(time_cli(directory, args.events, args.repeat, tiles=True))
    show(results, to_stderr=args.json)
    cli = results[1]
    passed = all(r["ok"] for r in results) and cli["events_per_s"] >= TARGET
    verdict = "meets" if cli["events_per_s"] >= TARGET else "MISSES"
    progress.print(f"the CLI {verdict} the target of {TARGET:,} events/s")
    summary = {"machine": machine_info(), "target_events_per_s": TARGET, "results": results}
    emit_json(summary, args.json, args.out)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
