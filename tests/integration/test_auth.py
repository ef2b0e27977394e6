"""Authentication and authorisation: API keys, roles, tenant isolation, JWT (HS256, RS256)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from tests.conftest import GLOBEX_SECRET, World, auth, event, make_settings, seed_keys
from trailkeep.app import create_app

HS_SECRET = "hs256-test-secret-" + "x" * 64


def assert_401(r: Any, words: str | None = None) -> None:
    assert r.status_code == 401, r.text
    assert r.headers.get("www-authenticate") == "Bearer"
    err = r.json()["error"]
    assert err["code"] == "unauthenticated"
    assert set(err) == {"code", "message", "details", "request_id"}
    if words is not None:
        assert words in err["message"], err["message"]


def key_id(token: str) -> str:
    return token.split("_")[1]


# -- API keys -----------------------------------------------------------------------------


def test_no_credentials_is_401_with_www_authenticate(world: World) -> None:
    for method, path in [("GET", "/v1/events"), ("POST", "/v1/events"), ("GET", "/v1/tenants")]:
        r = world.client.request(method, path, json=event())
        assert_401(r, "missing credentials")
    assert_401(world.client.get("/v1/events", headers={"Authorization": "Bearer "}))
    basic = {"Authorization": "Basic " + base64.b64encode(b"acme:pw").decode()}
    assert_401(world.client.get("/v1/events", headers=basic))
    assert world.all_events("acme") == []


@pytest.mark.parametrize(
    "token",
    [
        "tk_",
        "tk_nothex0000000000_" + "a" * 43,
        "tk_0123456789abcdef_short",
        "tk_0123456789abcdef_" + "a" * 43 + "!",
        "tk_0123456789ABCDEF_" + "a" * 43,
        "tk_0123456789abcdef",
    ],
)
def test_malformed_key_is_401(world: World, token: str) -> None:
    assert_401(world.client.get("/v1/events", headers=auth(token)), "malformed")


def test_unknown_key_and_wrong_secret_are_401(world: World) -> None:
    assert_401(world.client.get("/v1/events", headers=auth("tk_0123456789abcdef_" + "a" * 43)))
    real = world.keys["acme"]["reader"]
    forged = f"tk_{key_id(real)}_{'B' * 43}"
    assert forged != real
    r = world.client.get("/v1/events", headers=auth(forged))
    assert_401(r, "unknown API key")
    r = world.client.post("/v1/events", json=event(), headers=auth(forged))
    assert_401(r)
    assert world.list("acme").status_code == 200  # the real key still works


def test_non_key_token_without_jwt_configured_is_401(world: World) -> None:
    assert_401(world.client.get("/v1/events", headers=auth("eyJhbGciOi.x.y")), "not enabled")


def test_revoked_key_is_401(world: World) -> None:
    writer = world.keys["acme"]["writer"]
    assert world.post("acme", event(id="before")).status_code == 201
    r = world.client.delete(
        f"/v1/tenants/acme/api-keys/{key_id(writer)}", headers=world.h("acme", "tenant_admin")
    )
    assert r.status_code == 204, r.text
    assert_401(world.post("acme", event(id="after")), "revoked")
    assert_401(world.client.get("/v1/events", headers={"X-API-Key": writer}), "revoked")
    assert [e["id"] for e in world.all_events("acme")] == ["before"]


def test_writer_cannot_read(world: World) -> None:
    stored = world.post("acme", event()).json()
    w = world.h("acme", "writer")
    for path in ("/v1/events", f"/v1/events/{stored['id']}", "/v1/tenants/acme"):
        r = world.client.get(path, headers=w)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "forbidden"
        assert stored["id"] not in r.text


def test_reader_cannot_ingest(world: World) -> None:
    r = world.client.post("/v1/events", json=event(), headers=world.h("acme", "reader"))
    assert r.status_code == 403
    r = world.client.post(
        "/v1/events/batch", json={"events": [event()]}, headers=world.h("acme", "reader")
    )
    assert r.status_code == 403
    assert world.all_events("acme") == []


def test_tenant_admin_can_ingest_and_read(world: World) -> None:
    h = world.h("acme", "tenant_admin")
    r = world.client.post("/v1/events", json=event(id="ta-1"), headers=h)
    assert r.status_code == 201, r.text
    r = world.client.post("/v1/events/batch", json={"events": [event(id="ta-2")]}, headers=h)
    assert r.status_code == 200 and r.json()["created"] == 1
    assert world.client.get("/v1/events/ta-1", headers=h).json()["id"] == "ta-1"
    listed = world.client.get("/v1/events", headers=h).json()["data"]
    assert sorted(e["id"] for e in listed) == ["ta-1", "ta-2"]


def test_other_tenants_event_is_404_like_an_unknown_id(world: World) -> None:
    world.post("acme", event(id="mine"))
    seen: list[str] = []
    for role in ("reader", "tenant_admin"):
        h = world.h("acme", role)
        theirs = world.client.get("/v1/events/globex-0", headers=h)
        unknown = world.client.get("/v1/events/no-such-0", headers=h)
        assert theirs.status_code == unknown.status_code == 404
        a, b = theirs.json()["error"], unknown.json()["error"]
        assert a["code"] == b["code"] == "not_found"
        assert a["details"] == b["details"]
        assert a["message"].replace("globex-0", "X") == b["message"].replace("no-such-0", "X")
        assert set(theirs.headers) == set(unknown.headers)
        seen += [theirs.text, unknown.text]
    # nothing of globex reaches acme through searches either
    for params in (
        {"actor_id": "g0"},
        {"target_type": "document", "target_id": "shared-doc"},
        {"action": "secret.read"},
        {"action": "secret.*"},
        {},
    ):
        r = world.list("acme", **params)
        assert r.status_code == 200
        seen.append(r.text)
        assert all(e["tenant_id"] == "acme" for e in r.json()["data"])
    assert not any(GLOBEX_SECRET in text for text in seen)


def test_tenant_credential_naming_another_tenant_is_403(world: World) -> None:
    for role in ("reader", "tenant_admin"):
        h = world.h("acme", role)
        for path in ("/v1/events", "/v1/events/globex-0"):
            r = world.client.get(path, params={"tenant_id": "globex"}, headers=h)
            assert r.status_code == 403, r.text
            assert GLOBEX_SECRET not in r.text and "globex-1" not in r.text
    r = world.client.get(
        "/v1/events", params={"tenant_id": "acme"}, headers=world.h("acme", "reader")
    )
    assert r.status_code == 200


def test_platform_admin_must_name_a_tenant_to_read(world: World) -> None:
    world.post("acme", event(id="a-1"))
    r = world.client.get("/v1/events", headers=world.admin)
    assert r.status_code == 400
    assert r.json()["error"]["details"] == {"field": "tenant_id"}
    assert world.client.get("/v1/events/globex-0", headers=world.admin).status_code == 400
    r = world.client.get("/v1/events", params={"tenant_id": "globex"}, headers=world.admin)
    assert r.status_code == 200
    assert sorted(e["id"] for e in r.json()["data"]) == world.globex_ids
    r = world.client.get("/v1/events", params={"tenant_id": "acme"}, headers=world.admin)
    assert [e["id"] for e in r.json()["data"]] == ["a-1"]
    r = world.client.get("/v1/events/globex-0", params={"tenant_id": "globex"}, headers=world.admin)
    assert r.status_code == 200 and r.json()["message"] == GLOBEX_SECRET
    r = world.client.get("/v1/events/globex-0", params={"tenant_id": "acme"}, headers=world.admin)
    assert r.status_code == 404


def test_x_api_key_header_works(world: World) -> None:
    r = world.client.post(
        "/v1/events", json=event(id="xk"), headers={"X-API-Key": world.keys["acme"]["writer"]}
    )
    assert r.status_code == 201, r.text
    r = world.client.get("/v1/events", headers={"X-API-Key": world.keys["acme"]["reader"]})
    assert [e["id"] for e in r.json()["data"]] == ["xk"]
    assert_401(world.client.get("/v1/events", headers={"X-API-Key": "tk_bogus"}))


# -- JWT ------------------------------------------------------------------------------------


@contextmanager
def serve(tmp_path: Path, **overrides: Any) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    settings = make_settings(tmp_path, **overrides)
    keys = seed_keys(settings)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, keys


def claims(**extra: Any) -> dict[str, Any]:
    base = {"sub": "alice", "tenant_id": "acme", "roles": ["writer", "reader"]}
    # Params are built at collection time, which may be many minutes before the test runs.
    base["exp"] = int(time.time()) + 86_400
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hs(payload: dict[str, Any], secret: str = HS_SECRET) -> dict[str, str]:
    return bearer(jwt.encode(payload, secret, algorithm="HS256"))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.fixture
def hs_client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    with serve(tmp_path, jwt_hs256_secret=HS_SECRET) as pair:
        yield pair


def test_hs256_token_with_role_list(hs_client: tuple[TestClient, Any]) -> None:
    client, _ = hs_client
    r = client.post("/v1/events", json=event(id="j1"), headers=hs(claims()))
    assert r.status_code == 201, r.text
    assert r.json()["tenant_id"] == "acme"
    r = client.get("/v1/events", headers=hs(claims()))
    assert [e["id"] for e in r.json()["data"]] == ["j1"]


def test_hs256_token_with_space_separated_roles(hs_client: tuple[TestClient, Any]) -> None:
    client, _ = hs_client
    both = hs(claims(roles="reader writer"))
    assert client.post("/v1/events", json=event(id="j2"), headers=both).status_code == 201
    assert client.get("/v1/events/j2", headers=both).status_code == 200
    reader = hs(claims(roles="reader"))
    assert client.post("/v1/events", json=event(), headers=reader).status_code == 403
    writer = hs(claims(roles=["writer"]))
    assert client.get("/v1/events", headers=writer).status_code == 403
    r = client.get("/v1/events", params={"tenant_id": "globex"}, headers=both)
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (claims(exp=int(time.time()) - 60), "expired"),
        (claims(exp=None), "exp"),
        (claims(tenant_id=None), "tenant"),
        (claims(roles=["superuser", "root"]), "role"),
        (claims(roles=[]), "role"),
        (claims(roles=""), "role"),
        (claims(roles={"writer": True}), "roles"),
        (claims(tenant_id=["acme"]), "tenant"),
        (claims(tenant_id=""), "tenant"),
        (claims(nbf=int(time.time()) + 3600), "invalid token"),
        (claims(exp="tomorrow"), "invalid token"),
        # RFC 7519: exp, nbf and iat are NumericDates (JSON numbers), never strings,
        # even strings of digits that int() would read.
        (claims(exp=str(int(time.time()) + 86_400)), "claim 'exp' must be a NumericDate"),
        (claims(exp=f"{int(time.time()) + 86_400}.5"), "invalid token"),
        (claims(nbf=str(int(time.time()) - 60)), "claim 'nbf' must be a NumericDate"),
        (claims(iat=str(int(time.time()) - 60)), "claim 'iat' must be a NumericDate"),
        (claims(iat=[int(time.time())]), "invalid token"),
    ],
)
def test_hs256_bad_claims_are_401(
    hs_client: tuple[TestClient, Any], payload: dict[str, Any], words: str
) -> None:
    client, _ = hs_client
    assert_401(client.post("/v1/events", json=event(), headers=hs(payload)), words)
    assert_401(client.get("/v1/events", headers=hs(payload)))


def test_numeric_dates_may_be_integers_or_fractions(hs_client: tuple[TestClient, Any]) -> None:
    client, _ = hs_client
    now = time.time()
    token = hs(claims(exp=now + 86_400.25, nbf=int(now) - 60, iat=now - 1.5))
    assert client.get("/v1/events", headers=token).status_code == 200


def test_expired_token_says_expired(hs_client: tuple[TestClient, Any]) -> None:
    client, _ = hs_client
    r = client.get("/v1/events", headers=hs(claims(exp=int(time.time()) - 5)))
    assert_401(r, "expired")


def test_forged_or_tampered_hs256_is_401(hs_client: tuple[TestClient, Any]) -> None:
    client, keys = hs_client
    assert_401(client.get("/v1/events", headers=hs(claims(), secret="not-the-secret" * 4)))
    good = jwt.encode(claims(), HS_SECRET, algorithm="HS256")
    head, _, sig = good.split(".")
    tampered = f"{head}.{_b64(claims(tenant_id='globex'))}.{sig}"
    assert_401(client.get("/v1/events", headers=bearer(tampered)), "invalid token")
    other_alg = jwt.encode(claims(), HS_SECRET, algorithm="HS512")
    assert_401(client.get("/v1/events", headers=bearer(other_alg)), "not accepted")
    assert_401(client.get("/v1/events", headers=bearer("garbage.token.here")))
    # API keys keep working next to JWTs
    assert client.get("/v1/events", headers=auth(keys["acme"]["reader"])).status_code == 200


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_token_is_401(hs_client: tuple[TestClient, Any], alg: str) -> None:
    client, _ = hs_client
    unsigned = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims(roles=['admin']))}."
    assert_401(client.get("/v1/events", params={"tenant_id": "acme"}, headers=bearer(unsigned)))
    assert_401(client.post("/v1/events", json=event(), headers=bearer(unsigned)))


def test_admin_role_token_reads_any_tenant_by_name(hs_client: tuple[TestClient, Any]) -> None:
    client, keys = hs_client
    r = client.post("/v1/events", json=event(id="g-1"), headers=auth(keys["globex"]["writer"]))
    assert r.status_code == 201
    admin = hs(claims(tenant_id=None, roles=["admin"]))
    r = client.get("/v1/events", headers=admin)
    assert r.status_code == 400
    r = client.get("/v1/events", params={"tenant_id": "globex"}, headers=admin)
    assert r.status_code == 200 and [e["id"] for e in r.json()["data"]] == ["g-1"]
    r = client.get("/v1/events", params={"tenant_id": "acme"}, headers=admin)
    assert r.status_code == 200 and r.json()["data"] == []


# -- RS256 / JWKS ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[Any, Any]:
    make = rsa.generate_private_key
    return make(public_exponent=65537, key_size=2048), make(public_exponent=65537, key_size=2048)


def jwks_for(private_key: Any, kid: str = "k1") -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}


def rs(payload: dict[str, Any], key: Any, kid: str | None = "k1") -> dict[str, str]:
    headers = {"kid": kid} if kid else None
    return bearer(jwt.encode(payload, key, algorithm="RS256", headers=headers))


def _check_rs256(client: TestClient, good: Any, other: Any) -> None:
    r = client.post("/v1/events", json=event(id="rs-1"), headers=rs(claims(), good))
    assert r.status_code == 201, r.text
    r = client.get("/v1/events", headers=rs(claims(), good))
    assert r.status_code == 200 and [e["id"] for e in r.json()["data"]] == ["rs-1"]
    assert_401(client.get("/v1/events", headers=rs(claims(), other)))
    assert_401(client.get("/v1/events", headers=rs(claims(), other, kid="k2")))
    assert_401(client.get("/v1/events", headers=rs(claims(exp=int(time.time()) - 9), good)))
    assert_401(client.get("/v1/events", headers=hs(claims())), "not accepted")
    # algorithm confusion: HS256 "signed" with the RSA public key as the shared secret
    pem = good.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'})}.{_b64(claims())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    confused = signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    assert_401(client.post("/v1/events", json=event(), headers=bearer(confused)))
    assert [
        e["id"] for e in client.get("/v1/events", headers=rs(claims(), good)).json()["data"]
    ] == ["rs-1"]


def test_rs256_with_jwks_file(tmp_path: Path, rsa_keys: tuple[Any, Any]) -> None:
    good, other = rsa_keys
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_for(good)))
    with serve(tmp_path / "data", jwt_jwks_file=path) as (client, _):
        _check_rs256(client, good, other)
        r = client.get("/v1/events", headers=rs(claims(), good, kid=None))
        assert r.status_code == 200


@contextmanager
def jwks_server(document: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    body = json.dumps(document).encode()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for serve_forever to look up from its poll: 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_rs256_with_jwks_url(tmp_path: Path, rsa_keys: tuple[Any, Any]) -> None:
    good, other = rsa_keys
    with jwks_server(jwks_for(good)) as (url, hits):
        with serve(tmp_path, jwt_jwks_url=url) as (client, _):
            _check_rs256(client, good, other)
        assert hits and all(p == "/.well-known/jwks.json" for p in hits)


def test_unreachable_jwks_url_refuses_cleanly(tmp_path: Path, rsa_keys: tuple[Any, Any]) -> None:
    good, _ = rsa_keys
    with jwks_server(jwks_for(good)) as (url, _hits):
        pass  # closed again: nothing listens on that port any more
    with serve(tmp_path, jwt_jwks_url=url) as (client, keys):
        r = client.get("/v1/events", headers=rs(claims(), good))
        assert r.status_code in (401, 503), r.text
        assert set(r.json()["error"]) == {"code", "message", "details", "request_id"}
        assert client.get("/v1/events", headers=auth(keys["acme"]["reader"])).status_code == 200
