"""The export worker inside every server process: claims queued jobs, runs them, keeps
their leases alive, and records how each ended.

No extra process is needed for the embedded default. With several processes on one
PostgreSQL database, each runs a worker; the claim (store/exports/jobs_sql.py) gives a
job to exactly one of them. At most ``max_running`` jobs run at once in a process and
at most one per tenant everywhere. A job whose worker died is claimed again once its
lease runs out and starts over (a fresh folder: runner.py), so a kill -9 at any point
ends in a complete export, or a failed job with its error; never a half file as done.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import orjson
import structlog

from trailkeep.exports.object_store import DestinationError
from trailkeep.exports.runner import ExportContext, JobFailed, JobLost, run_job
from trailkeep.kit.timeutil import now_us
from trailkeep.store.models import ExportJobRecord

log = structlog.get_logger("trailkeep.exports")

MAX_ATTEMPTS = 3


class ExportWorker:
    def __init__(
        self,
        ctx: ExportContext,
        *,
        max_running: int,
        lease_s: float,
        poll_s: float,
    ) -> None:
        self._ctx = ctx
        self._max = max_running
        self._lease_us = int(lease_s * 1_000_000)
        self._poll_s = poll_s
        self.owner = f"w_{secrets.token_hex(8)}"
        self._running: dict[str, asyncio.Task[None]] = {}  # tenant -> its job's task
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._ctx.work_dir.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._loop(), name="export-worker")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def notify(self) -> None:
        """A job was queued in this process: look now, not at the next poll."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self._claim_what_fits()
            except Exception as exc:  # the database is down: try again at the next poll
                log.warning("export worker could not claim jobs", error=repr(exc))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def _claim_what_fits(self) -> None:
        while len(self._running) < self._max:
            now = now_us()
            job = await self._ctx.store.claim_export_job(
                self.owner, now, now + self._lease_us, list(self._running)
            )
            if job is None:
                return
            self._running[job.tenant_id] = asyncio.create_task(self._run(job))

    async def _run(self, job: ExportJobRecord) -> None:
        store = self._ctx.store

        async def update(changes: dict[str, Any]) -> bool:
            changes = {**changes, "lease_until": now_us() + self._lease_us}
            if "scanned_to_seq" in changes:
                changes["result"] = orjson.dumps(
                    {"scanned_to_seq": changes.pop("scanned_to_seq")}
                ).decode()
            return await store.update_export_job(job.tenant_id, job.id, self.owner, changes)

        log.info("export started", export_id=job.id, tenant_id=job.tenant_id, attempt=job.attempts)
        if job.attempts > MAX_ATTEMPTS:  # every attempt so far died with its process
            await self._fail(job, update, f"gave up after {MAX_ATTEMPTS} interrupted attempts")
            self._running.pop(job.tenant_id, None)
            return
        try:
            result = await run_job(self._ctx, job, update)
            done = {
                "state": "done",
                "finished_at": now_us(),
                "written": result["rows"],
                "result": orjson.dumps(result).decode(),
            }
            if await update(done):
                log.info("export done", export_id=job.id, rows=result["rows"])
            else:  # cancelled at the last moment: remove what was stored
                await asyncio.to_thread(self._forget, result)
        except JobLost:
            log.info("export stopped: cancelled or taken over", export_id=job.id)
        except (JobFailed, DestinationError, OSError) as exc:
            await self._fail(job, update, _reason(exc))
        except asyncio.CancelledError:
            raise  # the server is stopping: the lease runs out, the job is run again
        except Exception as exc:
            log.exception("export failed unexpectedly", export_id=job.id)
            if job.attempts >= MAX_ATTEMPTS:
                await self._fail(job, update, f"internal error: {type(exc).__name__}")
        finally:
            self._running.pop(job.tenant_id, None)
            self._wake.set()

    async def _fail(self, job: ExportJobRecord, update: Any, reason: str) -> None:
        log.warning("export failed", export_id=job.id, error=reason)
        with contextlib.suppress(Exception):
            await update({"state": "failed", "finished_at": now_us(), "error": reason})

    def _forget(self, result: dict[str, Any]) -> None:
        archive = result["archive"]
        destination = self._ctx.destinations.get(archive["destination"])
        if destination is not None:
            with contextlib.suppress(DestinationError):
                destination.delete(archive["location"])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):  # the work folder (a DestinationError is not one)
        return f"could not write the export: {exc.strerror or exc}"
    return str(exc)
