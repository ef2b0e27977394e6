"""Export jobs through the API, on both backends, with a second tenant present: the three
formats, the verification bundle checked by ``trailkeep verify`` (and failing, naming the
row, after a line is removed, a field changed or a line added), filtered exports with
inclusion proofs, personal fields as the role may see them, roles, and bad input."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import World, event, make_settings, seed_keys
from tests.s3_fixture import S3Server, s3_server  # noqa: F401
from trailkeep.app import create_app
from trailkeep.cli import app as cli_app

EMAIL = "ada.lovelace@example.com"


def _fill(world: World, n: int = 40) -> None:
    events = []
    for i in range(n):
        extra: dict[str, Any] = {
            "id": f"acme-{i}",
            "message": f"document {i} changed",
            "metadata": {"n": i, "tags": ["a", "b"]},
            "targets": [{"type": "document", "id": f"d{i % 3}", "name": f"Doc {i % 3}"}],
        }
        if i % 4 == 0:
            extra["context"] = {"ip_address": "203.0.113.9", "user_agent": "Agent/1"}
        if i == 7:
            extra["message"] = '=HYPERLINK("http://evil")'  # a spreadsheet formula
        actor = {"id": f"u{i % 5}", "name": "Ada Lovelace", "email": EMAIL}
        action = "user.login" if i % 2 else "document.update"
        events.append({"action": action, "actor": actor, **extra})
    r = world.client.post(
        "/v1/events/batch", json={"events": events}, headers=world.h("acme", "writer")
    )
    assert r.status_code == 200, r.text


def _export(world: World, role: str = "tenant_admin", **body: Any) -> dict[str, Any]:
    r = world.client.post("/v1/exports", json=body, headers=world.h("acme", role))
    assert r.status_code == 202, r.text
    job = r.json()
    deadline = time.monotonic() + 30
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = world.client.get(f"/v1/exports/{job['id']}", headers=world.h("acme", role)).json()
    assert job["state"] == "done", job
    return job


def _download(world: World, job: dict[str, Any], into: Path, role: str = "tenant_admin") -> Path:
    r = world.client.get(f"/v1/exports/{job['id']}/download", headers=world.h("acme", role))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    into.mkdir(parents=True, exist_ok=True)
    archive = into / job["archive"]["name"]
    archive.write_bytes(r.content)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(into)
    return into / archive.name.removesuffix(".zip")


def _vkey(world: World) -> str:
    r = world.client.get("/v1/integrity/key", headers=world.h("acme", "reader"))
    return str(r.json()["vkey"])


def _verify(path: Path, vkey: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli_app, ["verify", str(path), "--key", vkey, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_jsonl_export_of_the_whole_log_verifies_and_tampering_is_named(
    world: World, tmp_path: Path
) -> None:
    _fill(world)
    job = _export(world, format="jsonl")
    assert job["progress"]["written"] == 40 and job["request"]["to_seq"] == 40
    folder = _download(world, job, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint.txt",
        "events.jsonl",
        "leaves.bin",
        "manifest.json",
        "range-proof.json",
    ]
    vkey = _vkey(world)
    code, report = _verify(folder, vkey)
    assert code == 0 and report["ok"] and report["rows"] == 40, report
    # the zip archive itself verifies too
    assert _verify(tmp_path / job["archive"]["name"], vkey)[0] == 0
    # the lines are the stored events, byte for byte
    lines = (folder / "events.jsonl").read_bytes().splitlines()
    stored = world.client.get(
        "/v1/events/acme-3", params={"form": "stored"}, headers=world.h("acme", "reader")
    )
    assert lines[3] == stored.content
    assert b"ada.lovelace" not in (folder / "events.jsonl").read_bytes()  # sealed

    def tampered(change: Any) -> dict[str, Any]:
        target = tmp_path / f"t{len(list(tmp_path.iterdir()))}"
        target.mkdir()
        for f in folder.iterdir():
            (target / f.name).write_bytes(f.read_bytes())
        data = (target / "events.jsonl").read_bytes().splitlines()
        (target / "events.jsonl").write_bytes(b"\n".join(change(data)) + b"\n")
        code, report = _verify(target, vkey)
        assert code == 1 and not report["ok"]
        return report

    removed = tampered(lambda d: d[:10] + d[11:])
    assert any("missing" in p and "10" in p for p in removed["problems"]), removed
    changed = tampered(lambda d: [*d[:5], d[5].replace(b"document 5", b"document X"), *d[6:]])
    assert any("row 6 (seq 5)" in p and "changed" in p for p in changed["problems"]), changed
    added = tampered(lambda d: [*d, d[-1]])
    assert any("seq 39" in p and "second time" in p for p in added["problems"]), added
    # the export is on record in the tenant's log
    logged = world.all_events("acme", q="action:trailkeep.export.requested")
    assert [e["targets"][0]["id"] for e in logged] == [job["id"]]


def test_csv_and_parquet_show_the_role_s_view_and_verify(world: World, tmp_path: Path) -> None:
    _fill(world)
    vkey = _vkey(world)
    api = {e["seq"]: e for e in world.all_events("acme")}
    auditor_view = {
        e["seq"]: e
        for e in world.client.get(
            "/v1/events", params={"limit": 1000}, headers=world.h("acme", "auditor")
        ).json()["data"]
    }
    for fmt in ("csv", "parquet"):
        job = _export(world, role="auditor", format=fmt, to_seq=40)
        folder = _download(world, job, tmp_path / fmt, role="auditor")
        code, report = _verify(folder, vkey)
        assert code == 0, report
        assert report["sealed_values_shown"] > 0  # decrypted for the auditor
        if fmt == "parquet":
            table = pq.read_table(folder / "events.parquet")
            rows = table.to_pylist()
            assert [r["seq"] for r in rows] == list(range(40))
            for r in rows:
                want = auditor_view[r["seq"]]
                assert r["actor_email"] == want["actor"]["email"] == EMAIL
                assert r["action"] == want["action"] and r["id"] == want["id"]
                assert r["targets"][0]["id"] == want["targets"][0]["id"]
                assert json.loads(r["metadata"]) == want["metadata"]
            con = duckdb.connect()
            count, logins = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE action = 'user.login')"
                f" FROM read_parquet('{folder / 'events.parquet'}')"
            ).fetchone()
            assert (count, logins) == (40, 20)
        else:
            text = (folder / "events.csv").read_bytes().decode()
            rows = list(csv.DictReader(io.StringIO(text)))
            assert len(rows) == 40 and rows[0]["actor_email"] == EMAIL
            assert rows[7]["message"].startswith("'=HYPERLINK")  # never run as a formula
            assert all(r["action"] == api[int(r["seq"])]["action"] for r in rows)
            # a changed cell is named
            lines = text.split("\r\n")
            lines[4] = lines[4].replace("user.login", "user.logout", 1)
            (folder / "events.csv").write_bytes("\r\n".join(lines).encode())
            code, report = _verify(folder, vkey)
            assert code == 1
            assert any("row 5 (seq 3)" in p and "column action" in p for p in report["problems"])


def test_a_reader_sees_masked_fields_and_cannot_export(world: World, tmp_path: Path) -> None:
    _fill(world, 8)
    r = world.client.post("/v1/exports", json={}, headers=world.h("acme", "reader"))
    assert r.status_code == 403
    job = _export(world, role="tenant_admin", format="csv")
    assert (
        world.client.get(
            f"/v1/exports/{job['id']}/download", headers=world.h("acme", "reader")
        ).status_code
        == 403
    )
    # another tenant's export id is a 404, for reading and downloading alike
    for path in (f"/v1/exports/{job['id']}", f"/v1/exports/{job['id']}/download"):
        assert world.client.get(path, headers=world.h("globex", "tenant_admin")).status_code == 404
    listed = world.client.get("/v1/exports", headers=world.h("globex", "tenant_admin")).json()
    assert listed["data"] == []


def test_filtered_export_carries_inclusion_proofs(world: World, tmp_path: Path) -> None:
    _fill(world)
    vkey = _vkey(world)
    job = _export(world, format="jsonl", q="action:user.login")
    folder = _download(world, job, tmp_path)
    assert (folder / "proofs.jsonl").is_file() and not (folder / "leaves.bin").exists()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["filtered"] and "not a proof" in manifest["statement"]
    code, report = _verify(folder, vkey)
    assert code == 0 and report["rows"] == 20, report
    lines = (folder / "events.jsonl").read_bytes().splitlines()
    assert all(json.loads(line)["action"] == "user.login" for line in lines)
    (folder / "events.jsonl").write_bytes(b"\n".join(lines[:3] + lines[4:]) + b"\n")
    code, report = _verify(folder, vkey)
    assert code == 1 and any("removed" in p for p in report["problems"]), report


def test_a_seq_range_export_is_proven_complete(world: World, tmp_path: Path) -> None:
    _fill(world)
    job = _export(world, format="parquet", from_seq=5, to_seq=29)
    folder = _download(world, job, tmp_path)
    code, report = _verify(folder, _vkey(world))
    assert code == 0 and report["rows"] == 24, report
    assert [r["seq"] for r in pq.read_table(folder / "events.parquet").to_pylist()] == list(
        range(5, 29)
    )


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"q": "action:("}, 400, ""),
        ({"format": "xlsx"}, 422, "format"),
        ({"to_seq": 10_000}, 422, "beyond the log"),
        ({"from_seq": 30, "to_seq": 20}, 422, "nothing to export"),
        ({"destination": "s3"}, 422, "not configured"),
        ({"from_time": "2026-01-02T00:00:00Z", "to_time": "2026-01-01T00:00:00Z"}, 422, "before"),
        ({"extra": 1}, 422, ""),
    ],
)
def test_bad_requests_are_refused_up_front(
    world: World, body: dict[str, Any], status: int, needle: str
) -> None:
    world.post("acme", event())
    for _ in range(30):
        world.post("acme", event())
    r = world.client.post("/v1/exports", json=body, headers=world.h("acme", "tenant_admin"))
    assert r.status_code == status, r.text
    assert needle in r.text
    assert (
        world.client.get("/v1/exports", headers=world.h("acme", "tenant_admin")).json()["data"]
        == []
    )


def test_cancel_and_unknown_ids(world: World) -> None:
    h = world.h("acme", "tenant_admin")
    assert world.client.get("/v1/exports/exp_nope", headers=h).status_code == 404
    assert world.client.delete("/v1/exports/exp_nope", headers=h).status_code == 404
    _fill(world, 4)
    job = _export(world)
    r = world.client.delete(f"/v1/exports/{job['id']}", headers=h)
    assert r.status_code == 409 and "done" in r.text
    alias = world.client.get(f"/v1/logs/export/{job['id']}", headers=h)
    assert alias.status_code == 200 and alias.json()["state"] == "done"


@pytest.mark.sqlite_only  # where the archive goes has nothing to do with the database
def test_an_s3_export_downloads_through_a_short_lived_link(
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    bucket = s3_server.make_bucket("exports")
    settings = make_settings(
        tmp_path,
        export_destination="s3",
        export_s3_bucket=bucket,
        export_s3_endpoint_url=s3_server.endpoint_url,
        export_s3_region=s3_server.region,
        export_s3_access_key_id=s3_server.access_key_id,
        export_s3_secret_access_key="s3cr3t-never-in-a-link",  # moto takes any
        export_s3_sse="AES256",
        export_link_seconds=60,
    )
    keys = seed_keys(settings)
    with TestClient(create_app(settings)) as client:
        world = World(client, settings, keys)
        _fill(world, 12)
        job = _export(world, format="jsonl")
        assert job["request"]["destination"] == "s3"
        r = client.get(
            f"/v1/exports/{job['id']}/download",
            headers=world.h("acme", "auditor"),
            follow_redirects=False,
        )
        assert r.status_code == 307 and r.headers["cache-control"] == "no-store"
        link = r.headers["location"]
        assert link.startswith(s3_server.endpoint_url) and "X-Amz-Expires=60" in link
        assert "s3cr3t" not in link  # signed with the secret, never carrying it
        vkey = _vkey(world)
    data = httpx.get(link, timeout=10)
    assert data.status_code == 200
    archive = tmp_path / "from-s3.zip"
    archive.write_bytes(data.content)
    code, report = _verify(archive, vkey)
    assert code == 0 and report["rows"] == 12, report
    head = s3_server.client().head_object(Bucket=bucket, Key=job_location(settings, job))
    assert head["ServerSideEncryption"] == "AES256"


def job_location(settings: Any, job: dict[str, Any]) -> str:
    return f"{settings.export_s3_prefix}acme/{job['id']}/{job['archive']['name']}"


@pytest.mark.sqlite_only
def test_an_unreachable_bucket_is_a_503_at_request_time(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = make_settings(
        tmp_path,
        export_s3_bucket="exports",
        export_s3_endpoint_url=f"http://127.0.0.1:{port}",
        export_s3_access_key_id="id",
        export_s3_secret_access_key="s3cr3t",
        export_s3_timeout_seconds=1,
    )
    keys = seed_keys(settings)
    with TestClient(create_app(settings)) as client:
        world = World(client, settings, keys)
        world.post("acme", event())
        h = world.h("acme", "tenant_admin")
        r = client.post("/v1/exports", json={"destination": "s3"}, headers=h)
        assert r.status_code == 503, r.text
        assert "unreachable" in r.text and "s3cr3t" not in r.text
        assert client.get("/v1/exports", headers=h).json()["data"] == []


def test_an_export_masks_what_the_role_may_not_read(world: World, tmp_path: Path) -> None:
    r = world.client.patch(
        "/v1/tenants/acme",
        json={"privacy": {"reveal_to": ["auditor"]}},
        headers=world.h("acme", "tenant_admin"),
    )
    assert r.status_code == 200, r.text
    _fill(world, 8)
    job = _export(world, role="tenant_admin", format="csv")
    assert job["view"] == "masked"
    folder = _download(world, job, tmp_path)
    text = (folder / "events.csv").read_bytes().decode()
    assert EMAIL not in text and "Ada Lovelace" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["actor_email"] for r in rows} == {"a***@example.com"}
    code, report = _verify(folder, _vkey(world))
    assert code == 0 and report["sealed_values_shown"] >= 16, report
