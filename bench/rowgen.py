"""The rows of a preload: tenants interleaved over one timeline, in chunks.

Each chunk has its own random stream (the seed and the chunk's number), so chunks can
be made in worker processes while the caller writes the ones before, and the rows are
the same whatever the number of workers. Making a row (~40 µs: a realistic event, its
RFC 8785 body) costs about as much as writing it, so on two cores one worker process
makes the rows while the loader writes them.
"""

from __future__ import annotations

import array
import collections
import concurrent.futures
import multiprocessing
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

from workload import DAY_US, EventFactory, EventRowT, TargetRowT, Txn


@dataclass
class LoadPlan:
    """How many events each tenant gets, interleaved over one timeline ending at ``end_us``.

    ``workers``: processes making the rows while the caller writes them (None: one
    fewer than the CPUs, at least 1, at most 3; 0: none, the caller makes them between
    its writes).
    """

    counts: dict[str, int]
    end_us: int
    span_us: int = 90 * DAY_US
    seed: int = 7
    chunk: int = 20_000
    workers: int | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def worker_count(self) -> int:
        if self.workers is not None:
            return max(0, self.workers)
        return max(1, min(3, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class ChunkJob:
    """One chunk of a load: positions ``start``.. of the timeline, and their tenants."""

    number: int
    start: int
    tenants: tuple[str, ...]
    order: bytes  # tenant index (into ``tenants``) of each position, as uint16
    first_seq: dict[str, int]  # of each tenant in this chunk


def _jobs(plan: LoadPlan, next_seq: dict[str, int]) -> Iterator[ChunkJob]:
    """The chunks in order; advances ``next_seq`` past each chunk as it is handed out."""
    tenants = tuple(plan.counts)
    order = array.array("H", (i for i, n in enumerate(plan.counts.values()) for _ in range(n)))
    random.Random(plan.seed).shuffle(order)  # exact counts, interleaved (seeded)
    for number, start in enumerate(range(0, len(order), plan.chunk)):
        part = order[start : start + plan.chunk]
        first = {}
        for index, n in enumerate(array.array("I", _bincount(part, len(tenants)))):
            if n:
                first[tenants[index]] = next_seq[tenants[index]]
                next_seq[tenants[index]] += n
        yield ChunkJob(number, start, tenants, part.tobytes(), first)


def _bincount(values: array.array[int], size: int) -> list[int]:
    counts = [0] * size
    for v in values:
        counts[v] += 1
    return counts


def chunk_rows(plan: LoadPlan, factory: EventFactory, job: ChunkJob) -> Txn:
    """The rows of one chunk, in time order (as they would have arrived)."""
    gen = factory.reseeded(f"{plan.seed}:chunk:{job.number}")
    rng = gen.rng
    start = plan.end_us - plan.span_us
    step = plan.span_us / max(1, plan.total)
    seqs = dict(job.first_seq)
    order = array.array("H")
    order.frombytes(job.order)
    events: list[EventRowT] = []
    targets: list[TargetRowT] = []
    for offset, t_index in enumerate(order):
        tenant = job.tenants[t_index]
        seq = seqs[tenant]
        seqs[tenant] = seq + 1
        received = start + int((job.start + offset) * step)
        occurred = received - int(rng.random() * 5_000_000)  # clients report a few s late
        row, trows = gen.stored_row(tenant, seq, occurred, received)
        events.append(row)
        targets.extend(trows)
    return events, targets


_WORKER: tuple[LoadPlan, EventFactory] | None = None


def _init_worker(plan: LoadPlan, seed: int) -> None:
    global _WORKER
    _WORKER = (plan, EventFactory(seed))


def _worker_chunk(job: ChunkJob) -> Txn:
    assert _WORKER is not None
    return chunk_rows(_WORKER[0], _WORKER[1], job)


def generate_rows(plan: LoadPlan, factory: EventFactory, next_seq: dict[str, int]) -> Iterator[Txn]:
    """Rows in chunks of ``plan.chunk``, in time order, tenants interleaved.

    ``factory`` gives the pools (its seed); each chunk its own random stream. With
    workers (plan.worker_count) the chunks are made in worker processes, a few ahead
    of the one the caller is writing. ``next_seq`` (each tenant's first seq) is
    advanced as chunks are handed out: it is final once the iteration is done.
    """
    jobs = _jobs(plan, next_seq)
    workers = plan.worker_count()
    if workers == 0 or plan.total <= plan.chunk:
        for job in jobs:
            yield chunk_rows(plan, factory, job)
        return
    pending: collections.deque[concurrent.futures.Future[Txn]] = collections.deque()
    with concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(plan, factory.seed),
    ) as pool:
        try:
            for job in jobs:
                pending.append(pool.submit(_worker_chunk, job))
                if len(pending) > workers + 1:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
