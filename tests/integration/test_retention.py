"""Retention through the API, on both backends, with a second tenant present: policies
and their validation, legal hold, dry runs, per-severity pruning from the middle of the
log with archival, tombstones, proofs that still verify (checked by an independent
RFC 9162 verifier), archives that verify and fail when changed, and bad input."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import World, event, make_settings, seed_keys
from tests.integration.test_integrity import b64d, wait_checkpoint
from tests.rfc9162 import consistency_ok, inclusion_ok, leaf
from tests.s3_fixture import S3Server, s3_server  # noqa: F401
from trailkeep.app import create_app
from trailkeep.cli import app as cli_app
from trailkeep.retention.restore import restore_segment
from trailkeep.store.models import RetentionRunRecord

OLD = "2020-03-01T10:00:00Z"
RECENT_DAYS_AGO = 2


def _recent() -> str:
    moment = time.time() - RECENT_DAYS_AGO * 86_400
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _fill(world: World, n: int = 60) -> list[dict[str, Any]]:
    """acme: old DEBUG events interleaved with old INFO, recent DEBUG and old CRITICAL."""
    events = []
    for i in range(n):
        kind = i % 4
        severity = ("DEBUG", "INFO", "DEBUG", "CRITICAL")[kind]
        when = _recent() if kind == 2 else OLD
        events.append(
            event(
                "auth.login" if i % 5 == 0 else "doc.update",
                f"u{i % 3}",
                id=f"acme-{i}",
                severity=severity,
                occurred_at=when,
                message=f"retention word{i} marker",
                targets=[{"type": "document", "id": f"d{i % 4}"}],
            )
        )
    r = world.client.post(
        "/v1/events/batch", json={"events": events}, headers=world.h("acme", "writer")
    )
    assert r.status_code == 200, r.text
    return events


def _wait_checkpoint(world: World, size: int) -> dict[str, Any]:
    """Until the indexer has counted every event and a checkpoint covers ``size`` (a run
    prunes only events that are both counted in the stats and signed)."""
    store = world.client.app.state.services.store  # type: ignore[attr-defined]
    assert world.client.portal is not None
    assert world.client.portal.call(store.index_caught_up, 30.0)
    return wait_checkpoint(world, size)


def _policy(world: World, body: dict[str, Any], role: str = "tenant_admin") -> Any:
    return world.client.patch("/v1/tenants/acme", json=body, headers=world.h("acme", role))


def _stored(world: World, event_id: str) -> bytes:
    r = world.client.get(
        f"/v1/events/{event_id}?form=stored", headers=world.h("acme", "tenant_admin")
    )
    assert r.status_code == 200, r.text
    return r.content


def test_policy_shape_validation_and_who_may_set_it(world: World) -> None:
    policy = {"default_days": 365, "by_severity": {"debug": 7}, "by_action": {"auth.*": 30}}
    r = _policy(world, {"retention": policy, "legal_hold": {"on": True, "reason": "case 17"}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["retention"] == {
        "default_days": 365,
        "by_severity": {"DEBUG": 7},
        "by_action": {"auth.*": 30},
        "archive": True,
    }
    assert out["retention_days"] == 365  # the alias follows the default
    assert out["legal_hold"] is True
    assert out["legal_hold_info"]["reason"] == "case 17"
    assert out["legal_hold_info"]["set_by"].startswith("key:")
    # The alias alone changes only the default.
    r = _policy(world, {"retention_days": 90})
    assert r.json()["retention"]["by_severity"] == {"DEBUG": 7}
    assert r.json()["retention"]["default_days"] == 90
    for bad in (
        {"retention": {"default_days": -1}},
        {"retention": {"default_days": 0}},
        {"retention": {"by_severity": {"LOUD": 3}}},
        {"retention": {"by_severity": {"DEBUG": "soon"}}},
        {"retention": {"by_action": {"no spaces allowed": 3}}},
        {"retention": {"surprise": 1}},
        {"legal_hold": {"on": True}},
        {"legal_hold": {"on": True, "reason": ""}},
        {"retention": {"default_days": 30}, "retention_days": 31},
    ):
        r = _policy(world, bad)
        assert r.status_code in (400, 422), (bad, r.text)
        assert "error" in r.json()
    assert (
        world.client.get("/v1/tenants/acme", headers=world.admin).json()["retention"][
            "default_days"
        ]
        == 90
    )  # nothing of a refused change was kept
    for role in ("writer", "reader", "auditor"):
        assert _policy(world, {"retention_days": 1}, role).status_code == 403
    r = world.client.patch(
        "/v1/tenants/globex", json={"retention_days": 1}, headers=world.h("acme", "tenant_admin")
    )
    assert r.status_code == 404
    assert (
        world.client.get("/v1/tenants/globex", headers=world.admin).json()["retention_days"] is None
    )


def test_per_severity_pruning_keeps_every_proof(world: World, tmp_path: Path) -> None:
    events = _fill(world)
    first = _wait_checkpoint(world, 60)
    old_root, old_size = b64d(first["root_hash"]), first["tree_size"]
    stored = {e["id"]: _stored(world, e["id"]) for e in events}
    leaves = [leaf(stored[f"acme-{i}"]) for i in range(60)]
    due = [f"acme-{i}" for i in range(60) if i % 4 == 0]  # old DEBUG only
    assert (
        _policy(
            world, {"retention": {"default_days": 3650, "by_severity": {"DEBUG": 7}}}
        ).status_code
        == 200
    )

    dry = world.client.post(
        "/v1/retention/run?dry_run=true", headers=world.h("acme", "tenant_admin")
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["due"] == len(due) and dry.json()["deleted"] == 0
    assert dry.json()["by_severity"] == {"DEBUG": len(due)}
    assert _stored(world, due[0])  # a dry run deletes nothing

    r = world.client.post("/v1/retention/run?wait=true", headers=world.h("acme", "tenant_admin"))
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["state"] == "done", run
    assert run["report"]["deleted"] == run["report"]["archived"] == len(due)
    assert run["report"]["by_rule"] == {"severity:DEBUG": len(due)}

    # Pruned events read back as tombstones; their leaf is the one the log holds.
    for event_id in due:
        r = world.client.get(f"/v1/events/{event_id}", headers=world.h("acme", "reader"))
        assert r.status_code == 410, r.text
        body = r.json()
        assert body["error"]["code"] == "pruned"
        seq = int(event_id.split("-")[1])
        assert body["seq"] == seq and b64d(body["leaf_hash"]) == leaves[seq]
        assert body["policy"] == {"rule": "severity:DEBUG", "kept": "7d"}
        assert body["pruned_at"] and body["archive_segment"]
    kept = [e["id"] for e in world.all_events("acme")]
    assert sorted(kept) == sorted(set(stored) - set(due))
    # Full text forgot them; a re-sent id stays taken.
    assert world.list("acme", q='"word0"').json()["data"] == []
    assert len(world.list("acme", q='"word1"').json()["data"]) == 1
    again = world.post("acme", events[0])
    assert again.status_code == 409 and "pruned" in again.json()["error"]["message"]

    # More events, a new checkpoint: every kept event's proof and the consistency proof
    # between the checkpoints before and after pruning still verify.
    r = world.client.post(
        "/v1/events", json=event("late.one", id="late"), headers=world.h("acme", "writer")
    )
    assert r.status_code == 201 and r.json()["seq"] == 60  # no seq is reused
    second = _wait_checkpoint(world, 61)
    root, size = b64d(second["root_hash"]), second["tree_size"]
    for event_id in kept:
        seq = int(event_id.split("-")[1])
        p = world.client.get(
            f"/v1/events/{event_id}/proof", headers=world.h("acme", "reader")
        ).json()
        proof = [b64d(h) for h in p["proof"]]
        assert inclusion_ok(leaves[seq], seq, size, proof, root), event_id
        assert (
            not inclusion_ok(leaves[seq], seq, size, proof[::-1] or [root], root) or len(proof) < 2
        )
    c = world.client.get(
        f"/v1/proofs/consistency?from={old_size}&to={size}", headers=world.h("acme", "reader")
    ).json()
    assert consistency_ok(old_size, size, old_root, root, [b64d(h) for h in c["proof"]])
    assert not consistency_ok(old_size, size, leaves[0], root, [b64d(h) for h in c["proof"]])

    # The archive lists one segment, which `trailkeep verify` accepts, and refuses once
    # a byte of it changed.
    r = world.client.get("/v1/archives", headers=world.h("acme", "auditor"))
    (segment,) = r.json()["data"]
    assert segment["rows"] == len(due) and segment["state"] == "pruned"
    folder = world.settings.resolved_archive_dir / segment["location"]
    vkey = world.client.get("/v1/integrity/key", headers=world.h("acme", "reader")).json()["vkey"]
    runner = CliRunner()
    ok = runner.invoke(
        cli_app, ["verify", str(world.settings.resolved_archive_dir), "--key", vkey, "--json"]
    )
    assert ok.exit_code == 0, ok.output
    assert orjson.loads(ok.output)["ok"] is True
    data = folder / "events.parquet"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    bad = runner.invoke(cli_app, ["verify", str(folder), "--key", vkey])
    assert bad.exit_code != 0 and "events.parquet" in bad.output
    world.assert_globex_untouched()


def test_legal_hold_blocks_deletion(world: World) -> None:
    _fill(world, 20)
    _wait_checkpoint(world, 20)
    assert (
        _policy(
            world, {"retention_days": 7, "legal_hold": {"on": True, "reason": "audit"}}
        ).status_code
        == 200
    )
    r = world.client.post("/v1/retention/run?wait=true", headers=world.h("acme", "tenant_admin"))
    assert r.status_code == 200, r.text
    assert r.json()["report"]["legal_hold"] is True and r.json()["report"]["deleted"] == 0
    assert len(world.all_events("acme")) == 20
    assert _policy(world, {"legal_hold": {"on": False}}).json()["legal_hold_info"] is None
    r = world.client.post("/v1/retention/run?wait=true&tenant_id=acme", headers=world.admin)
    assert r.json()["report"]["deleted"] == 15  # all but the recent (2 days old) events
    assert len(world.all_events("acme")) == 5
    world.assert_globex_untouched()


def test_archive_off_deletes_without_segments(world: World) -> None:
    _fill(world, 20)
    _wait_checkpoint(world, 20)
    _policy(world, {"retention": {"by_severity": {"CRITICAL": 1}, "archive": False}})
    r = world.client.delete("/v1/logs/cleanup?wait=true", headers=world.h("acme", "tenant_admin"))
    assert r.status_code == 200 and r.json()["report"]["deleted"] == 5
    assert world.client.get("/v1/archives", headers=world.h("acme", "auditor")).json()["data"] == []
    runs = world.client.get("/v1/retention/runs", headers=world.h("acme", "tenant_admin")).json()
    assert [x["state"] for x in runs["data"]] == ["done"]


def test_a_second_run_while_one_runs_is_refused(world: World) -> None:
    _policy(world, {"retention_days": 1})
    store = world.client.app.state.services.store  # type: ignore[attr-defined]
    now = int(time.time() * 1e6)
    running = RetentionRunRecord(
        "acme", "ret_other", "running", "test", now, None, "elsewhere", now + 60_000_000
    )
    assert world.client.portal is not None
    assert world.client.portal.call(store.start_retention_run, running) is None
    r = world.client.post("/v1/retention/run", headers=world.h("acme", "tenant_admin"))
    assert r.status_code == 409 and "ret_other" in r.json()["error"]["message"]
    # A run whose lease ran out (its process died) no longer blocks.
    stale = RetentionRunRecord(
        "globex", "ret_dead", "running", "test", now - 120_000_000, None, "gone", now - 60_000_000
    )
    world.client.portal.call(store.start_retention_run, stale)
    r = world.client.post("/v1/retention/run?wait=true&tenant_id=globex", headers=world.admin)
    assert r.status_code == 200, r.text
    runs = world.client.get("/v1/retention/runs?tenant_id=globex", headers=world.admin).json()[
        "data"
    ]
    assert {x["id"]: x["state"] for x in runs}["ret_dead"] == "failed"


@pytest.mark.settings(archive_dir=Path("/dev/null/not-a-folder"))
def test_unreachable_archive_deletes_nothing(world: World) -> None:
    _fill(world, 8)
    _wait_checkpoint(world, 8)
    _policy(world, {"retention_days": 1})
    r = world.client.post("/v1/retention/run?wait=true", headers=world.h("acme", "tenant_admin"))
    assert r.status_code == 503, r.text
    assert "archive" in r.json()["error"]["message"]
    assert len(world.all_events("acme")) == 8


def test_roles_and_scoping(world: World) -> None:
    for role in ("writer", "reader", "auditor"):
        r = world.client.post("/v1/retention/run?dry_run=true", headers=world.h("acme", role))
        assert r.status_code == 403
    r = world.client.post(
        "/v1/retention/run?dry_run=true&tenant_id=globex", headers=world.h("acme", "tenant_admin")
    )
    assert r.status_code in (403, 404)
    assert world.client.get("/v1/archives", headers=world.h("acme", "writer")).status_code == 403
    assert (
        world.client.get(
            "/v1/retention/runs/ret_nope", headers=world.h("acme", "tenant_admin")
        ).status_code
        == 404
    )
    assert (
        world.client.get("/v1/archives/nope", headers=world.h("acme", "auditor")).status_code == 404
    )


def test_archive_to_s3_and_restore_from_it(
    tmp_path: Path,
    s3_server: S3Server,  # noqa: F811
) -> None:
    """The archive in an S3 bucket over HTTP (moto's server; the same code runs against
    AWS S3 and MinIO): segment files stored and read back there, restore from there."""
    bucket = s3_server.make_bucket("archives")
    settings = make_settings(
        tmp_path,
        archive_destination="s3",
        archive_s3_prefix="tk/archives/",
        export_s3_bucket=bucket,
        export_s3_endpoint_url=s3_server.endpoint_url,
        export_s3_region=s3_server.region,
        export_s3_access_key_id=s3_server.access_key_id,
        export_s3_secret_access_key="s3cr3t",
    )
    keys = seed_keys(settings)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        world = World(client, settings, keys)
        _fill(world, 20)
        _wait_checkpoint(world, 20)
        _policy(world, {"retention": {"by_severity": {"DEBUG": 7}}})
        r = client.post("/v1/retention/run?wait=true", headers=world.h("acme", "tenant_admin"))
        assert r.status_code == 200 and r.json()["state"] == "done", r.text
        assert r.json()["report"]["archived"] == 5
        (segment,) = client.get("/v1/archives", headers=world.h("acme", "auditor")).json()["data"]
        listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="tk/archives/acme/")
        names = sorted(o["Key"].rsplit("/", 1)[1] for o in listed["Contents"])
        assert names == sorted(
            ["checkpoint.txt", "events.parquet", "leaves.bin", "manifest.json", "range-proof.json"]
        )
        assert not list((tmp_path / "archives").glob("acme/*"))  # nothing kept locally
        retention = app.state.services.retention
        assert client.portal is not None
        report = client.portal.call(restore_segment, retention.ctx, "acme", segment["id"])
        assert report.restored == 5
        r = client.get("/v1/events/acme-0", headers=world.h("acme", "reader"))
        assert r.status_code == 200 and r.json()["seq"] == 0


def test_the_scheduler_runs_policies_on_its_own(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, retention_interval_seconds=0.2)
    keys = seed_keys(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        world = World(client, settings, keys)
        _fill(world, 8)
        _wait_checkpoint(world, 8)
        _policy(world, {"retention": {"by_severity": {"CRITICAL": 1}}})
        deadline = time.monotonic() + 20
        while client.get("/v1/events/acme-3", headers=world.h("acme", "reader")).status_code != 410:
            assert time.monotonic() < deadline, "the scheduler never pruned"
            time.sleep(0.1)
        runs = client.get("/v1/retention/runs", headers=world.h("acme", "tenant_admin")).json()
        assert runs["data"][-1]["requested_by"] == "scheduler"
        assert client.get("/v1/events/acme-1", headers=world.h("acme", "reader")).status_code == 200


def test_an_export_over_pruned_events_is_sparse_and_verifies(world: World, tmp_path: Path) -> None:
    _fill(world, 24)
    _wait_checkpoint(world, 24)
    _policy(world, {"retention": {"by_severity": {"DEBUG": 7}, "archive": False}})
    r = world.client.post("/v1/retention/run?wait=true", headers=world.h("acme", "tenant_admin"))
    assert r.json()["report"]["deleted"] == 6
    r = world.client.post(
        "/v1/exports", json={"format": "jsonl"}, headers=world.h("acme", "auditor")
    )
    assert r.status_code == 202, r.text
    job = r.json()
    deadline = time.monotonic() + 30
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
        job = world.client.get(
            f"/v1/exports/{job['id']}", headers=world.h("acme", "auditor")
        ).json()
    assert job["state"] == "done", job
    archive = tmp_path / "export.zip"
    archive.write_bytes(
        world.client.get(
            f"/v1/exports/{job['id']}/download", headers=world.h("acme", "auditor")
        ).content
    )
    vkey = world.client.get("/v1/integrity/key", headers=world.h("acme", "reader")).json()["vkey"]
    out = CliRunner().invoke(cli_app, ["verify", str(archive), "--key", vkey, "--json"])
    report = orjson.loads(out.output)
    assert out.exit_code == 0 and report["ok"] and report["sparse"] and report["rows"] == 18, (
        out.output
    )


@pytest.mark.sqlite_only  # PostgreSQL's autovacuum reclaims space on its own
def test_pruned_space_goes_back_to_the_file_system(world: World) -> None:
    """Incremental vacuum after a run: the pages the pruned rows held are freed."""
    filler = "x" * 1500  # a page or so per two events
    for start in range(0, 3000, 1000):
        events = [
            event(
                "doc.update",
                id=f"acme-{i}",
                occurred_at=OLD,
                message=f"{filler} {i}",
                severity="DEBUG" if i % 2 else "INFO",
            )
            for i in range(start, start + 1000)
        ]
        r = world.client.post(
            "/v1/events/batch", json={"events": events}, headers=world.h("acme", "writer")
        )
        assert r.status_code == 200
    _wait_checkpoint(world, 3000)
    _policy(world, {"retention": {"by_severity": {"DEBUG": 7}, "archive": False}})
    r = world.client.post("/v1/retention/run?wait=true", headers=world.h("acme", "tenant_admin"))
    assert r.json()["report"]["deleted"] == 1500, r.text
    assert r.json()["report"]["reclaimed_pages"] > 300
    path = world.settings.database().sqlite_path
    assert path is not None
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    finally:
        conn.close()
