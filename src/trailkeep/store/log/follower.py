"""The one reusable follower of the log: every tenant's events in seq order, read after
commit by ``(tenant_id, seq)`` cursor from a durable position.

A follower has a name (its row in ``log_positions`` per tenant) and a handler. Each
round takes, for every tenant behind, the range of up to ``batch`` seqs from its
position, lets the handler prepare it outside any transaction, then runs the handlers'
writes and the moves of the positions in one transaction of the store. A position
moves only if it still is where the round started (log/positions.py), so a restart, a
second process or a retry never applies an event twice, and a kill at any instant loses
nothing: the next round starts again from the stored positions.

An event the handler cannot prepare (e.g. a tokenizer error) is "poison": it is logged,
counted, recorded in ``log_skips`` with its seq and the error, and passed over, so one
bad event never stops the follower for the others or for other tenants.

Wake-ups: the store calls ``notify(tenants)`` after each commit of its own writer (the
in-process notification); a full look for lagging tenants runs every ``rescan_s``
seconds as well (events committed by other processes, or notifications missed). The
position, never the notification, is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from trailkeep.store.connection import SqlConnection
from trailkeep.store.log.positions import Skip

log = structlog.get_logger("trailkeep.follower")

Write = Callable[[SqlConnection], None]


@dataclass(frozen=True, slots=True)
class Move:
    """One tenant's part of a round: its events [from_seq, to_seq) are applied."""

    tenant_id: str
    from_seq: int
    to_seq: int
    skips: list[Skip]
    write: Write | None


class FollowerHandler(Protocol):
    """What a follower does with a range of one tenant's log."""

    async def prepare(self, tenant_id: str, from_seq: int, to_seq: int) -> tuple[Any, list[Skip]]:
        """Work outside the transaction (reads, CPU work elsewhere): what ``write`` needs,
        and the events of the range it cannot handle (poison: skipped and recorded)."""
        ...

    def write(
        self, conn: SqlConnection, tenant_id: str, from_seq: int, to_seq: int, prepared: Any
    ) -> None:
        """Apply the range inside the transaction that moves the follower's position."""
        ...


class LogSource(Protocol):
    """The store's side of following (implemented by the SQL stores)."""

    async def log_lag(self, follower: str, tenants: set[str] | None) -> dict[str, tuple[int, int]]:
        """Tenants (all, or among ``tenants``) whose log head is past the follower's
        position: tenant -> (position, head)."""
        ...

    async def advance_follower(self, follower: str, moves: list[Move]) -> set[str]:
        """In one transaction, for each move whose tenant's position is still its
        ``from_seq``: run its ``write``, record its skips, set the position to ``to_seq``.
        Returns the tenants moved (the others had moved already, or are gone)."""
        ...


@dataclass(slots=True)
class FollowerStats:
    events: int = 0
    steps: int = 0
    skipped: int = 0
    conflicts: int = 0
    errors: int = 0
    last_error: str | None = None


class LogFollower:
    def __init__(
        self,
        name: str,
        source: LogSource,
        handler: FollowerHandler,
        *,
        batch: int = 2000,
        round_events: int = 4000,
        pace_s: float = 0.2,
        rescan_s: float = 2.0,
        retry_s: float = 1.0,
    ) -> None:
        self.name = name
        self._source = source
        self._handler = handler
        self._batch = batch
        self._round_events = round_events
        self._pace_s = pace_s
        self._rounds = 0
        self._pending: asyncio.Task[set[str]] | None = None  # the round being written
        self._ahead: dict[str, int] = {}  # positions once it is applied
        self._rescan_s = rescan_s
        self._retry_s = retry_s
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()  # set by caught_up(): cut a pause short
        self._looks = 0  # full looks started
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = FollowerStats()

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=f"follower-{self.name}")

    async def stop(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pending
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _look, waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        self._waiters.clear()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def notify(self, tenants: set[str]) -> None:
        """Called from any thread after a commit that grew these tenants' logs."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # RuntimeError: the loop closed meanwhile; nobody follows any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._mark, tenants)

    def _mark(self, tenants: set[str]) -> None:
        self._dirty |= tenants
        self._wake.set()

    async def caught_up(self, timeout: float) -> bool:
        """Wait until a full look that started after this call finds no tenant behind
        (tests, tools, shutdown). False if that did not happen within ``timeout``."""
        assert self._loop is not None, "the follower is not running"
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((self._looks + 1, waiter))
        self._wake.set()
        self._hurry.set()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False
        return True

    # -- the loop ------------------------------------------------------------------
    async def _run(self) -> None:
        full = True  # the first look after a start covers every tenant
        rescan_at = 0.0
        while True:
            try:
                if full:
                    self._looks += 1
                    self._dirty.clear()
                    wanted: set[str] | None = None
                    rescan_at = time.monotonic() + self._rescan_s
                else:
                    wanted, self._dirty = self._dirty, set()
                lag = await self._source.log_lag(self.name, wanted) if wanted != set() else {}
                lag = self._past_pending(lag)
                if lag:
                    moves, behind = await self._prepare_round(lag)
                    # Pipelined: this round was prepared while the last one was written.
                    await self._finish_pending()
                    self._pending = asyncio.create_task(self._apply(moves))
                    self._ahead = {m.tenant_id: m.to_seq for m in moves}
                    # Look again at the tenants that were behind (cheap: only those).
                    self._dirty |= set(lag)
                    full = False
                    if not behind:
                        # Caught up with what this round saw: let the next events gather
                        # for a moment, so a round applies many of them in one commit
                        # (on SQLite the indexer's commits share the ingest writer).
                        await self._pause()
                    continue
                if self._pending is not None:
                    await self._finish_pending()
                    self._dirty |= set(self._ahead)
                    self._ahead = {}
                    continue  # positions moved: look again before saying "caught up"
                if full:
                    self._release(self._looks)
                full = await self._wait_for_work(rescan_at)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. a database outage: back off, then look at all
                self._pending, self._ahead = None, {}
                self.stats.errors += 1
                self.stats.last_error = repr(exc)
                log.warning("log follower failed a round", follower=self.name, error=repr(exc))
                await asyncio.sleep(self._retry_s)
                full = True

    async def _pause(self) -> None:
        """Wait pace_s, or less if somebody waits in caught_up()."""
        if self._waiters:
            return
        self._hurry.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), self._pace_s)

    def _past_pending(self, lag: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        """Positions as they will be once the round being written is applied."""
        if not self._ahead:
            return lag
        out: dict[str, tuple[int, int]] = {}
        for tenant_id, (position, head) in lag.items():
            position = max(position, self._ahead.get(tenant_id, position))
            if position < head:
                out[tenant_id] = (position, head)
        return out

    async def _finish_pending(self) -> None:
        """Wait for the round being written; its errors surface here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            moved = await pending
            # A tenant another process moved first: forget where we expected it to be.
            for tenant_id in list(self._ahead):
                if tenant_id not in moved:
                    del self._ahead[tenant_id]

    def _release(self, look: int) -> None:
        """Wake the caught_up() callers that this full look answers."""
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for wanted, waiter in self._waiters:
            if wanted <= look:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                keep.append((wanted, waiter))
        self._waiters = keep

    async def _wait_for_work(self, rescan_at: float) -> bool:
        """Wait for a notification or the next full look; True when a full look is due."""
        while True:
            if self._waiters:
                return True
            if self._dirty:
                return False
            self._wake.clear()
            timeout = rescan_at - time.monotonic()
            if timeout <= 0:
                return True
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return True

    async def _prepare_round(self, lag: dict[str, tuple[int, int]]) -> tuple[list[Move], bool]:
        """One range of each lagging tenant (up to round_events seqs in all), prepared;
        and whether some tenant is still behind after them."""
        order = sorted(lag.items())
        turn = self._rounds % len(order)  # who goes first rotates: no tenant starves
        self._rounds += 1
        budget = self._round_events
        behind = False
        moves: list[Move] = []
        for tenant_id, (position, head) in order[turn:] + order[:turn]:
            if budget <= 0:
                behind = True
                break
            end = min(head, position + self._batch, position + budget)
            behind |= end < head
            budget -= end - position
            prepared, skips = await self._handler.prepare(tenant_id, position, end)
            write = _writer(self._handler, tenant_id, position, end, prepared)
            moves.append(Move(tenant_id, position, end, skips, write))
        return moves, behind

    async def _apply(self, moves: list[Move]) -> set[str]:
        """Write a prepared round in one transaction; the tenants it moved."""
        began = time.perf_counter()
        moved = await self._source.advance_follower(self.name, moves)
        log.debug(
            "follower round",
            follower=self.name,
            tenants=len(moves),
            seqs=sum(m.to_seq - m.from_seq for m in moves),
            write_ms=round((time.perf_counter() - began) * 1000, 1),
        )
        for move in moves:
            if move.tenant_id not in moved:
                self.stats.conflicts += 1  # another process (or a restart) got there first
                continue
            self.stats.events += move.to_seq - move.from_seq
            self.stats.skipped += len(move.skips)
            for skip in move.skips:
                log.error(
                    "log follower skipped an event it cannot handle",
                    follower=self.name,
                    tenant_id=move.tenant_id,
                    seq=skip.seq,
                    error=skip.error,
                )
        self.stats.steps += 1
        return moved


def _writer(
    handler: FollowerHandler, tenant_id: str, from_seq: int, to_seq: int, prepared: Any
) -> Write:
    def write(conn: SqlConnection) -> None:
        handler.write(conn, tenant_id, from_seq, to_seq, prepared)

    return write
