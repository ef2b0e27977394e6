"""Request ids, the one error shape, probes, /docs and the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import World, event, make_settings
from trailkeep.app import create_app
from trailkeep.config import Limits
from trailkeep.events.checks import check_event
from trailkeep.events.parsing import event_from_object, parse_batch

SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
V1_OPERATIONS = {
    ("post", "/v1/events"),
    ("post", "/v1/events/batch"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{event_id}"),
    ("post", "/v1/tenants"),
    ("get", "/v1/tenants"),
    ("get", "/v1/tenants/{tenant_id}"),
    ("patch", "/v1/tenants/{tenant_id}"),
    ("delete", "/v1/tenants/{tenant_id}"),
    ("post", "/v1/tenants/{tenant_id}/api-keys"),
    ("get", "/v1/tenants/{tenant_id}/api-keys"),
    ("delete", "/v1/tenants/{tenant_id}/api-keys/{key_id}"),
}


def assert_error_shape(r: Any) -> dict[str, Any]:
    assert "Traceback" not in r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"code", "message", "details", "request_id"}
    assert isinstance(err["code"], str) and re.fullmatch(r"[a-z_]+", err["code"])
    assert isinstance(err["message"], str) and err["message"]
    assert err["request_id"] == r.headers.get("x-request-id")
    assert r.headers["content-type"].startswith("application/json")
    return err


def _requests(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    writer, reader = world.h("acme", "writer"), world.h("acme", "reader")
    return [
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/docs", {}),
        ("GET", "/v1/events", {"headers": reader}),
        ("POST", "/v1/events", {"headers": writer, "json": event()}),
        ("GET", "/v1/events", {}),  # 401
        ("GET", "/v1/events", {"headers": {"Authorization": "Bearer tk_nope"}}),
        ("GET", "/v1/events/nope", {"headers": reader}),  # 404
        ("GET", "/v1/nowhere", {}),  # 404 route
        ("DELETE", "/v1/events", {"headers": reader}),  # 405
        ("GET", "/v1/events", {"headers": reader, "params": {"limit": 0}}),  # 422
        ("POST", "/v1/events", {"headers": writer, "content": b"{"}),  # 400
        ("POST", "/v1/events", {"headers": reader, "json": event()}),  # 403
    ]


def test_every_response_carries_a_request_id(world: World) -> None:
    seen = set()
    for method, path, kwargs in _requests(world):
        r = world.client.request(method, path, **kwargs)
        rid = r.headers.get("x-request-id")
        assert rid and SANE_ID.match(rid), (method, path, r.status_code)
        if r.status_code >= 400:
            assert_error_shape(r)
        seen.add(rid)
    assert len(seen) == len(_requests(world)), "generated request ids must be unique"


@pytest.mark.parametrize("supplied", ["req-1", "a.b:c_D-9", "x" * 128, "01J0ABCDEF"])
def test_sane_client_request_id_is_echoed(world: World, supplied: str) -> None:
    r = world.client.get("/healthz", headers={"X-Request-ID": supplied})
    assert r.headers["x-request-id"] == supplied
    r = world.client.get(
        "/v1/events/missing", headers={**world.h("acme", "reader"), "X-Request-ID": supplied}
    )
    assert r.status_code == 404
    assert assert_error_shape(r)["request_id"] == supplied


@pytest.mark.parametrize(
    "supplied", ["has spaces", "x" * 500, "x" * 129, "a/b", "<script>", "", "tab\there"]
)
def test_insane_client_request_id_is_replaced(world: World, supplied: str) -> None:
    for path in ("/healthz", "/v1/nowhere"):
        r = world.client.get(path, headers={"X-Request-ID": supplied})
        rid = r.headers["x-request-id"]
        assert rid != supplied and SANE_ID.match(rid)
        if r.status_code >= 400:
            assert assert_error_shape(r)["request_id"] == rid


def test_unknown_route_is_404_in_error_shape(world: World) -> None:
    for path in ("/nope", "/v1/nothing/here", "/v2/events"):
        r = world.client.get(path, headers=world.h("acme", "reader"))
        assert r.status_code == 404
        assert assert_error_shape(r)["code"] == "not_found"


def test_wrong_method_is_405_in_error_shape(world: World) -> None:
    for method, path in (
        ("DELETE", "/v1/events"),
        ("PUT", "/v1/events/batch"),
        ("POST", "/healthz"),
        ("PATCH", "/v1/events/x"),
    ):
        r = world.client.request(method, path, headers=world.h("acme", "tenant_admin"))
        assert r.status_code == 405, (method, path)
        assert assert_error_shape(r)["code"] == "method_not_allowed"
        assert r.headers.get("allow")


def test_probes(world: World) -> None:
    r = world.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = world.client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    indexer = r.json()["indexer"]
    assert indexer["running"] is True and indexer["skipped"] == 0 and indexer["errors"] == 0
    assert indexer["events"] >= 0


def test_docs_page(world: World) -> None:
    r = world.client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "swagger" in r.text.lower() and "/openapi.json" in r.text


@pytest.fixture
def spec(world: World) -> dict[str, Any]:
    r = world.client.get("/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, op


def test_openapi_lists_every_v1_endpoint(world: World, spec: dict[str, Any]) -> None:
    documented = {(m, p) for m, p, _ in _operations(spec) if p.startswith("/v1/")}
    assert documented >= V1_OPERATIONS
    assert {"/healthz", "/readyz"} <= set(spec["paths"])
    # Every documented operation is really served (and asks for credentials).
    for method, path in documented:
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        r = world.client.request(method.upper(), concrete)
        assert r.status_code == 401, (method, path, r.status_code)
        assert assert_error_shape(r)["code"] == "unauthenticated"


@pytest.mark.sqlite_only  # the document alone: the backend plays no part in it
def test_every_operation_has_a_summary(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        assert op.get("summary", "").strip(), (method, path)


def _resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    name = ref.removeprefix("#/components/schemas/")
    schemas = spec["components"]["schemas"]
    assert name in schemas, f"dangling $ref {ref}"
    found: dict[str, Any] = schemas[name]
    return found


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.mark.sqlite_only  # the document alone: the backend plays no part in it
def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    refs = set(_refs(spec))
    assert refs
    for ref in refs:
        _resolve(spec, ref)


@pytest.mark.sqlite_only  # the document alone: the backend plays no part in it
def test_ingest_bodies_reference_event_schemas(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert {"EventIn", "BatchIn"} <= set(schemas)
    for path, name in (("/v1/events", "EventIn"), ("/v1/events/batch", "BatchIn")):
        body = spec["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{name}"
        }
    items = schemas["BatchIn"]["properties"]["events"]["items"]
    assert items == {"$ref": "#/components/schemas/EventIn"}
    event_in = schemas["EventIn"]
    assert {"action", "actor"} <= set(event_in["required"])
    assert "additionalProperties" in event_in and event_in["additionalProperties"] is False
    severity = event_in["properties"]["severity"]
    assert set(severity.get("enum", [])) >= {"DEBUG", "INFO", "WARNING", "CRITICAL"}


@pytest.mark.sqlite_only  # the document alone: the backend plays no part in it
def test_schemas_carry_valid_examples(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    examples = schemas["EventIn"].get("examples")
    assert examples
    for example in examples:
        # A documented example must be accepted, also by the checks after decoding.
        assert check_event(event_from_object(example), Limits()) == []
    assert parse_batch(orjson.dumps({"events": examples}), 1000)
    stored = schemas["StoredEvent"].get("examples")
    assert stored
    required = set(schemas["StoredEvent"]["required"])
    for example in stored:
        assert required <= set(example)
    assert schemas["BatchResult"].get("examples")
    created = spec["paths"]["/v1/events"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/StoredEvent")
    page = spec["paths"]["/v1/events"]["get"]["responses"]["200"]
    assert page["content"]["application/json"]["schema"]["$ref"].endswith("/EventPage")


@pytest.mark.sqlite_only  # the document alone: the backend plays no part in it
def test_documented_error_responses_use_error_body(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        if not path.startswith("/v1/"):
            continue
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")) and status != "422":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


# Bad input of every kind: never a 500, never a stack trace, always the error shape.
def _bad_inputs() -> list[tuple[str, str, str, dict[str, Any]]]:
    big = 10**30
    return [
        ("not json", "POST", "/v1/events", {"content": b"{not json"}),
        ("empty body", "POST", "/v1/events", {"content": b""}),
        ("json array", "POST", "/v1/events", {"json": [1, 2]}),
        (
            "wrong type",
            "POST",
            "/v1/events",
            {"content": b"x=1", "headers": {"content-type": "text/plain"}},
        ),
        ("deep nesting", "POST", "/v1/events/batch", {"content": b"[" * 20000}),
        ("huge int", "POST", "/v1/events", {"json": event(metadata={"n": big})}),
        ("nul", "POST", "/v1/events", {"json": event(message="a\x00b")}),
        ("bad ip", "POST", "/v1/events", {"json": event(context={"ip_address": "999.1.1.1"})}),
        ("naive time", "POST", "/v1/events", {"json": event(occurred_at="2026-01-01T00:00:00")}),
        (
            "year 1 with offset",
            "POST",
            "/v1/events",
            {"json": event(occurred_at="0001-01-01T00:00:00+01:00")},
        ),
        (
            "year 9999 with offset",
            "POST",
            "/v1/events",
            {"json": event(occurred_at="9999-12-31T23:59:59-01:00")},
        ),
        (
            "batch year 1 with offset",
            "POST",
            "/v1/events/batch",
            {"json": {"events": [event(occurred_at="0001-01-01T00:30:00+01:00")]}},
        ),
        ("batch envelope wrong", "POST", "/v1/events/batch", {"json": {"items": []}}),
        ("batch item not object", "POST", "/v1/events/batch", {"json": {"events": [1, "x"]}}),
        (
            "batch bad item and huge int",
            "POST",
            "/v1/events/batch",
            {
                "content": b'{"events":[{"action":"bad action","actor":{"id":"u"},'
                b'"metadata":{"n":100000000000000000000000000}}]}'
            },
        ),
        (
            "batch bad item and NaN",
            "POST",
            "/v1/events/batch",
            {"content": b'{"events":[{"action":"x","actor":{}, "metadata":{"n":NaN}}]}'},
        ),
        (
            "batch bad item and 1e999",
            "POST",
            "/v1/events/batch",
            {"content": b'{"events":[{"action":"x","actor":{}, "metadata":{"n":1e999}}]}'},
        ),
        # NaN/Infinity are not JSON (RFC 8259); storing them as null would alter the event.
        (
            "NaN",
            "POST",
            "/v1/events",
            {"content": b'{"action":"a","actor":{"id":"u"},"metadata":{"n":NaN}}'},
        ),
        (
            "Infinity",
            "POST",
            "/v1/events",
            {"content": b'{"action":"a","actor":{"id":"u"},"changes":{"after":{"n":-Infinity}}}'},
        ),
        ("list naive time", "GET", "/v1/events", {"params": {"occurred_after": "2026-01-01"}}),
        ("list long cursor", "GET", "/v1/events", {"params": {"cursor": "A" * 5000}}),
        ("list nul in action", "GET", "/v1/events", {"params": {"action": "a\x00*"}}),
        ("tenant bad json", "POST", "/v1/tenants", {"content": b"[", "admin": True}),
        (
            "key bad role",
            "POST",
            "/v1/tenants/acme/api-keys",
            {"json": {"role": "root", "name": "x"}, "admin": True},
        ),
    ]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [pytest.param(m, p, k, id=name) for name, m, p, k in _bad_inputs()],
)
def test_bad_input_is_4xx_without_traceback(
    world: World, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    kwargs = dict(kwargs)
    if kwargs.pop("admin", False):
        headers = dict(world.admin)
    else:
        headers = dict(world.h("acme", "tenant_admin"))
    headers.update(kwargs.pop("headers", {}))
    r = world.client.request(method, path, headers=headers, **kwargs)
    assert "Traceback" not in r.text
    if path.endswith("/batch") and r.status_code == 200:
        # A batch may answer item by item instead: then every item must be rejected.
        body = r.json()
        assert body["created"] == 0 and body["rejected"] == len(body["results"]) > 0
        for item in body["results"]:
            assert item["status"] == "rejected" and 400 <= item["error"]["status"] < 500
        return
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert_error_shape(r)


def test_batch_item_verdict_does_not_depend_on_its_neighbours(world: World) -> None:
    """An item rejected alone must be rejected next to an invalid item too (and vice versa)."""
    too_big = b'{"action":"a","actor":{"id":"u"},"metadata":{"n":100000000000000000000000000}}'
    invalid = b'{"action":"bad action","actor":{"id":"u"}}'
    headers = {**world.h("acme", "writer"), "content-type": "application/json"}
    alone = world.client.post(
        "/v1/events/batch", content=b'{"events":[' + too_big + b"]}", headers=headers
    )
    assert alone.status_code == 200
    assert alone.json()["results"][0]["status"] == "rejected"
    mixed = world.client.post(
        "/v1/events/batch",
        content=b'{"events":[' + too_big + b"," + invalid + b"]}",
        headers=headers,
    )
    assert mixed.status_code == 200
    assert [i["status"] for i in mixed.json()["results"]] == ["rejected", "rejected"]
    assert world.all_events("acme") == []


@pytest.fixture
def crashing_client(tmp_path: Path) -> Iterator[TestClient]:
    """The real app plus one endpoint with a bug in it (an unexpected exception)."""
    app = create_app(make_settings(tmp_path))

    @app.get("/_test/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_unexpected_error_is_500_without_internals(crashing_client: TestClient) -> None:
    r = crashing_client.get("/_test/boom")
    assert r.status_code == 500
    assert "Traceback" not in r.text and "secret internals" not in r.text
    assert r.json()["error"]["code"] == "internal_error"


def test_unexpected_error_still_carries_the_request_id(crashing_client: TestClient) -> None:
    r = crashing_client.get("/_test/boom", headers={"X-Request-ID": "crash-1"})
    assert r.status_code == 500
    assert r.headers.get("x-request-id") == "crash-1"
    assert_error_shape(r)


@pytest.mark.parametrize(
    "params",
    [
        {"occurred_after": "0001-01-01T00:00:00+01:00"},
        {"occurred_before": "9999-12-31T23:59:59-01:00"},
    ],
)
def test_extreme_but_valid_time_filters_are_answered(world: World, params: dict[str, str]) -> None:
    """Filters at the edges of the calendar are valid filters, not server errors."""
    world.post("acme", {"action": "a.b", "actor": {"id": "u"}})
    r = world.client.get("/v1/events", params=params, headers=world.h("acme", "reader"))
    assert r.status_code == 200, r.text
    assert [e["tenant_id"] for e in r.json()["data"]] == ["acme"]


def _has_example(spec: dict[str, Any], node: Any) -> bool:
    """An example on this schema/media object, or on a schema it references."""
    if isinstance(node, dict):
        if "example" in node or "examples" in node:
            return True
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            return _has_example(spec, spec["components"]["schemas"][ref.rsplit("/", 1)[1]])
        return any(_has_example(spec, value) for key, value in node.items() if key != "$ref")
    if isinstance(node, list):
        return any(_has_example(spec, item) for item in node)
    return False


@pytest.mark.sqlite_only  # the document alone: the backend plays no part in it
def test_every_operation_documents_an_example(spec: dict[str, Any]) -> None:
    missing = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            ok_responses = {
                code: r
                for code, r in operation.get("responses", {}).items()
                if code.startswith("2")
            }
            documented = _has_example(spec, operation.get("requestBody")) or any(
                _has_example(spec, r.get("content")) for r in ok_responses.values()
            )
            no_body = all("content" not in r for r in ok_responses.values())
            if not documented and not no_body:
                missing.append(f"{method.upper()} {path}")
    assert not missing, f"operations without an example: {missing}"
