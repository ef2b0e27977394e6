"""Shared fixtures.

``world`` is the heart of the integration tests: a running app (the real FastAPI app
through its ASGI interface) with two tenants, ``acme`` and ``globex``, keys of every
role for each, and some globex events already stored, so every test that reads or
writes acme data can also assert that nothing of globex leaks.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import backends
from trailkeep.app import build_store, create_app
from trailkeep.auth.principal import Role
from trailkeep.auth.service import AuthService
from trailkeep.config import Settings
from trailkeep.integrity.note import generate_signer
from trailkeep.privacy.key_provider import new_master_key_text
from trailkeep.tenants.models import TenantCreate
from trailkeep.tenants.service import TenantService

TENANTS = ("acme", "globex")
# One checkpoint signing key for the whole run (as `trailkeep init` would create).
TEST_SIGNING_KEY, TEST_VERIFIER_KEY = generate_signer("trailkeep.test")
# ... and one privacy master key (databases made by one test may be opened by another).
TEST_PRIVACY_KEY = new_master_key_text()


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test, on the database of the backend the test runs on."""
    if backends.current_url is not None:
        overrides.setdefault("database_url", backends.current_url)
    elif "database_url" not in overrides:
        backends.provide_sqlite(data_dir, _TEMPLATE_DIR[0])
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "access_log": False,
        "log_level": "WARNING",
        "auth_cache_seconds": 0.0,
        "signing_key": TEST_SIGNING_KEY,
        "privacy_key": TEST_PRIVACY_KEY,
        "checkpoint_interval_seconds": 0.05,
        # The in-process app of each test tokenizes for SQLite's full-text index in a
        # thread: a worker process per test would cost a spawn (~0.5 s) each.
        # tests/integration/test_indexer.py and every e2e server use the process.
        "index_processes": 0,
        # In-process tests check what is stored, not that it survives a power cut: that
        # is tests/e2e/test_durability.py's and test_crash.py's, whose servers keep the
        # default FULL. Without an fsync per commit the in-process half runs faster.
        "sqlite_synchronous": "NORMAL",
    }
    values.update(overrides)
    return Settings(**values)


async def _seed(settings: Settings) -> dict[str, dict[str, str]]:
    store = build_store(settings)
    await store.start()
    try:
        auth = AuthService(store, settings)
        tenants = TenantService(store)
        keys: dict[str, dict[str, str]] = {
            "platform": {"admin": (await auth.create_key(None, Role.ADMIN, "t")).token}
        }
        for tenant in TENANTS:
            await tenants.create(TenantCreate(id=tenant, display_name=tenant.title()))
            keys[tenant] = {}
            for role in (Role.TENANT_ADMIN, Role.WRITER, Role.READER, Role.AUDITOR):
                keys[tenant][role.value] = (await auth.create_key(tenant, role, "t")).token
        return keys
    finally:
        await store.close()


# PostgreSQL: the rows the first seeding wrote, and its keys. Seeding through the
# services costs ~60 ms (nine commits); putting the same rows back costs ~5 ms, before
# each of ~900 PostgreSQL tests. The rows do not depend on a test's settings.
_PG_SEED: list[Any] = []


# SQLite: a copy of the database file the first seeding left, and its keys. Seeding
# costs ~8 ms (the store's start and nine commits); copying the file over a fresh copy
# of the migrated template costs ~0.1 ms, before each of ~1,000 SQLite tests.
_SQLITE_SEED: list[Any] = []


def _seed_sqlite(settings: Settings) -> dict[str, dict[str, str]] | None:
    """Seed a test's fresh SQLite file (untouched since make_settings copied the migrated
    template) by copying the seeded file; None when the file is not such a copy."""
    db = settings.database()
    if db.backend != "sqlite" or not _TEMPLATE_DIR:
        return None
    template = backends.sqlite_template(_TEMPLATE_DIR[0])
    target = db.sqlite_path
    wal = [target.with_name(target.name + suffix) for suffix in ("-wal", "-shm")]
    if any(p.exists() for p in wal) or target.read_bytes() != template.read_bytes():
        return None
    if not _SQLITE_SEED:
        keys = asyncio.run(_seed(settings))
        if any(p.exists() for p in wal):  # not all in the main file: do not keep a copy
            return keys
        seeded = template.with_name("seeded.db")
        shutil.copyfile(target, seeded)
        _SQLITE_SEED[:] = [keys, seeded]
        return copy.deepcopy(keys)
    shutil.copyfile(_SQLITE_SEED[1], target)
    return copy.deepcopy(_SQLITE_SEED[0])


def seed_keys(settings: Settings) -> dict[str, dict[str, str]]:
    db = _PG_DATABASE[0] if _PG_DATABASE else None
    if backends.current_url is None and settings.database_url is None:
        keys = _seed_sqlite(settings)
        if keys is not None:
            return keys
    if db is None or backends.current_url != db.url or settings.database_url != db.url:
        return asyncio.run(_seed(settings))
    if not _PG_SEED:
        keys = asyncio.run(_seed(settings))
        _PG_SEED[:] = [keys, db.snapshot()]
    else:
        db.restore(_PG_SEED[1])
    return copy.deepcopy(_PG_SEED[0])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


GLOBEX_SECRET = "globex-secret-marker"


@dataclass
class World:
    client: TestClient
    settings: Settings
    keys: dict[str, dict[str, str]]
    globex_ids: list[str] = field(default_factory=list)

    def h(self, tenant: str, role: str) -> dict[str, str]:
        return auth(self.keys[tenant][role])

    @property
    def admin(self) -> dict[str, str]:
        return auth(self.keys["platform"]["admin"])

    def post(self, tenant: str, event: dict[str, Any]) -> Any:
        return self.client.post("/v1/events", json=event, headers=self.h(tenant, "writer"))

    def list(self, tenant: str, **params: Any) -> Any:
        return self.client.get("/v1/events", params=params, headers=self.h(tenant, "reader"))

    def all_events(self, tenant: str, **params: Any) -> list[dict[str, Any]]:
        """Every event of a tenant, following cursors."""
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = dict(params, limit=1000)
            if cursor:
                query["cursor"] = cursor
            r = self.list(tenant, **query)
            assert r.status_code == 200, r.text
            body = r.json()
            out += body["data"]
            cursor = body["next_cursor"]
            if not cursor:
                return out

    def assert_globex_untouched(self) -> None:
        events = self.all_events("globex")
        assert sorted(e["id"] for e in events) == sorted(self.globex_ids)
        assert [e["seq"] for e in sorted(events, key=lambda e: e["seq"])] == list(
            range(len(self.globex_ids))
        )


def event(action: str = "user.login", actor: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"action": action, "actor": {"id": actor}, **extra}


_TEMPLATE_DIR: list[Path] = []
_PG_SKIPPED: list[str] = []
_PG_DATABASE: list[backends.PgTestDatabase] = []  # the run's database, once created


@pytest.fixture(scope="session", autouse=True)
def _template_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    _TEMPLATE_DIR.append(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[backends.PgTestDatabase]:
    problem = backends.server_problem()
    if problem is not None:
        if backends.IN_CI:
            pytest.fail(f"CI=true and the PostgreSQL half cannot run: {problem}")
        _PG_SKIPPED.append(problem)
        pytest.skip(problem)
    db = backends.PgTestDatabase()
    db.create()
    _PG_DATABASE.append(db)
    yield db
    _PG_DATABASE.remove(db)
    db.drop()


@pytest.fixture(params=backends.BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test once per backend; make_settings() then points at that backend."""
    if request.param == "postgresql":
        db: backends.PgTestDatabase = request.getfixturevalue("pg_database")
        db.reset()
        backends.current_url = db.url
    try:
        yield str(request.param)
    finally:
        backends.current_url = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked sqlite_only run on SQLite alone (e.g. SQLite's own query plans), and
    those marked postgres_only on PostgreSQL alone (e.g. a PostgreSQL outage)."""
    keep = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("backend") if callspec is not None else None
        if param == "postgresql" and item.get_closest_marker("sqlite_only"):
            continue
        if param == "sqlite" and item.get_closest_marker("postgres_only"):
            continue
        keep.append(item)
    items[:] = keep


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _PG_SKIPPED:
        terminalreporter.write_line(
            f"NOTE: the PostgreSQL half of the suite was SKIPPED: {_PG_SKIPPED[0]}. "
            "Set TRAILKEEP_TEST_PG_URL or start PostgreSQL; CI=true makes this a failure.",
            yellow=True,
            bold=True,
        )


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """``@pytest.mark.settings(name=value)`` on a test overrides settings for it."""
    marker = request.node.get_closest_marker("settings")
    return make_settings(tmp_path, **(marker.kwargs if marker else {}))


DERIVED_READS = ("/v1/events", "/v1/stats")


def settle_derived_reads(client: TestClient, app: Any) -> None:
    """Full text and stats follow the log after commit (the indexer), a bounded moment
    behind it. Tests of their answers read once the indexer has caught up, as a reader
    who checks the Trailkeep-Indexed-To-Seq header would; tests/integration/test_indexer.py
    tests the lag itself. Hooked before every GET of a derived read."""
    store = app.state.services.store

    def before(request: Any) -> None:
        if request.method == "GET" and request.url.path in DERIVED_READS:
            assert client.portal is not None
            assert client.portal.call(store.index_caught_up, 30.0), "the indexer is stuck"

    client.event_hooks["request"].append(before)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    keys = seed_keys(settings)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        settle_derived_reads(client, app)
        w = World(client, settings, keys)
        # One batch: five events posted one by one cost five commits (on PostgreSQL,
        # ~40 ms before each of ~900 tests); tests/integration/test_ingest.py tests both.
        globex = [
            event(
                "secret.read",
                f"g{i}",
                id=f"globex-{i}",
                message=GLOBEX_SECRET,
                targets=[{"type": "document", "id": "shared-doc"}],
            )
            for i in range(5)
        ]
        r = client.post(
            "/v1/events/batch", json={"events": globex}, headers=w.h("globex", "writer")
        )
        assert r.status_code == 200, r.text
        results = [(it["id"], it["status"], it["seq"]) for it in r.json()["results"]]
        assert results == [(e["id"], "created", i) for i, e in enumerate(globex)], r.text
        w.globex_ids += [e["id"] for e in globex]
        yield w
        w.assert_globex_untouched()
