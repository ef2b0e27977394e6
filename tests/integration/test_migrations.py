"""Migrations: they build exactly the tables the code defines, on both backends, and
the service refuses a database that is unmigrated, behind, or from a newer version."""

from __future__ import annotations

import base64
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from tests import backends
from tests.conftest import make_settings, seed_keys
from trailkeep.app import create_app
from trailkeep.errors import StoreUnavailable
from trailkeep.kit import merkle
from trailkeep.kit.canonical import canonical_json
from trailkeep.store.migrations.runner import (
    SchemaError,
    alembic_config,
    check_schema,
    head_revision,
    upgrade,
)
from trailkeep.store.stats.rollup_specs import ROLLUPS
from trailkeep.store.tables import metadata_for
from trailkeep.store.tree import tiles_sql
from trailkeep.store.urls import DatabaseUrl, parse_database_url

_PARTITION = re.compile(r"^(events|event_targets)_p\d{6}$")
# SQLite's FTS5 table and its shadow tables: made by SQL in the migration, not in Core.
_FTS5 = re.compile(r"^events_fts(_data|_idx|_content|_docsize|_config)?$")


def _db(tmp_path: Path) -> DatabaseUrl:
    if backends.current_url is not None:
        return parse_database_url(backends.current_url)
    return parse_database_url(f"sqlite:///{tmp_path / 'm.db'}")


def _include(name: str | None, type_: str, _parent: Any) -> bool:
    # Monthly partitions are made by the running service, not by migrations.
    return not (
        type_ == "table" and name is not None and (_PARTITION.match(name) or _FTS5.match(name))
    )


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    db = _db(tmp_path)
    upgrade(db)
    engine = create_engine(db.sqlalchemy)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": _include, "compare_type": True}
            )
            diff = compare_metadata(context, metadata_for(db.backend))
    finally:
        engine.dispose()
    assert diff == []


def test_migrate_is_idempotent_and_reports_revisions(tmp_path: Path) -> None:
    db = _db(tmp_path)
    first = upgrade(db)
    again = upgrade(db)
    assert first.after == again.after == head_revision(db.backend)
    assert again.before == again.after
    check_schema(db)  # does not raise


def _set_revision(db: DatabaseUrl, revision: str | None) -> None:
    if db.backend == "sqlite":
        conn: Any = sqlite3.connect(db.sqlite_path)
        mark = "?"
    else:
        conn = psycopg.connect(db.libpq, autocommit=True)
        mark = "%s"
    try:
        conn.execute("DELETE FROM alembic_version")
        if revision is not None:
            conn.execute(f"INSERT INTO alembic_version (version_num) VALUES ({mark})", (revision,))
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("revision", "message"),
    [
        ("9999_from_the_future", "newer Trailkeep"),
        (None, "run `trailkeep migrate`"),
    ],
)
def test_service_refuses_a_schema_it_does_not_know(
    tmp_path: Path, revision: str | None, message: str
) -> None:
    db = _db(tmp_path)
    upgrade(db)
    _set_revision(db, revision)
    try:
        with pytest.raises(SchemaError, match=re.escape(message)):
            check_schema(db)
        settings = make_settings(tmp_path, database_url=db.raw)
        with (
            pytest.raises(StoreUnavailable, match=re.escape(message)),
            TestClient(create_app(settings)),
        ):
            pass
        if revision is not None:
            # migrate will not touch a schema it does not know either
            with pytest.raises(SchemaError, match="newer Trailkeep"):
                upgrade(db)
    finally:
        _set_revision(db, head_revision(db.backend))


@pytest.mark.sqlite_only
def test_a_database_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    """0.1 created its SQLite schema with create_all and a schema_info table."""
    db = parse_database_url(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(db)
    conn = sqlite3.connect(db.sqlite_path)
    conn.execute("DROP TABLE alembic_version")
    conn.execute("DROP TABLE merkle_tiles")  # 0.1 had no Merkle tree ...
    conn.execute("DROP TABLE checkpoints")
    conn.execute("DROP TABLE events_fts")  # ... no full-text search, no stats ...
    for spec in ROLLUPS:
        conn.execute(f"DROP TABLE {spec.table}")
    conn.execute("DROP TABLE log_positions")  # ... no followers of the log ...
    conn.execute("DROP TABLE log_skips")
    for table in ("subject_keys", "tenant_keys", "subject_stats"):  # ... no privacy ...
        conn.execute(f"DROP TABLE {table}")
    conn.execute("ALTER TABLE tenants DROP COLUMN privacy")
    conn.execute("DROP TABLE export_jobs")  # ... no exports ...
    for table in ("pruned_events", "retention_runs", "archive_segments"):  # ... no retention
        conn.execute(f"DROP TABLE {table}")
    conn.execute("ALTER TABLE tenants DROP COLUMN retention")
    conn.execute("ALTER TABLE tenants DROP COLUMN legal_hold_info")
    conn.execute("DROP INDEX ux_tenants_num")
    conn.execute("ALTER TABLE tenants DROP COLUMN num")
    conn.execute("CREATE TABLE schema_info (version INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO schema_info VALUES (1)")
    conn.execute("INSERT INTO tenants VALUES ('kept', 'Kept', NULL, 0, 1, 1)")
    # ... and stored bodies as orjson wrote them: a float differs from its JCS form.
    bodies = [
        orjson.dumps({"seq": i, "n": 1.0 * i}, option=orjson.OPT_SORT_KEYS) for i in range(300)
    ]
    conn.executemany(
        "INSERT INTO events VALUES ('kept', ?, ?, 1, 1, 'a', NULL, 'user', 1, 'success', ?, ?)",
        [(i, f"e{i}", b"0" * 16, body) for i, body in enumerate(bodies)],
    )
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="run `trailkeep migrate`"):
        check_schema(db)
    result = upgrade(db)
    assert result.after == head_revision("sqlite")
    check_schema(db)
    conn = sqlite3.connect(db.sqlite_path)
    assert conn.execute("SELECT id FROM tenants").fetchall() == [("kept",)]
    stored = [row[0] for row in conn.execute("SELECT body FROM events ORDER BY seq")]
    assert stored[2] == b'{"n":2,"seq":2}'  # rewritten in its RFC 8785 form
    assert stored == [canonical_json(orjson.loads(body)) for body in bodies]
    frontier = tiles_sql.load_frontier(conn, "kept")
    assert frontier.size == 300
    assert frontier.root() == merkle.root_from_leaf_hashes([merkle.leaf_hash(b) for b in stored])
    # 0003 indexed the stored events' text and counted them into the rollups.
    assert conn.execute("SELECT COUNT(*) FROM events_fts").fetchone() == (300,)
    assert conn.execute("SELECT SUM(n) FROM stats_daily").fetchone() == (300,)
    assert conn.execute("SELECT num FROM tenants").fetchall() == [(1,)]
    # 0006: the indexer starts past what 0003 indexed.
    assert conn.execute("SELECT tenant_id, follower, next_seq FROM log_positions").fetchall() == [
        ("kept", "index", 300)
    ]
    conn.close()


def _downgrade(db: DatabaseUrl, revision: str) -> None:
    engine = create_engine(db.sqlalchemy)
    try:
        with engine.connect() as conn:
            config = alembic_config(db.backend)
            config.attributes["connection"] = conn
            command.downgrade(config, revision)
            conn.commit()
    finally:
        engine.dispose()


def test_events_stored_before_the_tree_get_one_when_migrated(tmp_path: Path) -> None:
    """0002 builds the tree of events stored at 0001, rewriting non-canonical bodies."""
    db = _db(tmp_path)
    upgrade(db)
    settings = make_settings(tmp_path, database_url=db.raw)
    keys = seed_keys(settings)
    headers = {"Authorization": f"Bearer {keys['acme']['writer']}"}
    events = [{"action": "a.b", "actor": {"id": "u"}, "id": f"e{i}"} for i in range(300)]
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/events/batch", json={"events": events}, headers=headers)
        assert r.json()["created"] == 300
    _downgrade(db, "0001")
    # As 0.2 stored a float: orjson's spelling, not RFC 8785's.
    conn = sqlite3.connect(db.sqlite_path) if db.backend == "sqlite" else None
    pg = psycopg.connect(db.libpq, autocommit=True) if conn is None else None
    mark = "?" if conn is not None else "%s"
    runner: Any = conn if conn is not None else pg
    old = b'{"action":"a.b","actor":{"id":"u"},"n":1.0,"seq":7}'
    runner.execute(f"UPDATE events SET body = {mark} WHERE seq = 7 AND tenant_id = 'acme'", (old,))
    if conn is not None:
        conn.commit()
    runner.close()

    assert upgrade(db).before == "0001"
    with TestClient(create_app(settings)) as client:
        more = [{"action": "a.c", "actor": {"id": "u"}} for _ in range(5)]
        r = client.post("/v1/events/batch", json={"events": more}, headers=headers)
        assert r.json()["created"] == 5, "the writer goes on from the rebuilt tree"
        reader = {"Authorization": f"Bearer {keys['acme']['reader']}"}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            checkpoint = client.get("/v1/checkpoint", headers=reader).json()
            if checkpoint.get("tree_size") == 305:
                break
            time.sleep(0.05)
        bodies = [client.get(f"/v1/events/e{i}", headers=reader).content for i in (6, 7, 8)]
        assert bodies[1] == b'{"action":"a.b","actor":{"id":"u"},"n":1,"seq":7}'
        listed = client.get("/v1/events?limit=1000", headers=reader).json()["data"]
    leaves = [merkle.leaf_hash(canonical_json(e)) for e in sorted(listed, key=lambda e: e["seq"])]
    assert checkpoint["tree_size"] == 305
    assert base64.b64decode(checkpoint["root_hash"]) == merkle.root_from_leaf_hashes(leaves)
