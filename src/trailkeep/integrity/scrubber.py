"""The server audits itself: a background pass re-hashes stored events against the
stored tree, at a bounded rate, and stops signing a tenant whose events no longer match.

Every event's leaf is in the level-0 tiles; the signer only checks that new tiles
extend signed ones, so a body edited, or a row deleted, in the database would go
unnoticed by the server itself. The scrubber walks each tenant's log in seq order,
``chunk`` events a step, hashing each stored body and comparing it with its leaf: a
changed body, a seq with no row, or a row beyond the tree, is an integrity alarm
(logged with the tenant and seqs, shown on ``/readyz``, and the tenant's signing
stopped, so no checkpoint is ever signed over a tree found inconsistent). The rate is
``events_per_second`` in all (default: a full pass over 1,000,000 events a day); its
position is kept in memory, so a restart begins a new pass.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from functools import partial

import structlog

from trailkeep.errors import Unavailable
from trailkeep.integrity import proofs
from trailkeep.kit.merkle import HASH_SIZE, leaf_hash
from trailkeep.query.filter import EventFilter
from trailkeep.store.protocol import Store

log = structlog.get_logger("trailkeep.integrity")

_TENANT_PAGE = 500


@dataclass
class ScrubStatus:
    passes: int = 0  # full passes finished since start
    checked: int = 0  # events re-hashed since start
    alarms: dict[str, str] = field(default_factory=dict)  # tenant -> what was found


class Scrubber:
    def __init__(
        self,
        store: Store,
        faults: dict[str, str],
        events_per_second: float,
        chunk: int = 500,
    ) -> None:
        self._store = store
        self._faults = faults  # the signer's: a tenant in it is never signed again
        self._rate = events_per_second
        self._chunk = chunk
        self.status = ScrubStatus()

    async def run(self) -> None:
        while True:
            try:
                await self.one_pass()
                self.status.passes += 1
            except Unavailable as exc:
                log.warning("integrity scrub waits for the database", error=str(exc))
            except Exception as exc:  # never let the scrubber die; the next pass retries
                log.error("integrity scrub failed", error=repr(exc))
            await asyncio.sleep(1.0)

    async def one_pass(self) -> None:
        """Every tenant's stored events once, at the configured rate."""
        after = None
        while page := await self._store.list_tenants(after, _TENANT_PAGE):
            for tenant in page:
                await self.scrub_tenant(tenant.id)
            after = page[-1].id

    async def scrub_tenant(self, tenant_id: str) -> None:
        # The highest stored seq first, then the tree: rows and their leaves commit
        # together, so a row beyond a tree read after it was put there by hand.
        highest = await self._store.max_stored_seq(tenant_id)
        size = (await self._store.tree_head(tenant_id)).size
        if highest is not None and highest >= size:
            self._alarm_text(
                tenant_id, f"stored events beyond the tree of {size}: up to seq {highest}"
            )
            return
        position = 0
        while position < size and tenant_id not in self.status.alarms:
            started = time.monotonic()
            end = min(size, position + self._chunk)
            await self._check(tenant_id, position, end)
            count, position = end - position, end
            # Bounded rate: the chunk's share of a second, less the time it took.
            pause = count / self._rate - (time.monotonic() - started)
            if pause > 0:
                await asyncio.sleep(pause)

    async def _check(self, tenant_id: str, begin: int, end: int) -> None:
        rows, _ = await self._store.events_in_seq_range(
            EventFilter(tenant_id=tenant_id), begin, end, end - begin
        )
        leaves = await self._store.read_tree(
            tenant_id, partial(proofs.leaf_hashes, begin=begin, end=end)
        )
        found = {seq: body for seq, body in rows}
        missing = [seq for seq in range(begin, end) if seq not in found]
        if missing:  # retention's tombstones: pruned on purpose, the leaf stays
            pruned = await self._store.tombstones_at(tenant_id, missing)
            missing = [seq for seq in missing if seq not in pruned]
        changed = [
            seq
            for seq, body in rows
            if leaf_hash(body) != leaves[(seq - begin) * HASH_SIZE : (seq - begin + 1) * HASH_SIZE]
        ]
        self.status.checked += len(rows)
        if missing or changed:
            self._alarm(tenant_id, missing, changed)

    def _alarm(self, tenant_id: str, missing: list[int], changed: list[int]) -> None:
        parts = []
        if changed:
            parts.append(f"stored events that no longer hash to their leaf: seqs {_list(changed)}")
        if missing:
            parts.append(f"seqs with no stored event: {_list(missing)}")
        self._alarm_text(tenant_id, "; ".join(parts))

    def _alarm_text(self, tenant_id: str, what: str) -> None:
        message = f"tenant {tenant_id!r}: {what}"
        self.status.alarms[tenant_id] = message
        self._faults.setdefault(tenant_id, f"integrity scrub: {message}")
        log.error("integrity alarm: checkpoint signing stopped", tenant=tenant_id, error=message)


def _list(seqs: list[int]) -> str:
    shown = ", ".join(str(s) for s in seqs[:10])
    return shown + (f" and {len(seqs) - 10} more" if len(seqs) > 10 else "")
