"""Privacy through the API, on both backends, with a second tenant present: redaction at
ingest, sealed personal fields, masking by role, blind-index search, erasure that keeps
every proof valid, subject access reports, and the settings' bad input."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests import backends
from tests.conftest import World, event
from trailkeep.cli import app as cli_app
from trailkeep.kit import merkle
from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.hashing import digest16

CARD = "4111 1111 1111 1111"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "ada.lovelace@example.com"
NAME = "Ada Lovelace"
IP = "203.0.113.9"
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AdaBrowser/7.1"


def personal(actor: str = "u_ada", **extra: Any) -> dict[str, Any]:
    return {
        "action": "document.read",
        "actor": {"id": actor, "name": NAME, "email": EMAIL},
        "context": {"ip_address": IP, "user_agent": AGENT, "request_id": "req-1"},
        **extra,
    }


def normalised_client_document(body: dict[str, Any]) -> dict[str, Any]:
    """What the retry fingerprint covers: the client's fields, defaults filled in."""
    doc = {"targets": [], "outcome": "success", "severity": "INFO", **body}
    doc["actor"] = {"type": "user", **body["actor"]}
    return doc


def raw_database(world: World) -> bytes:
    """Every byte the database holds: the SQLite files, or a PostgreSQL dump."""
    url = world.settings.resolved_database_url
    if url.startswith("sqlite"):
        path = Path(world.settings.database().sqlite_path)
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    assert backends.current_url is not None
    dump = subprocess.run(
        [
            "pg_dump",
            "--data-only",
            backends.current_url.replace("postgresql+psycopg", "postgresql"),
        ],
        capture_output=True,
        check=True,
    )
    return dump.stdout


def stored(world: World, tenant: str = "acme") -> list[bytes]:
    """The tenant's events in the stored form, in seq order (the verifiable export)."""
    out: list[bytes] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"form": "stored", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        r = world.client.get("/v1/events", params=params, headers=world.h(tenant, "auditor"))
        assert r.status_code == 200, r.text
        body = r.json()
        for e in body["data"]:
            got = world.client.get(
                f"/v1/events/{e['id']}",
                params={"form": "stored"},
                headers=world.h(tenant, "reader"),
            )
            out.append(got.content)
        cursor = body["next_cursor"]
        if not cursor:
            return sorted(out, key=lambda b: int(json.loads(b)["seq"]))


def test_default_rules_redact_secrets_before_storing_and_report_paths(world: World) -> None:
    body = personal(
        message=f"paid with {CARD} using token Bearer {JWT}",
        metadata={"card": CARD, "deep": {"aws": AWS_KEY, "note": "fine"}},
        changes={"after": {"token": JWT}},
    )
    r = world.post("acme", body)
    assert r.status_code == 201, r.text
    reported = r.headers["Trailkeep-Redacted"].split(",")
    assert {"message", "metadata.card", "metadata.deep.aws", "changes.after.token"} <= set(reported)
    assert not any(CARD in p or JWT in p for p in reported)
    shown = r.json()
    assert shown["metadata"]["card"] == "****1111" and shown["metadata"]["deep"]["note"] == "fine"
    assert CARD not in r.text and JWT not in r.text and AWS_KEY not in r.text
    # A batch reports per item; an item without secrets reports nothing.
    r = world.client.post(
        "/v1/events/batch",
        json={"events": [event(metadata={"k": AWS_KEY}), event()]},
        headers=world.h("acme", "writer"),
    )
    results = r.json()["results"]
    assert results[0]["redacted"] == ["metadata.k"] and "redacted" not in results[1]
    raw = raw_database(world)
    for secret in (CARD, CARD.replace(" ", ""), JWT, AWS_KEY, EMAIL, NAME, AGENT):
        assert secret.encode() not in raw, secret
    # Nor can the retry fingerprint test a guess of them: it is keyed.
    unkeyed = digest16(canonical_json(normalised_client_document(body)))
    assert unkeyed not in raw and unkeyed.hex().encode() not in raw
    world.assert_globex_untouched()


def test_personal_fields_are_sealed_and_masked_by_role(world: World) -> None:
    r = world.post("acme", personal(id="p1"))
    assert r.status_code == 201
    # The writer's own answer is masked like any non-revealing role's.
    assert r.json()["actor"]["email"] == "a***@example.com"
    stored_body = world.client.get(
        "/v1/events/p1", params={"form": "stored"}, headers=world.h("acme", "reader")
    ).json()
    for sealed in (stored_body["actor"]["email"], stored_body["context"]["ip_address"]):
        assert set(sealed) == {"tk_enc", "ct", "cm", "bi"}
    assert (
        stored_body["subject"]["id"] == "u_ada" and stored_body["context"]["request_id"] == "req-1"
    )
    masked = world.client.get("/v1/events/p1", headers=world.h("acme", "reader")).json()
    assert masked["actor"] == {
        "id": "u_ada",
        "type": "user",
        "name": "A***",
        "email": "a***@example.com",
    }
    assert masked["context"]["ip_address"] == "203.0.113.x"
    assert masked["context"]["user_agent"] == "M***"
    for role in ("auditor", "tenant_admin"):
        shown = world.client.get("/v1/events/p1", headers=world.h("acme", role)).json()
        assert shown["actor"]["email"] == EMAIL and shown["context"]["ip_address"] == IP
        assert shown["actor"]["name"] == NAME and shown["context"]["user_agent"] == AGENT
    page = world.list("acme")
    assert page.status_code == 200 and EMAIL not in page.text and NAME not in page.text
    assert IP not in page.text and AGENT not in page.text
    # The tenant may reveal to readers; then they read it decrypted.
    r = world.client.patch(
        "/v1/tenants/acme",
        json={"privacy": {"reveal_to": ["reader"]}},
        headers=world.h("acme", "tenant_admin"),
    )
    assert r.status_code == 200 and r.json()["privacy"]["reveal_to"] == ["reader"]
    assert (
        world.client.get("/v1/events/p1", headers=world.h("acme", "reader")).json()["actor"][
            "email"
        ]
        == EMAIL
    )
    assert (
        world.client.get("/v1/events/p1", headers=world.h("acme", "auditor")).json()["actor"][
            "email"
        ]
        != EMAIL
    )
    world.assert_globex_untouched()


def test_exact_search_over_sealed_fields_uses_the_blind_index(world: World) -> None:
    world.post("acme", personal(id="a1"))
    world.post(
        "acme", personal("u_bob", id="b1") | {"actor": {"id": "u_bob", "email": "bob@example.com"}}
    )
    world.post("globex", personal(id="g-ada"))  # the same email in the other tenant
    world.globex_ids.append("g-ada")

    def ids(q: str) -> list[str]:
        r = world.client.get("/v1/events", params={"q": q}, headers=world.h("acme", "auditor"))
        assert r.status_code == 200, r.text
        return sorted(e["id"] for e in r.json()["data"])

    assert ids(f"actor.email:{EMAIL}") == ["a1"]
    assert ids("actor.email:bob@example.com") == ["b1"]
    assert ids(f"-actor.email:{EMAIL}") == ["b1"]
    assert ids(f'actor.name:"{NAME}"') == ["a1"]
    assert ids(f"ip:{IP}") == ["a1", "b1"]
    assert ids("Lovelace") == [], "full text never indexes a sealed field"
    for q, field in (("actor.email:ada*", "actor.email"), ("ip:203.0.113.0/24", "ip")):
        r = world.client.get("/v1/events", params={"q": q}, headers=world.h("acme", "reader"))
        assert r.status_code == 400 and r.json()["error"]["details"]["field"] == field, r.text
    r = world.client.get(
        "/v1/stats",
        params={"group_by": "action", "q": f"actor.email:{EMAIL}"},
        headers=world.h("acme", "reader"),
    )
    assert r.status_code == 200 and r.json()["total"] == 1


def _verify(tmp: Path, lines: list[bytes], note: str, vkey: str) -> Any:
    export = tmp / "export.jsonl"
    export.write_bytes(b"".join(line + b"\n" for line in lines))
    checkpoint = tmp / "checkpoint.txt"
    checkpoint.write_text(note)
    return CliRunner().invoke(
        cli_app, ["verify", str(export), "--checkpoint", str(checkpoint), "--key", vkey]
    )


def test_erasure_shreds_one_subject_and_every_proof_still_verifies(
    world: World, tmp_path: Path
) -> None:
    batch = [personal(id=f"ada-{i}") for i in range(30)] + [
        personal("u_bob", id=f"bob-{i}")
        | {"actor": {"id": "u_bob", "name": "Bob", "email": "bob@example.com"}}
        for i in range(10)
    ]
    r = world.client.post(
        "/v1/events/batch", json={"events": batch}, headers=world.h("acme", "writer")
    )
    assert r.json()["created"] == 40
    world.post("globex", personal(id="g-ada"))  # another tenant's u_ada: never touched
    world.globex_ids.append("g-ada")
    deadline = time.monotonic() + 15
    while True:
        cp = world.client.get("/v1/checkpoint", headers=world.h("acme", "reader")).json()
        if cp.get("tree_size") == 40:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    vkey = world.client.get("/v1/integrity/key", headers=world.h("acme", "reader")).json()["vkey"]
    before = stored(world)
    assert _verify(tmp_path, before, cp["note"], vkey).exit_code == 0

    assert (
        world.client.post("/v1/subjects/u_ada/erase", headers=world.h("acme", "reader")).status_code
        == 403
    )
    started = time.perf_counter()
    r = world.client.post("/v1/subjects/u_ada/erase", headers=world.h("acme", "tenant_admin"))
    took = time.perf_counter() - started
    assert r.status_code == 200, r.text
    erased = r.json()
    assert erased["keys_erased"] == 1 and not erased["already_erased"] and took < 1.0
    assert erased["events_affected"] == 30 and erased["counted_through_seq"] >= 40
    again = world.client.post("/v1/subjects/u_ada/erase", headers=world.h("acme", "tenant_admin"))
    assert again.status_code == 200 and again.json()["already_erased"] is True
    assert (
        world.client.post(
            "/v1/subjects/nobody/erase", headers=world.h("acme", "tenant_admin")
        ).status_code
        == 404
    )

    for role in ("reader", "auditor", "tenant_admin"):
        ada = world.client.get("/v1/events/ada-3", headers=world.h("acme", role)).json()
        assert ada["actor"]["email"] == "[erased]" and ada["context"]["ip_address"] == "[erased]"
        assert ada["actor"]["id"] == "u_ada" and ada["context"]["request_id"] == "req-1"
    bob = world.client.get("/v1/events/bob-1", headers=world.h("acme", "auditor")).json()
    assert bob["actor"]["email"] == "bob@example.com"
    g = world.client.get("/v1/events/g-ada", headers=world.h("globex", "tenant_admin")).json()
    assert g["actor"]["email"] == EMAIL, "erasing acme's u_ada left globex's alone"

    raw = raw_database(world)
    for plaintext in (EMAIL, NAME, IP, AGENT):
        assert plaintext.encode() not in raw, plaintext
    # The stored form, its leaves and the proofs are exactly what they were.
    after = stored(world)
    assert after[:40] == before
    assert _verify(tmp_path, after[:40], cp["note"], vkey).exit_code == 0
    r = world.client.get(
        "/v1/events/ada-3/proof", params={"size": 40}, headers=world.h("acme", "reader")
    )
    proof = r.json()
    leaf = merkle.leaf_hash(before[3])
    assert merkle.verify_inclusion(
        leaf,
        3,
        40,
        [base64.b64decode(h) for h in proof["proof"]],
        base64.b64decode(proof["root_hash"]),
    )
    # The erasure is an event of the tenant's log, naming who, which subject, how many.
    log = world.client.get(
        "/v1/events",
        params={"q": "action:trailkeep.subject.erased"},
        headers=world.h("acme", "auditor"),
    ).json()["data"]
    assert len(log) == 1 and log[0]["targets"] == [{"type": "data_subject", "id": "u_ada"}]
    assert log[0]["metadata"]["events_affected"] == 30 and log[0]["actor"]["type"] == "api_key"
    report = world.client.get("/v1/subjects/u_ada", headers=world.h("acme", "auditor")).json()
    assert report["erased"] is True and report["events"] == 30
    # A new event of the subject gets a new key, readable again.
    world.post("acme", personal(id="ada-new"))
    assert (
        world.client.get("/v1/events/ada-new", headers=world.h("acme", "auditor")).json()["actor"][
            "email"
        ]
        == EMAIL
    )


def test_subject_access_report(world: World) -> None:
    for i in range(3):
        world.post("acme", personal(id=f"r{i}", metadata={"phone": "x"}))
    world.post(
        "acme",
        {
            "action": "job.run",
            "id": "s1",
            "subject_id": "person-77",
            "actor": {"id": "svc", "type": "service", "email": "ops@example.com"},
        },
    )
    deadline = time.monotonic() + 15
    while True:  # the counts follow the log: counted_through_seq says how far
        r = world.client.get("/v1/subjects/u_ada", headers=world.h("acme", "auditor"))
        assert r.status_code == 200, r.text
        report = r.json()
        if report["counted_through_seq"] >= 4:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.05)
    assert report["events"] == 3 and report["first_seq"] == 0 and report["last_seq"] == 2
    assert set(report["fields_held"]) == {
        "actor.email",
        "actor.name",
        "context.ip_address",
        "context.user_agent",
    }
    assert report["erased"] is False and len(report["keys"]) == 1
    explicit = world.client.get(
        "/v1/subjects/person-77", headers=world.h("acme", "tenant_admin")
    ).json()
    assert explicit["events"] == 1 and explicit["fields_held"] == ["actor.email"]
    assert (
        world.client.get("/v1/subjects/u_ada", headers=world.h("acme", "writer")).status_code == 403
    )
    assert (
        world.client.get("/v1/subjects/g0", headers=world.h("acme", "auditor")).status_code == 404
    )


@pytest.mark.parametrize(
    ("privacy", "needle"),
    [
        ({"redaction": [{"path": "action", "action": "drop"}]}, "rule 0"),
        ({"redaction": [{"path": "metadata..x", "action": "drop"}]}, "rule 0"),
        ({"redaction": [{"pattern": "(unclosed", "action": "drop"}]}, "rule 0"),
        ({"redaction": [{"pattern": "a", "detector": "card", "action": "drop"}]}, "one of"),
        ({"redaction": [{"detector": "dna", "action": "drop"}]}, "detector"),
        ({"encrypt": ["actor.id"]}, "cannot be encrypted"),
        ({"reveal_to": ["admin"]}, "reveal_to"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_privacy_settings_are_422_naming_the_problem(
    world: World, privacy: dict[str, Any], needle: str
) -> None:
    r = world.client.patch("/v1/tenants/acme", json={"privacy": privacy}, headers=world.admin)
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert (
        world.client.get("/v1/tenants/acme", headers=world.admin).json()["privacy"]["encrypt"][0]
        == "actor.name"
    )


def test_custom_rules_and_catastrophic_patterns_are_safe(world: World) -> None:
    rules = {
        "redaction": [
            {"pattern": "(a+)+$", "action": "drop"},
            {"path": "metadata.*.password", "action": "hmac"},
        ]
    }
    r = world.client.patch(
        "/v1/tenants/acme", json={"privacy": rules}, headers=world.h("acme", "tenant_admin")
    )
    assert r.status_code == 200, r.text
    assert (
        world.client.patch(
            "/v1/tenants/acme", json={"display_name": "x"}, headers=world.h("acme", "tenant_admin")
        ).status_code
        == 403
    )
    started = time.perf_counter()
    r = world.post(
        "acme",
        event(
            id="c1",
            message="a" * 8000 + "!",
            metadata={"u": {"password": "hunter22"}, "v": {"password": "hunter22"}},
        ),
    )
    assert r.status_code == 201 and time.perf_counter() - started < 2
    got = world.client.get(
        "/v1/events/c1", params={"form": "stored"}, headers=world.h("acme", "reader")
    ).json()
    assert got["metadata"]["u"]["password"] == got["metadata"]["v"]["password"]
    assert got["metadata"]["u"]["password"].startswith("hmac:") and "hunter22" not in str(got)
    # The tenant's rules replaced the defaults: a card number is kept now.
    r = world.post("acme", event(id="c2", metadata={"card": CARD}))
    assert r.json()["metadata"]["card"] == CARD


def test_a_reader_never_sees_plaintext_personal_fields_on_any_endpoint(world: World) -> None:
    world.post("acme", personal(id="p1"))
    world.post("acme", personal(id="p2", metadata={"note": "plain"}))
    values = {"event_id": "p1", "tenant_id": "acme", "subject_id": "u_ada", "key_id": "x"}
    params = {"group_by": "actor", "from": 0, "size": 2}
    seen = 0
    for path, operations in world.client.get("/openapi.json").json()["paths"].items():
        if "get" not in operations or "{" in path.replace("{event_id}", "").replace(
            "{tenant_id}", ""
        ).replace("{subject_id}", ""):
            continue
        url = path.format(**values)
        for role in ("reader", "writer"):
            r = world.client.get(url, params=params, headers=world.h("acme", role))
            for secret in (EMAIL, NAME, IP, AGENT, "Lovelace"):
                assert secret not in r.text, (url, role, secret)
            seen += r.status_code == 200
    assert seen >= 8, "the walk must reach the reading endpoints"
    r = world.client.get("/v1/events/p1", headers=world.h("acme", "reader"))
    assert r.status_code == 200 and r.json()["actor"]["email"] == "a***@example.com"
