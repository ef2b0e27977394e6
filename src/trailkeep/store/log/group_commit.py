"""The writer thread of a store: every event write of one process goes through it.

Ingest requests are grouped (group commit): whatever arrived while the previous
transaction was being committed is written in the next one, so the disk's fsync rate
does not cap throughput. A reply is sent only after COMMIT returned, i.e. after the
events are durable. What a transaction does is the backend's ``WriterSession``
(store/sqlite/writer_session.py, store/postgres/writer_session.py); the queueing, grouping and
replying here are shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import structlog

from trailkeep.store.models import AppendResult, EventDraft

log = structlog.get_logger("trailkeep.writer")
T = TypeVar("T")


class WriterUnavailable(RuntimeError):
    """The writer cannot take the job (stopped, overloaded or its transaction failed)."""


class WriterSession(Protocol):
    """One backend connection, used only by the writer thread."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write_events(self, drafts: list[EventDraft]) -> list[AppendResult]:
        """Store ``drafts`` in one transaction: committed, or rolled back and raised."""
        ...

    def run(self, fn: Callable[[Any], T], changes_log: bool) -> T:
        """Run ``fn(connection)`` in one transaction of its own; ``changes_log`` says it
        may change the tenants' logs (seqs, tree), which the session may have cached."""
        ...

    def lost_connection(self, exc: BaseException) -> bool:
        """True when ``exc`` means the database is unreachable, not that the data is bad."""
        ...

    def describe(self, exc: BaseException) -> str:
        """What clients are told about a failed write (never another request's data)."""
        ...


@dataclass(slots=True)
class _AppendJob:
    drafts: list[EventDraft]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[AppendResult]]


@dataclass(slots=True)
class _CallJob:
    fn: Callable[[Any], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    changes_log: bool


_STOP = object()


_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _notify(loop: asyncio.AbstractEventLoop, outcomes: list[_Outcome]) -> None:
    """Settle futures on their event loop (from the writer thread)."""
    # RuntimeError: that event loop is closed; nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, outcomes)


def _settle(pairs: list[_Outcome]) -> None:
    for future, result, error in pairs:
        if future.done():
            continue  # the request was cancelled (client went away); its data is committed
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class GroupCommitWriter:
    def __init__(
        self, session: WriterSession, *, max_events: int, max_wait_ms: float, queue_max: int
    ) -> None:
        self._session = session
        self._max_events = max_events
        self._max_wait = max_wait_ms / 1000.0
        self._queue_max = queue_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._queued_events = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.failed: BaseException | None = None
        self._grown: set[str] = set()  # tenants whose log grew since take_grown()
        # Called on the writer thread after each commit that grew some tenants' logs
        # (the followers' wake-up, log/follower.py); they must return at once.
        self._listeners: list[Callable[[set[str]], None]] = []

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self._session.open()
        self._thread = threading.Thread(target=self._run, name="trailkeep-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None
        self._session.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.failed is None

    def add_listener(self, listener: Callable[[set[str]], None]) -> None:
        """Call ``listener(tenants)`` after every commit that stored new events."""
        self._listeners.append(listener)

    def take_grown(self) -> set[str]:
        """Tenants with events committed since the last call (for the checkpoint signer)."""
        with self._lock:
            grown, self._grown = self._grown, set()
        return grown

    # -- submitting ----------------------------------------------------------------
    async def append(self, drafts: list[EventDraft]) -> list[AppendResult]:
        if not self.alive:
            raise WriterUnavailable("the database writer is not running")
        with self._lock:
            if self._queued_events + len(drafts) > self._queue_max:
                raise WriterUnavailable("ingest queue is full")
            self._queued_events += len(drafts)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[AppendResult]] = loop.create_future()
        self._queue.put(_AppendJob(drafts, loop, future))
        # If the awaiting request is cancelled (client gone), the write still happens:
        # the job is queued, and _settle skips futures that are already done.
        return await future

    async def call(self, fn: Callable[[Any], T], *, changes_log: bool = False) -> T:
        """Run ``fn(conn)`` on the writer thread inside its own transaction.

        ``changes_log``: ``fn`` may change a log (delete a tenant's events): the
        session then forgets the seqs and tree nodes it keeps between commits."""
        if not self.alive:
            raise WriterUnavailable("the database writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_CallJob(fn, loop, future, changes_log))
        return await future

    # -- the thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            held: Any = None
            while True:
                job = held if held is not None else self._queue.get()
                held = None
                if job is _STOP:
                    return
                if isinstance(job, _CallJob):
                    self._run_call(job)
                    continue
                group = [job]
                count = len(job.drafts)
                deadline = time.monotonic() + self._max_wait
                while count < self._max_events:
                    try:
                        timeout = deadline - time.monotonic()
                        nxt = (
                            self._queue.get(timeout=timeout)
                            if timeout > 0
                            else self._queue.get_nowait()
                        )
                    except queue.Empty:
                        break
                    if not isinstance(nxt, _AppendJob):
                        held = nxt
                        break
                    group.append(nxt)
                    count += len(nxt.drafts)
                self._commit_group(group)
        except BaseException as exc:  # the thread must never die silently
            self.failed = exc
            log.error("writer thread failed", error=repr(exc))
            self._drain_failed()

    def _commit_group(self, group: list[_AppendJob]) -> None:
        drafts = [d for job in group for d in job.drafts]
        try:
            results = self._session.write_events(drafts)
        except Exception as exc:
            if len(group) > 1 and not self._session.lost_connection(exc):
                # Retry one by one so that one bad request cannot fail its neighbours.
                for job in group:
                    self._commit_group([job])
                return
            log.error("group commit failed", error=repr(exc), events=len(drafts))
            self._finish(group, None, WriterUnavailable(self._session.describe(exc)))
            return
        grown = {d.tenant_id for d, r in zip(drafts, results, strict=True) if r.status == "created"}
        if grown:
            with self._lock:
                self._grown |= grown
        self._finish(group, results, None)
        if grown:
            for listener in self._listeners:
                try:
                    listener(grown)
                except Exception as exc:  # a follower's wake-up must never stop the writer
                    log.warning("commit listener failed", error=repr(exc))

    def _finish(
        self, group: list[_AppendJob], results: list[AppendResult] | None, error: Exception | None
    ) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = defaultdict(list)
        offset = 0
        for job in group:
            n = len(job.drafts)
            part = None if results is None else results[offset : offset + n]
            offset += n
            by_loop[job.loop].append((job.future, part, error))
        with self._lock:
            self._queued_events -= offset
        for loop, pairs in by_loop.items():
            _notify(loop, pairs)

    def _run_call(self, job: _CallJob) -> None:
        pair: list[_Outcome]
        try:
            result = self._session.run(job.fn, job.changes_log)
            pair = [(job.future, result, None)]
        except Exception as exc:
            pair = [(job.future, None, exc)]
        _notify(job.loop, pair)

    def _drain_failed(self) -> None:
        error: BaseException = WriterUnavailable("the database writer stopped")
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, (_AppendJob, _CallJob)):
                _notify(job.loop, [(job.future, None, error)])
