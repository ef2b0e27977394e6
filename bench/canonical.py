"""Micro-benchmark: µs per stored event for orjson, canonical_json and rfc8785.dumps.

The events are bench/common.py's realistic stored documents (seq, tenant_id,
received_at included), decoded from the stored body. Each figure is the best of 5
timeit runs over the whole pool, divided by the pool size. "float" rows add one float
to each event's metadata, which sends canonical_json down the rfc8785 path.

    .venv/bin/python bench/canonical.py [--events 2000]
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

import orjson
import rfc8785

from common import EventFactory
from trailkeep.kit.canonical import canonical_json, orjson_matches_jcs

START_US = 1_790_000_000_000_000


def stored_events(count: int) -> list[dict[str, Any]]:
    factory = EventFactory(seed=7)
    rows = (
        factory.stored_row("acme", seq, START_US + seq, START_US + seq + 7) for seq in range(count)
    )
    return [orjson.loads(row[11]) for row, _ in rows]


def per_event_us(fn: Callable[[Any], Any], events: list[dict[str, Any]]) -> float:
    def run() -> None:
        for event in events:
            fn(event)

    return min(timeit.repeat(run, number=1, repeat=5)) / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    events = stored_events(parser.parse_args().events)
    with_float = [{**e, "metadata": {**e["metadata"], "ratio": 0.25}} for e in events]
    assert all(orjson_matches_jcs(e) for e in events)
    assert all(canonical_json(e) == rfc8785.dumps(e) for e in events + with_float)
    size = sum(len(canonical_json(e)) for e in events) / len(events)
    print(f"{len(events)} events, {size:.0f} bytes each on average; µs/event, best of 5")
    cases: list[tuple[str, Callable[[Any], Any], list[dict[str, Any]]]] = [
        (
            "orjson.dumps (OPT_SORT_KEYS)",
            lambda e: orjson.dumps(e, option=orjson.OPT_SORT_KEYS),
            events,
        ),
        ("orjson_matches_jcs (the walk)", orjson_matches_jcs, events),
        ("canonical_json (fast path)", canonical_json, events),
        ("rfc8785.dumps", rfc8785.dumps, events),
        ("canonical_json (float: fallback)", canonical_json, with_float),
        ("rfc8785.dumps (float)", rfc8785.dumps, with_float),
    ]
    for label, fn, pool in cases:
        print(f"  {label:34s} {per_event_us(fn, pool):8.2f}")


if __name__ == "__main__":
    main()
