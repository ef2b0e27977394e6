"""Where SQLite's full-text rows are made: a process of their own (text_worker.py), or
a thread of this one when ``TRAILKEEP_INDEX_PROCESSES=0``.

A worker that dies (killed, out of memory) breaks the pool: the next call starts a new
one, and the indexer's round that failed is retried from its position.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from anyio import to_thread

from trailkeep.store.fulltext.text_worker import Problem, TextRow, exit_with_parent, texts_for


class TextPool:
    def __init__(self, path: Path, processes: int) -> None:
        self._path = str(path)
        self._processes = processes
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the server has threads (a fork would copy their locks).
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(
                self._processes,
                mp_context=context,
                initializer=exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._executor

    async def texts(
        self, tenant_id: str, from_seq: int, to_seq: int
    ) -> tuple[list[TextRow], list[Problem]]:
        if self._processes == 0:
            return await to_thread.run_sync(texts_for, self._path, tenant_id, from_seq, to_seq)
        loop = asyncio.get_running_loop()
        job = (self._path, tenant_id, from_seq, to_seq)
        try:
            return await loop.run_in_executor(self._pool(), texts_for, *job)
        except BrokenProcessPool:
            self.close()
            raise

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
