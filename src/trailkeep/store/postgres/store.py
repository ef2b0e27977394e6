"""PostgresStore: the Store protocol over PostgreSQL.

Event writes go through the group-commit writer thread (one connection per process);
reads and admin writes use a small connection pool, from worker threads. The SQL of
reads and of tenants/keys is shared with SQLite (store/reads/pages.py,
store/accounts/tenants_and_keys.py) and runs here through the qmark adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg.errors
import psycopg_pool
from anyio import to_thread

from trailkeep.errors import QueryTimeout, StoreUnavailable
from trailkeep.store.accounts import tenants_and_keys
from trailkeep.store.connection import SqlConnection
from trailkeep.store.derived.indexer import DerivedIndexer
from trailkeep.store.log.group_commit import GroupCommitWriter
from trailkeep.store.migrations.runner import SchemaError, check_schema
from trailkeep.store.models import (
    TenantRecord,
)
from trailkeep.store.postgres.connect import PgOptions, connect, unavailable, unreachable
from trailkeep.store.postgres.event_writes import insert_restored_rows
from trailkeep.store.postgres.partitions import PartitionManager
from trailkeep.store.postgres.qmark import QmarkConnection
from trailkeep.store.postgres.writer_session import PgWriterSession
from trailkeep.store.reads import pages
from trailkeep.store.sql_store import SharedSqlStore
from trailkeep.store.tables import TENANT_DATA_TABLES

T = TypeVar("T")
# After a request found the database unreachable, the next ones fail at once for this
# long instead of each waiting out the connect timeout; the pool keeps reconnecting in
# the background meanwhile, and the first request after the pause tries again.
UNREACHABLE_PAUSE_S = 0.5
POSTGRES = pages.ReadDialect(index_hints=False, partitioned=True)


class PostgresStore(SharedSqlStore):
    dialect = POSTGRES
    tenant_data_tables = TENANT_DATA_TABLES["postgresql"]
    postgres = True

    def __init__(
        self,
        options: PgOptions,
        *,
        partitions_ahead_months: int = 3,
        commit_max_events: int = 5000,
        commit_max_wait_ms: float = 0.0,
        queue_max: int = 50_000,
        merkle: bool = True,
        writers: int = 2,
    ) -> None:
        self.options = options
        self._unreachable_until = 0.0
        self._partitions = PartitionManager(partitions_ahead_months)
        self._writers = [
            GroupCommitWriter(
                PgWriterSession(options, self._partitions, merkle),
                max_events=commit_max_events,
                max_wait_ms=commit_max_wait_ms,
                queue_max=queue_max,
            )
            for _ in range(writers)
        ]
        self._follow_with(DerivedIndexer(postgres=True, texts=None))
        self._pool = psycopg_pool.ConnectionPool(
            options.url.libpq,
            min_size=1,
            max_size=options.pool_size,
            kwargs=options.connect_kwargs(reads=True),
            timeout=options.connect_timeout_s,
            # After an outage, connections the pool still holds are dead; checking one
            # before handing it out costs a round trip and saves a failed request.
            check=psycopg_pool.ConnectionPool.check_connection,
            # 0 does not mean "for ever": psycopg_pool gives up replacing a connection
            # after a second, immediate attempt, and grows the pool again as soon as a
            # request waits for one. A longer timeout retries with a backoff that doubles
            # (1, 2, 4, 8 s ...) and no new attempt meanwhile, so after a long outage
            # requests would wait for the next scheduled attempt.
            reconnect_timeout=0,
            open=False,
            name="trailkeep",
        )

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        try:
            await to_thread.run_sync(check_schema, self.options.url, self.options.connect_timeout_s)
        except SchemaError as exc:
            raise StoreUnavailable(str(exc)) from None
        try:
            await to_thread.run_sync(self._prepare)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot use {self.options.url.redacted}: {exc}") from None

    def _prepare(self) -> None:
        with connect(self.options) as conn:
            self._partitions.load(conn)
            self._partitions.ensure_ahead(conn)
        self._pool.open(wait=True, timeout=self.options.connect_timeout_s * 2)
        for writer in self._writers:
            writer.start()

    async def close(self) -> None:
        await self._stop_following()
        for writer in self._writers:
            await to_thread.run_sync(writer.stop)
        await to_thread.run_sync(self._pool.close)

    # -- plumbing ------------------------------------------------------------------
    def _run(self, fn: Callable[[QmarkConnection], T], transaction: bool) -> T:
        with self._pool.connection() as conn:
            if not transaction:
                return fn(QmarkConnection(conn))
            with conn.transaction():
                return fn(QmarkConnection(conn))

    async def _call(self, fn: Callable[[QmarkConnection], T], transaction: bool) -> T:
        doing = "database write" if transaction else "database read"
        if time.monotonic() < self._unreachable_until:
            raise StoreUnavailable(f"{doing} failed: the database is unreachable", retry_after=1)
        try:
            return await to_thread.run_sync(self._run, fn, transaction)
        except psycopg.errors.QueryCanceled as exc:
            if transaction:
                raise unavailable(exc, doing) from exc
            raise QueryTimeout(
                f"the query ran longer than {self.options.read_timeout_ms} ms and was stopped:"
                " narrow it with an indexed field (action, actor.id, target) or a time range"
            ) from None
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            if unreachable(exc):
                self._unreachable_until = time.monotonic() + UNREACHABLE_PAUSE_S
            raise unavailable(exc, doing) from exc

    async def _read(self, fn: Callable[[QmarkConnection], T]) -> T:
        return await self._call(fn, transaction=False)

    async def _write(self, fn: Callable[[QmarkConnection], T]) -> T:
        return await self._call(fn, transaction=True)

    # -- tenants -------------------------------------------------------------------
    def _insert_restored(
        self, conn: Any, events: Sequence[tuple[Any, ...]], targets: Sequence[tuple[Any, ...]]
    ) -> None:
        """event_ids kept the rows' ids and seqs: only events and targets come back."""
        insert_restored_rows(conn.conn, events, targets)

    def _insert_tenant(self, conn: SqlConnection, record: TenantRecord) -> bool:
        created = tenants_and_keys.insert_tenant(conn, record)
        if created:
            # The counter row whose lock serializes this tenant's writers (the writer
            # also creates a missing one, for tenants made before it existed).
            conn.execute(
                "INSERT INTO tenant_seqs (tenant_id, next_seq) VALUES (?, 0)"
                " ON CONFLICT (tenant_id) DO NOTHING",
                (record.id,),
            )
        return created
