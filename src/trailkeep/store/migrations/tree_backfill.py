"""Build the Merkle tree of events stored before the tree existed (migration 0002).

Run once per tenant by the migration, inside its transaction: read the events in seq
order, store each body in its RFC 8785 form (identical bytes unless the body held
floats, whose JCS spelling differs), hash the leaves and write the tiles.
"""

from __future__ import annotations

import sys
import time

import orjson
from sqlalchemy import Connection, text

from trailkeep.kit.canonical import CanonicalizationError, canonical_json
from trailkeep.kit.merkle import leaf_hash
from trailkeep.kit.tiles import TileFrontier

_BATCH = 5_000
_REPORT_EVERY_SECONDS = 5.0


class BackfillError(RuntimeError):
    """Stored events that cannot become a Merkle tree (a gap in seqs, a body JCS refuses)."""


def say_progress(message: str) -> None:
    """Progress of a long migration step (migrations run from the CLI): on stderr."""
    print(message, file=sys.stderr, flush=True)


def backfill_trees(conn: Connection) -> int:
    """Build every tenant's tree; returns the number of events hashed."""
    tenants = [row[0] for row in conn.execute(text("SELECT DISTINCT tenant_id FROM events"))]
    total = 0
    for tenant_id in tenants:
        total += _backfill_tenant(conn, tenant_id)
    return total


def _backfill_tenant(conn: Connection, tenant_id: str) -> int:
    frontier = TileFrontier()
    started = last_report = time.monotonic()
    while True:
        rows = conn.execute(
            text(
                "SELECT seq, occurred_at, body FROM events WHERE tenant_id = :t AND seq >= :s"
                " ORDER BY seq LIMIT :n"
            ),
            {"t": tenant_id, "s": frontier.size, "n": _BATCH},
        ).all()
        if not rows:
            return frontier.size
        leaves: list[bytes] = []
        for seq, occurred_at, body in rows:
            if seq != frontier.size + len(leaves):
                raise BackfillError(
                    f"tenant {tenant_id!r}: seq {frontier.size + len(leaves)} is missing"
                )
            canonical = _canonical(tenant_id, seq, bytes(body))
            if canonical != body:
                conn.execute(
                    text(
                        "UPDATE events SET body = :b WHERE tenant_id = :t AND seq = :s"
                        " AND occurred_at = :o"
                    ),
                    {"b": canonical, "t": tenant_id, "s": seq, "o": occurred_at},
                )
            leaves.append(leaf_hash(canonical))
        changed = frontier.extend(leaves)
        conn.execute(
            text(
                "INSERT INTO merkle_tiles (tenant_id, level, idx, hashes) VALUES (:t, :l, :i, :h)"
                " ON CONFLICT (tenant_id, level, idx) DO UPDATE SET hashes = excluded.hashes"
            ),
            [{"t": tenant_id, "l": lv, "i": ix, "h": data} for (lv, ix), data in changed.items()],
        )
        now = time.monotonic()
        if now - last_report > _REPORT_EVERY_SECONDS:
            rate = frontier.size / (now - started)
            say_progress(f"  tenant {tenant_id}: {frontier.size:,} events hashed ({rate:,.0f}/s)")
            last_report = now


def _canonical(tenant_id: str, seq: int, body: bytes) -> bytes:
    try:
        return canonical_json(orjson.loads(body))
    except (orjson.JSONDecodeError, CanonicalizationError) as exc:
        raise BackfillError(
            f"tenant {tenant_id!r}, seq {seq}: the stored body cannot be hashed ({exc})"
        ) from None
