"""create_app(settings): the FastAPI application with every router and service wired."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from trailkeep import __version__, logs
from trailkeep.auth import routes as key_routes
from trailkeep.auth.service import AuthService
from trailkeep.config import Settings
from trailkeep.events import bench_routes
from trailkeep.events import routes as event_routes
from trailkeep.events.cursor import CursorCodec
from trailkeep.events.schema import json_schemas as event_json_schemas
from trailkeep.events.service import EventService
from trailkeep.exports import routes as export_routes
from trailkeep.exports.object_store import LocalObjectStore, ObjectStore, object_store
from trailkeep.exports.runner import ExportContext
from trailkeep.exports.service import ExportService
from trailkeep.exports.worker import ExportWorker
from trailkeep.http import errors, health
from trailkeep.http.fastlane import Endpoint, FastLane
from trailkeep.http.middleware import RequestContext
from trailkeep.integrity import routes as integrity_routes
from trailkeep.integrity.scrubber import Scrubber
from trailkeep.integrity.service import IntegrityService
from trailkeep.integrity.signed_heads import SIGNED_HEADS_FILE, SignedHeads
from trailkeep.integrity.signing import CheckpointSigner
from trailkeep.integrity.signing_keys import load_log_key
from trailkeep.privacy import routes as subject_routes
from trailkeep.privacy.key_provider import load_key_provider
from trailkeep.privacy.service import PrivacyService
from trailkeep.privacy.subjects import SubjectService
from trailkeep.retention import routes as retention_routes
from trailkeep.retention.service import build_retention
from trailkeep.services import Services
from trailkeep.stats import routes as stats_routes
from trailkeep.stats.service import StatsService
from trailkeep.store.protocol import Store
from trailkeep.store.sqlite import SqliteStore
from trailkeep.tenants import routes as tenant_routes
from trailkeep.tenants.service import TenantService

log = structlog.get_logger("trailkeep.app")

DESCRIPTION = """Multi-tenant, tamper-evident audit log.

Authenticate with `Authorization: Bearer <API key or JWT>`. Every error has the shape
`{"error": {"code", "message", "details", "request_id"}}`.
"""


def build_store(settings: Settings) -> Store:
    db = settings.database()
    if db.backend == "postgresql":
        from trailkeep.store.postgres import PgOptions, PostgresStore

        return PostgresStore(
            PgOptions(
                db,
                connect_timeout_s=settings.pg_connect_timeout_seconds,
                statement_timeout_ms=settings.pg_statement_timeout_ms,
                read_timeout_ms=settings.query_timeout_ms,
                pool_size=settings.pg_pool_size,
            ),
            partitions_ahead_months=settings.pg_partitions_ahead_months,
            commit_max_events=settings.commit_max_events,
            commit_max_wait_ms=settings.commit_max_wait_ms,
            queue_max=settings.ingest_queue_max,
            merkle=settings.merkle,
            writers=settings.pg_writers,
        )
    return SqliteStore(
        db.sqlite_path,
        synchronous=settings.sqlite_synchronous,
        cache_mb=settings.sqlite_cache_mb,
        read_timeout_ms=settings.query_timeout_ms,
        commit_max_events=settings.commit_max_events,
        commit_max_wait_ms=settings.commit_max_wait_ms,
        queue_max=settings.ingest_queue_max,
        merkle=settings.merkle,
        index_processes=settings.index_processes,
    )


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(event_json_schemas())
    app.openapi_schema = schema
    return schema


def _destinations(settings: Settings) -> dict[str, ObjectStore]:
    """Where export archives may go: the local folder always, S3 when configured."""
    found: dict[str, ObjectStore] = {"local": LocalObjectStore(settings.resolved_export_dir)}
    if settings.export_s3_bucket:
        found["s3"] = object_store(settings.model_copy(update={"export_destination": "s3"}))
    return found


async def _flush_key_usage(auth: AuthService) -> None:
    while True:
        await asyncio.sleep(5)
        try:
            await auth.flush_last_used()
        except Exception as exc:  # never let bookkeeping take the server down
            log.warning("could not record API key usage", error=repr(exc))


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check_secrets()
    logs.configure(settings.log_level)
    store = store or build_store(settings)
    tenants = TenantService(store)
    auth = AuthService(store, settings)
    key = load_log_key(settings)  # the signing key's problems are reported first
    privacy = PrivacyService(
        store,
        tenants.privacy_settings,
        load_key_provider(settings),
        settings.privacy_key_cache_seconds,
    )
    events = EventService(
        store, tenants, settings.limits, CursorCodec(settings.secret_key), privacy, settings.merkle
    )
    integrity = IntegrityService(store, key)
    signer = CheckpointSigner(
        store,
        key,
        settings.checkpoint_interval_seconds,
        SignedHeads(settings.resolved_signing_key_file.parent / SIGNED_HEADS_FILE),
    )
    scrubber = Scrubber(store, signer.faults, settings.scrub_events_per_second or 1.0)
    destinations = _destinations(settings)
    export_worker = ExportWorker(
        ExportContext(
            store,
            privacy,
            key.origin,
            destinations,
            settings.resolved_export_dir / ".work",
            wait_s=max(30.0, 10 * settings.checkpoint_interval_seconds),
        ),
        max_running=settings.export_workers,
        lease_s=settings.export_lease_seconds,
        poll_s=settings.export_poll_seconds,
    )
    retention = build_retention(settings, store, key.origin)
    services = Services(
        settings,
        store,
        auth,
        tenants,
        events,
        integrity,
        StatsService(store),
        privacy,
        SubjectService(store, privacy),
        ExportService(
            store,
            privacy,
            export_worker,
            destinations,
            settings.export_destination,
            settings.export_link_seconds,
        ),
        retention,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await store.start()
        await privacy.check_master_key()
        store.start_indexer()
        flusher = asyncio.create_task(_flush_key_usage(auth))
        signing = asyncio.create_task(signer.run() if settings.merkle else asyncio.sleep(0))
        scrubbing = asyncio.create_task(
            scrubber.run()
            if settings.merkle and settings.scrub_events_per_second
            else asyncio.sleep(0)
        )
        export_worker.start()
        scheduling = asyncio.create_task(
            retention.schedule_forever(
                settings.retention_interval_seconds, lambda: tenants.list(None, 100_000)
            )
            if settings.retention_interval_seconds
            else asyncio.sleep(0)
        )
        log.info("trailkeep started", version=__version__, env=settings.env)
        try:
            yield
        finally:
            await export_worker.stop()
            scheduling.cancel()
            await retention.close()
            flusher.cancel()
            signing.cancel()
            scrubbing.cancel()
            with contextlib.suppress(Exception):
                await auth.flush_last_used()
            await store.close()

    app = FastAPI(
        title="Trailkeep",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        # FastAPI's OpenTelemetry hooks probe the environment on every request; off until
        # the service exports telemetry of its own.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    app.state.signer = signer
    app.state.scrubber = scrubber
    errors.install(app)
    app.include_router(health.router)
    app.include_router(event_routes.router)
    app.include_router(tenant_routes.router)
    app.include_router(key_routes.router)
    app.include_router(integrity_routes.router)
    app.include_router(stats_routes.router)
    app.include_router(subject_routes.router)
    app.include_router(export_routes.router)
    app.include_router(retention_routes.router)
    if settings.bench_endpoints:
        app.include_router(bench_routes.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    fast: dict[tuple[str, str], Endpoint] = {
        ("POST", "/v1/events"): event_routes.post_event,
        ("POST", "/v1/events/batch"): event_routes.post_batch,
    }
    if settings.bench_endpoints:
        fast[("POST", "/v1/_bench/validate")] = bench_routes.validate_only
    # Added first, so it runs inside RequestContext (request ids, access log, 500s).
    app.add_middleware(FastLane, services=services, endpoints=fast)
    app.add_middleware(RequestContext, access_log=settings.access_log)
    return app
