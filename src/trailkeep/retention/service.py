"""Retention as the API, the CLI and the scheduler use it: start a run (one per tenant
at a time, across processes), run it with a lease, report it, list archive segments."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from trailkeep.config import Settings
from trailkeep.errors import Conflict, NotFound, Unavailable
from trailkeep.exports.object_store import DestinationError, archive_store
from trailkeep.kit import jsonutil
from trailkeep.kit.ids import uuid7
from trailkeep.kit.timeutil import format_us, now_us
from trailkeep.retention.policy import effective_policy
from trailkeep.retention.runner import Report, RetentionContext, RunFailed, run_tenant
from trailkeep.store.models import RetentionRunRecord, SegmentRecord, TenantRecord
from trailkeep.store.protocol import Store

log = structlog.get_logger("trailkeep.retention")

Progress = Callable[[str, dict[str, Any]], None]
_SCHEDULER_WAKE_S = 300.0


class RunLost(Exception):
    """Another process took the run over (this one stalled past its lease)."""


def run_json(run: RetentionRunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "tenant_id": run.tenant_id,
        "state": run.state,
        "requested_by": run.requested_by,
        "created_at": format_us(run.created_at),
        "finished_at": None if run.finished_at is None else format_us(run.finished_at),
        "report": None if run.report is None else jsonutil.loads(run.report),
        "error": run.error,
    }


def segment_json(seg: SegmentRecord) -> dict[str, Any]:
    manifest = jsonutil.loads(seg.manifest)
    return {
        "id": seg.id,
        "tenant_id": seg.tenant_id,
        "run_id": seg.run_id,
        "state": seg.state,
        "from_seq": seg.from_seq,
        "to_seq": seg.to_seq,
        "rows": seg.rows,
        "destination": seg.destination,
        "location": seg.location,
        "created_at": format_us(seg.created_at),
        "files": manifest.get("files", []),
        "by_rule": manifest.get("by_rule", {}),
        "checkpoint_size": manifest.get("checkpoint_size"),
    }


class RetentionService:
    def __init__(self, ctx: RetentionContext, lease_seconds: float) -> None:
        self.ctx = ctx
        self._lease_us = int(lease_seconds * 1_000_000)
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid7()[-8:]}"
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- runs ----------------------------------------------------------------------
    async def dry_run(self, tenant: TenantRecord) -> dict[str, Any]:
        async def step(_name: str, _figures: dict[str, Any]) -> None:
            return None

        report: Report = await self._guarded(
            run_tenant(self.ctx, tenant, "dry-run", dry_run=True, step=step)
        )
        return report.to_json()

    async def start(self, tenant: TenantRecord, by: str) -> RetentionRunRecord:
        """Record a new running run of the tenant, or 409 if one is running."""
        if effective_policy(tenant.retention, tenant.retention_days).archive:
            await asyncio.to_thread(self._check_archive)
        now = now_us()
        run = RetentionRunRecord(
            tenant_id=tenant.id,
            id=f"ret_{uuid7().replace('-', '')}",
            state="running",
            requested_by=by,
            created_at=now,
            lease_owner=self._owner,
            lease_until=now + self._lease_us,
        )
        other = await self.ctx.store.start_retention_run(run)
        if other is not None:
            raise Conflict(
                f"a retention run of tenant '{tenant.id}' is already running ({other.id},"
                f" started {format_us(other.created_at)}); wait for it to finish",
                details={"running": other.id},
            )
        return run

    def _check_archive(self) -> None:
        if self.ctx.archive is None:
            return
        try:
            self.ctx.archive.check()
        except DestinationError as exc:
            raise Unavailable(
                f"the archive destination is unavailable: {exc}; nothing was deleted"
            ) from None

    async def execute(
        self, run: RetentionRunRecord, tenant: TenantRecord, progress: Progress | None = None
    ) -> RetentionRunRecord:
        """Run it to the end; the run's record says how it ended."""
        last_renew = time.monotonic()

        async def step(name: str, figures: dict[str, Any]) -> None:
            nonlocal last_renew
            if progress is not None:
                progress(name, figures)
            log.debug(
                "retention step", step=name, tenant_id=run.tenant_id, run_id=run.id, **figures
            )
            if time.monotonic() - last_renew > self._lease_us / 3e6:
                last_renew = time.monotonic()
                changes = {
                    "lease_until": now_us() + self._lease_us,
                    "report": jsonutil.dumps({"step": name, **figures}).decode(),
                }
                if not await self.ctx.store.update_retention_run(
                    run.tenant_id, run.id, self._owner, changes
                ):
                    raise RunLost()

        state, error, report_json = "done", None, None
        try:
            report = await run_tenant(self.ctx, tenant, run.id, dry_run=False, step=step)
            report_json = jsonutil.dumps(report.to_json()).decode()
        except RunFailed as exc:
            state, error = "failed", str(exc)
        except RunLost:
            log.warning("retention run taken over", run_id=run.id)
            return await self._reload(run)
        except Exception as exc:  # a run must always end with its reason recorded
            log.error("retention run failed", run_id=run.id, error=repr(exc), exc_info=exc)
            state, error = "failed", f"{type(exc).__name__}: {exc}"
        changes: dict[str, Any] = {"state": state, "finished_at": now_us(), "error": error}
        if report_json is not None:
            changes["report"] = report_json
        await self.ctx.store.update_retention_run(run.tenant_id, run.id, self._owner, changes)
        return await self._reload(run)

    async def _reload(self, run: RetentionRunRecord) -> RetentionRunRecord:
        found = await self.ctx.store.get_retention_run(run.tenant_id, run.id)
        assert found is not None
        return found

    def launch(
        self, run: RetentionRunRecord, tenant: TenantRecord
    ) -> asyncio.Task[RetentionRunRecord]:
        """Run in the background of this process (the API's 202; awaited, shielded, for
        ``wait=true``: a client that goes away does not stop the run)."""
        task = asyncio.create_task(self.execute(run, tenant))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, work: Any) -> Any:
        try:
            return await work
        except RunFailed as exc:
            raise Unavailable(str(exc)) from None

    async def get(self, tenant_id: str, run_id: str) -> RetentionRunRecord:
        found = await self.ctx.store.get_retention_run(tenant_id, run_id)
        if found is None:
            raise NotFound(f"retention run '{run_id}' not found")
        return found

    async def runs(self, tenant_id: str, limit: int) -> list[RetentionRunRecord]:
        return await self.ctx.store.list_retention_runs(tenant_id, limit)

    # -- archives ------------------------------------------------------------------
    async def segments(self, tenant_id: str, after: str | None, limit: int) -> list[SegmentRecord]:
        return await self.ctx.store.list_segments(tenant_id, after, limit)

    async def segment(self, tenant_id: str, segment_id: str) -> SegmentRecord:
        found = await self.ctx.store.get_segment(tenant_id, segment_id)
        if found is None:
            raise NotFound(f"archive segment '{segment_id}' not found")
        return found

    # -- the scheduler -------------------------------------------------------------
    async def run_all(self, tenants: list[TenantRecord], by: str) -> list[RetentionRunRecord]:
        """One run per tenant in turn (tenants with a run going elsewhere are skipped)."""
        done = []
        for tenant in tenants:
            try:
                run = await self.start(tenant, by)
            except Conflict:
                continue
            except Unavailable as exc:
                log.warning("retention skipped", tenant_id=tenant.id, error=exc.message)
                continue
            done.append(await self.execute(run, tenant))
        return done

    async def schedule_forever(
        self, interval_s: float, list_tenants: Callable[[], Awaitable[list[TenantRecord]]]
    ) -> None:
        """The service's scheduler: wakes up every few minutes and runs the policy of
        each tenant whose last run is older than ``interval_s`` (so restarts neither
        skip nor repeat runs; a tenant running elsewhere is skipped)."""
        while True:
            await asyncio.sleep(min(interval_s, _SCHEDULER_WAKE_S))
            try:
                due = []
                for tenant in await list_tenants():
                    last = await self.ctx.store.list_retention_runs(tenant.id, 1)
                    if not last or now_us() - last[0].created_at > interval_s * 1e6:
                        due.append(tenant)
                await self.run_all(due, "scheduler")
            except Exception as exc:  # the scheduler must outlive a bad round
                log.error("retention scheduler round failed", error=repr(exc))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def build_retention(
    settings: Settings, store: Store, origin_of: Callable[[str], str]
) -> RetentionService:
    """The service's retention, as the settings configure it."""
    ctx = RetentionContext(
        store,
        origin_of,
        archive_store(settings),
        settings.archive_destination,
        settings.resolved_archive_dir / ".work"
        if settings.archive_destination == "local"
        else settings.data_dir / "archive-work",
        batch_rows=settings.retention_batch_rows,
        segment_rows=settings.retention_segment_rows,
        writer_share=settings.retention_writer_share,
    )
    return RetentionService(ctx, settings.retention_lease_seconds)
