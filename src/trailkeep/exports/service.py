"""Export jobs as the API offers them: accept (checked now, so a bad request is a 4xx
and not a failed job later), show, list, cancel, and hand out the archive."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from trailkeep.auth.principal import Permission, Principal
from trailkeep.errors import BadQuery, Conflict, NotFound, Unavailable, ValidationFailed
from trailkeep.exports.object_store import DestinationError, ObjectStore
from trailkeep.exports.request import ExportIn, ExportPlan
from trailkeep.exports.runner import filter_of
from trailkeep.exports.worker import ExportWorker
from trailkeep.kit.ids import uuid7
from trailkeep.kit.query_ast import QueryError
from trailkeep.kit.timeutil import format_us, now_us, to_us
from trailkeep.privacy.service import PrivacyService
from trailkeep.query.parser import parse_query
from trailkeep.store.models import ExportJobRecord
from trailkeep.store.protocol import Store

MAX_ACTIVE_PER_TENANT = 4  # queued or running: a fifth is a 409 until one ends


@dataclass(frozen=True, slots=True)
class Download:
    """Either a local file to stream or a short-lived link to redirect to."""

    filename: str
    size: int
    file: BinaryIO | None = None
    link: str | None = None


class ExportService:
    def __init__(
        self,
        store: Store,
        privacy: PrivacyService,
        worker: ExportWorker,
        destinations: dict[str, ObjectStore],
        default_destination: str,
        link_seconds: int,
    ) -> None:
        self._store = store
        self._privacy = privacy
        self._worker = worker
        self._destinations = destinations
        self._default = default_destination
        self._link_seconds = link_seconds

    async def create(self, principal: Principal, tenant_id: str, body: ExportIn) -> dict[str, Any]:
        principal.require(Permission.EXPORT)
        plan = await self._plan(principal, tenant_id, body)
        job = ExportJobRecord(
            tenant_id=tenant_id,
            id=f"exp_{uuid7().replace('-', '')}",
            state="queued",
            request=plan.to_json(),
            created_by=principal.subject,
            created_at=now_us(),
            total=None if plan.filtered else plan.to_seq - plan.from_seq,
        )
        if not await self._store.create_export_job(job, MAX_ACTIVE_PER_TENANT):
            raise Conflict(
                f"the tenant already has {MAX_ACTIVE_PER_TENANT} exports queued or running;"
                " wait for one to end or cancel one",
                details={"limit": MAX_ACTIVE_PER_TENANT},
            )
        self._worker.notify()
        return job_json(job)

    async def _plan(self, principal: Principal, tenant_id: str, body: ExportIn) -> ExportPlan:
        destination = body.destination or self._default
        if destination not in self._destinations:
            raise ValidationFailed(
                f"destination '{destination}' is not configured on this server"
                " (TRAILKEEP_EXPORT_S3_BUCKET is not set)",
                details={"field": "destination"},
            )
        try:  # an unreachable or misconfigured bucket is known now: say so, queue nothing
            await asyncio.to_thread(self._destinations[destination].check)
        except DestinationError as exc:
            raise Unavailable(f"export destination '{destination}': {exc}") from None
        resolved_at = now_us()
        try:
            query = parse_query(body.q, now_us=resolved_at) if body.q else None
        except QueryError as exc:
            raise BadQuery(exc.message, {"position": exc.position, "field": "q"}) from None
        head = (await self._store.tree_head(tenant_id)).size
        from_seq = body.from_seq or 0
        to_seq = head if body.to_seq is None else body.to_seq
        if to_seq > head:
            raise ValidationFailed(
                f"to_seq {to_seq} is beyond the log, which has {head} events",
                details={"field": "to_seq", "log_size": head},
            )
        if from_seq >= to_seq:
            what = "the log is empty" if head == 0 else f"from_seq {from_seq} ≥ to_seq {to_seq}"
            raise ValidationFailed(
                f"nothing to export: {what}", details={"field": "from_seq", "log_size": head}
            )
        times = [t for t in (body.from_time, body.to_time) if t is not None]
        if len(times) == 2 and times[0] >= times[1]:
            raise ValidationFailed(
                "from_time must be before to_time", details={"field": "from_time"}
            )
        plan = ExportPlan(
            format=body.format,
            q=body.q,
            from_seq=from_seq,
            to_seq=to_seq,
            occurred_from=None if body.from_time is None else to_us(body.from_time),
            occurred_to=None if body.to_time is None else to_us(body.to_time),
            resolved_at=resolved_at,
            filtered=bool(query and query.terms) or bool(times),
            destination=destination,
            compression=body.compression,
            viewer_subject=principal.subject,
            viewer_tenant=principal.tenant_id,
            viewer_roles=tuple(sorted(r.value for r in principal.roles)),
            viewer_key_id=principal.key_id,
        )
        await filter_of(self._privacy, tenant_id, plan)  # a search the blind index cannot do
        return plan

    async def get(self, principal: Principal, tenant_id: str, job_id: str) -> dict[str, Any]:
        return job_json(await self._job(principal, tenant_id, job_id))

    async def _job(self, principal: Principal, tenant_id: str, job_id: str) -> ExportJobRecord:
        principal.require(Permission.EXPORT)
        job = await self._store.get_export_job(tenant_id, job_id)
        if job is None:  # unknown, or another tenant's: the same answer
            raise NotFound(f"export '{job_id}' not found")
        return job

    async def list(
        self, principal: Principal, tenant_id: str, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        principal.require(Permission.EXPORT)
        before = _decode_cursor(cursor)
        jobs = await self._store.list_export_jobs(tenant_id, before, limit)
        last = jobs[-1] if len(jobs) == limit else None
        return {
            "data": [job_json(j) for j in jobs],
            "next_cursor": None if last is None else f"{last.created_at}.{last.id}",
        }

    async def cancel(self, principal: Principal, tenant_id: str, job_id: str) -> dict[str, Any]:
        job = await self._job(principal, tenant_id, job_id)
        state = await self._store.cancel_export_job(tenant_id, job.id, now_us())
        if state != "cancelled":
            raise Conflict(
                f"export '{job_id}' has already ended ({state}); nothing to cancel",
                details={"state": state},
            )
        found = await self._store.get_export_job(tenant_id, job_id)
        assert found is not None
        return job_json(found)

    async def download(self, principal: Principal, tenant_id: str, job_id: str) -> Download:
        job = await self._job(principal, tenant_id, job_id)
        if job.state != "done" or job.result is None:
            raise Conflict(
                f"export '{job_id}' is {job.state}, not done: nothing to download yet",
                details={"state": job.state},
            )
        archive = orjson.loads(job.result)["archive"]
        destination = self._destinations.get(archive["destination"])
        if destination is None:
            raise NotFound(f"the destination of export '{job_id}' is no longer configured")
        link = destination.link(archive["location"], self._link_seconds, archive["name"])
        if link is not None:
            return Download(archive["name"], archive["bytes"], link=link)
        handle = destination.open(archive["location"])
        if handle is None:
            raise NotFound(f"the archive of export '{job_id}' is gone from its destination")
        return Download(archive["name"], archive["bytes"], file=handle)


def _decode_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    at, _, job_id = cursor.partition(".")
    if not at.isdigit() or not job_id:
        raise ValidationFailed("cursor is not one this API gave out", details={"field": "cursor"})
    return int(at), job_id


def job_json(job: ExportJobRecord) -> dict[str, Any]:
    plan = ExportPlan.from_json(job.request)
    result = orjson.loads(job.result) if job.result else {}
    done = job.state == "done"
    scanned = result.get("scanned_to_seq", plan.from_seq if not done else plan.to_seq)
    span = plan.to_seq - plan.from_seq
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "state": job.state,
        "request": plan.describe(),
        "created_by": job.created_by,
        "created_at": format_us(job.created_at),
        "started_at": None if job.started_at is None else format_us(job.started_at),
        "finished_at": None if job.finished_at is None else format_us(job.finished_at),
        "attempts": job.attempts,
        "progress": {
            "written": job.written,
            "total": job.total,
            "scanned_to_seq": scanned,
            "fraction": 1.0 if done else round((scanned - plan.from_seq) / span, 4),
        },
        "error": job.error,
        "files": result.get("files") if done else None,
        "archive": (
            {k: result["archive"][k] for k in ("name", "bytes", "sha256", "destination")}
            if done
            else None
        ),
        "view": result.get("view") if done else None,
    }
