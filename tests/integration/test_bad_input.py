"""Hostile and malformed input: always a clear 4xx in the one error shape, never a 500,
and never a change to what is stored."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import World, event

JSON = {"content-type": "application/json"}
TEN_MB = 10 * 1024 * 1024
MALFORMED = (
    b'{"action": "a.b", "actor": {"id": "u"}',
    b"{'action': 'a.b'}",
    b'{"action": "a.b",}',
    b"not json at all",
    b'{"action": "a.b", "actor": {"id": "u"}} trailing',
)
SURROGATES = (
    b'"message": "\\ud800"',
    b'"message": "x\\udfffy"',
    b'"metadata": {"\\ud800": 1}',
    b'"metadata": {"k": ["\\udc00"]}',
)
SQLISH = ("'; DROP TABLE events; --", "1 OR 1=1", 'x" OR ""="', "a'); DELETE FROM events; --")


def ev(**fields: Any) -> dict[str, Any]:
    """A valid event, with ``fields`` replacing or adding whole fields (actor included)."""
    return {"action": "a.b", "actor": {"id": "u"}, **fields}


def assert_error(r: Any, status: int, loc: list[Any] | None = None) -> dict[str, Any]:
    """The response is ``status`` with the one error shape; ``loc`` is named in details."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details", "request_id"}, err
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert err["request_id"] and err["request_id"] == r.headers.get("x-request-id")
    assert "Traceback" not in r.text
    if loc is not None:
        got = [d["loc"] for d in err["details"]]
        assert loc in got, f"{loc} not named in {got}"
    return err


def post_raw(world: World, body: bytes, path: str = "/v1/events", **headers: str) -> Any:
    hdrs = {**world.h("acme", "writer"), **JSON, **headers}
    return world.client.post(path, content=body, headers=hdrs)


def assert_nothing_stored(world: World) -> None:
    assert world.all_events("acme") == []


# -- body syntax ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_malformed_json_is_400(world: World, path: str) -> None:
    for body in MALFORMED:
        err = assert_error(post_raw(world, body, path), 400)
        assert err["code"] == "bad_request"
    assert_nothing_stored(world)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_json_that_is_not_an_object_is_422(world: World, path: str) -> None:
    for body in (b"[1, 2]", b"null", b'"event"', b"42", b"true", b"[]"):
        assert_error(post_raw(world, body, path), 422)
    assert_nothing_stored(world)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_empty_body_is_400(world: World, path: str) -> None:
    assert_error(post_raw(world, b"", path), 400)
    assert_nothing_stored(world)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_wrong_content_type_is_415(world: World, path: str) -> None:
    body = b'{"action": "a.b", "actor": {"id": "u"}}'
    if path.endswith("batch"):
        body = b'{"events": [' + body + b"]}"
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "text/xml"):
        err = assert_error(post_raw(world, body, path, **{"content-type": ctype}), 415)
        assert err["code"] == "unsupported_media_type"
    assert_nothing_stored(world)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_invalid_content_length_is_400(world: World, path: str) -> None:
    body = b'{"action": "a.b", "actor": {"id": "u"}}'
    for length in ("abc", "-1", "1.5", "0x10", "1e3", " "):
        assert_error(post_raw(world, body, path, **{"content-length": length}), 400)
    assert_nothing_stored(world)


_SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http"}


async def _asgi_post(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """One request straight through the app's ASGI interface, with raw header bytes."""
    scope = {**_SCOPE, "method": "POST", "path": path, "raw_path": path.encode()}
    scope.update(query_string=b"", root_path="", headers=headers, server=("testserver", 80))
    inbox = [{"type": "http.request", "body": body, "more_body": False}]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop() if inbox else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    with contextlib.suppress(Exception):  # the error middleware re-raises after its 500
        await app(scope, receive, send)
    return statuses[0]


@pytest.mark.parametrize("length", [b"\xb2", b"1\xb2"])  # '²': str.isdigit() says yes
def test_non_ascii_digit_content_length_is_400(world: World, length: bytes) -> None:
    token = world.h("acme", "writer")["Authorization"].encode()
    headers = [
        (b"authorization", token),
        (b"content-type", b"application/json"),
        (b"content-length", length),
    ]
    status = world.client.portal.call(
        _asgi_post, world.client.app, "/v1/events", headers, b'{"action":"a.b","actor":{"id":"u"}}'
    )
    assert status == 400
    assert_nothing_stored(world)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_ten_megabyte_body_is_413(world: World, path: str) -> None:
    body = b'{"events": [{"message": "' + b"x" * TEN_MB + b'"}]}'
    err = assert_error(post_raw(world, body, path), 413)
    assert err["code"] == "payload_too_large"
    assert_nothing_stored(world)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_ten_megabyte_chunked_body_is_413(world: World, path: str) -> None:
    """Without a Content-Length the cap applies while streaming."""
    chunk = b" " * (1024 * 1024)

    def stream() -> Any:
        yield b'{"events": ['
        for _ in range(10):
            yield chunk
        yield b"]}"

    r = world.client.post(path, content=stream(), headers={**world.h("acme", "writer"), **JSON})
    assert "content-length" not in r.request.headers
    assert_error(r, 413)
    assert_nothing_stored(world)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_invalid_utf8_is_400(world: World, path: str) -> None:
    one = b'{"action": "a.b", "actor": {"id": "u\xff\xfe"}, "message": "caf\xc3"}'
    body = one if path == "/v1/events" else b'{"events": [' + one + b"]}"
    assert_error(post_raw(world, body, path), 400)
    assert_nothing_stored(world)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_lone_surrogates_are_400(world: World, path: str) -> None:
    for fragment in SURROGATES:
        one = b'{"action": "a.b", "actor": {"id": "u"}, ' + fragment + b"}"
        body = one if path == "/v1/events" else b'{"events": [' + one + b"]}"
        assert_error(post_raw(world, body, path), 400)
    assert_nothing_stored(world)


# -- schema -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"action": 123, "actor": {"id": "u"}}, ["action"]),
        ({"action": "a.b", "actor": "u1"}, ["actor"]),
        ({"action": "a.b", "actor": {"id": 5}}, ["actor", "id"]),
        (event(targets={"type": "doc", "id": "d"}), ["targets"]),
        (event(targets=[{"type": "doc", "id": ["d"]}]), ["targets", 0, "id"]),
        (event(metadata=["not", "an", "object"]), ["metadata"]),
        (event(message={"text": "hi"}), ["message"]),
        (event(context="1.2.3.4"), ["context"]),
        (event(changes={"before": "x"}), ["changes", "before"]),
        (event(occurred_at=True), ["occurred_at"]),
        (event(bogus=1), ["bogus"]),
        (event(Action="a.b"), ["Action"]),
        (ev(actor={"id": "u", "role": "root"}), ["actor", "role"]),
        (event(context={"ip_address": "1.2.3.4", "port": 80}), ["context", "port"]),
        (event(targets=[{"type": "doc", "id": "d", "owner": "x"}]), ["targets", 0, "owner"]),
        (event(changes={"before": {}, "diff": {}}), ["changes", "diff"]),
        ({"actor": {"id": "u"}}, ["action"]),
        ({"action": "a.b"}, ["actor"]),
        (ev(actor={"type": "user"}), ["actor", "id"]),
        (ev(actor={}), ["actor", "id"]),
        (ev(actor={"id": "u", "type": "robot"}), ["actor", "type"]),
        (event(severity="URGENT"), ["severity"]),
        (event(severity=3), ["severity"]),
        (event(outcome="maybe"), ["outcome"]),
        (event(outcome="SUCCESS!"), ["outcome"]),
        (event(context={"ip_address": "999.1.1.1"}), ["context", "ip_address"]),
        (event(context={"ip_address": "localhost"}), ["context", "ip_address"]),
        (event(context={"ip_address": "1.2.3.4; DROP TABLE events"}), ["context", "ip_address"]),
        (event("bad action"), ["action"]),
        (event(resource_type="invoice"), ["resource_id"]),
    ],
)
def test_schema_violations_are_422_naming_the_field(
    world: World, body: dict[str, Any], loc: list[Any]
) -> None:
    err = assert_error(world.post("acme", body), 422, loc)
    assert err["code"] == "validation_error"
    assert_nothing_stored(world)


def test_anonymous_actor_needs_no_id(world: World) -> None:
    r = world.post("acme", {"action": "page.view", "actor": {"type": "anonymous"}})
    assert r.status_code == 201, r.text
    assert r.json()["actor"] == {"type": "anonymous"}
    assert [e["actor"] for e in world.all_events("acme")] == [{"type": "anonymous"}]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (event(message="m" * 8193), ["message"]),
        (event("a" * 129), ["action"]),
        (event("a." * 64 + "b"), ["action"]),
        (event(id="i" * 129), ["id"]),
        (event(actor="u" * 257), ["actor", "id"]),
        (event(targets=[{"type": "doc", "id": "d" * 257}]), ["targets", 0, "id"]),
        (event(targets=[{"type": "doc", "id": str(i)} for i in range(33)]), ["targets"]),
        (event(context={"request_id": "r" * 257}), ["context", "request_id"]),
    ],
)
def test_over_long_strings_are_422(world: World, body: dict[str, Any], loc: list[Any]) -> None:
    assert_error(world.post("acme", body), 422, loc)
    assert_nothing_stored(world)


def test_strings_at_the_limits_are_accepted(world: World) -> None:
    r = world.post("acme", event("a" * 128, "u" * 256, id="i" * 128, message="m" * 8192))
    assert r.status_code == 201, r.text
    assert len(world.all_events("acme")) == 1


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


@pytest.mark.parametrize("depth", [9, 50])
def test_deep_metadata_is_422(world: World, depth: int) -> None:
    err = assert_error(world.post("acme", event(metadata=_nested(depth))), 422)
    assert err["details"][0]["loc"][0] == "metadata"
    assert_error(world.post("acme", event(changes={"after": _nested(depth)})), 422)
    listed: Any = 1
    for _ in range(depth):
        listed = [listed]
    assert_error(world.post("acme", event(metadata={"l": listed})), 422)
    assert_nothing_stored(world)


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
@pytest.mark.parametrize("depth", [1000, 5000])
def test_absurdly_deep_metadata_is_4xx_not_500(world: World, path: str, depth: int) -> None:
    meta = b'{"n":' * depth + b"1" + b"}" * depth
    one = b'{"action": "a.b", "actor": {"id": "u"}, "metadata": ' + meta + b"}"
    body = one if path == "/v1/events" else b'{"events": [' + one + b"]}"
    assert_error(post_raw(world, body, path), 400)
    assert_nothing_stored(world)


def test_too_many_metadata_keys_is_422(world: World) -> None:
    flat = {f"k{i}": i for i in range(257)}
    assert_error(world.post("acme", event(metadata=flat)), 422, ["metadata"])
    spread = {f"g{g}": {f"k{i}": i for i in range(60)} for g in range(5)}  # 305 keys in all
    assert_error(world.post("acme", event(metadata=spread)), 422, ["metadata"])
    assert_nothing_stored(world)


def test_metadata_too_large_is_422(world: World) -> None:
    assert_error(world.post("acme", event(metadata={"blob": "x" * 17_000})), 422, ["metadata"])
    big = {f"k{i}": "y" * 200 for i in range(100)}  # ~20 kB in many small values
    assert_error(world.post("acme", event(metadata=big)), 422, ["metadata"])
    assert_error(world.post("acme", event(metadata={"k" * 300: 1})), 422)
    assert_nothing_stored(world)


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**64, 10**400])
def test_integers_beyond_2_pow_53_are_422(world: World, value: int) -> None:
    body = b'{"action":"a.b","actor":{"id":"u"},"metadata":{"n":[%d]}}' % value
    assert_error(post_raw(world, body), 422, ["metadata", "n", 0])
    body = b'{"action":"a.b","actor":{"id":"u"},"changes":{"after":{"n":%d}}}' % value
    assert_error(post_raw(world, body), 422, ["changes", "after", "n"])
    assert_nothing_stored(world)


def test_largest_safe_integer_is_kept_exactly(world: World) -> None:
    r = world.post("acme", event(metadata={"max": 2**53 - 1, "min": -(2**53 - 1)}))
    assert r.status_code == 201, r.text
    assert world.all_events("acme")[0]["metadata"] == {"max": 2**53 - 1, "min": -(2**53 - 1)}


NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e400"]


def _with_number(number: bytes) -> bytes:
    return b'{"action": "a.b", "actor": {"id": "u"}, "metadata": {"x": ' + number + b"}}"


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_numbers_in_an_event_are_rejected(world: World, number: bytes) -> None:
    """NaN/Infinity are not JSON and 1e400 overflows: refuse them, never store them as null."""
    r = post_raw(world, _with_number(number))
    assert r.status_code in (400, 422), r.text
    assert_error(r, r.status_code, ["metadata"] if r.status_code == 422 else None)
    assert_nothing_stored(world)


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_numbers_in_a_batch_item_are_rejected(world: World, number: bytes) -> None:
    r = post_raw(world, b'{"events": [' + _with_number(number) + b"]}", "/v1/events/batch")
    if r.status_code == 200:  # rejected item by item
        assert r.json()["created"] == 0, r.text
    else:
        assert r.status_code in (400, 422), r.text
        assert_error(r, r.status_code)
    assert_nothing_stored(world)


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_numbers_in_a_malformed_batch_are_4xx(world: World, number: bytes) -> None:
    """Not a batch envelope, and a number the fallback parser cannot read: still no 500."""
    r = post_raw(world, _with_number(number), "/v1/events/batch")
    assert r.status_code in (400, 422), r.text
    assert_error(r, r.status_code)
    assert_nothing_stored(world)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (event(message="a\u0000b"), ["message"]),
        (event(actor="u\u0000"), ["actor", "id"]),
        (ev(actor={"id": "u", "name": "\u0000"}), ["actor", "name"]),
        (event(targets=[{"type": "doc", "id": "\u0000"}]), ["targets", 0, "id"]),
        (event(metadata={"k\u0000": "v"}), ["metadata", "k\u0000"]),
        (event(metadata={"k": "v\u0000"}), ["metadata", "k"]),
        (event(metadata={"k": [{"deep": "\u0000"}]}), ["metadata", "k", 0, "deep"]),
        (event(changes={"before": {"t": "\u0000"}}), ["changes", "before", "t"]),
        (event(context={"user_agent": "curl\u0000"}), ["context", "user_agent"]),
    ],
)
def test_nul_characters_are_422(world: World, body: dict[str, Any], loc: list[Any]) -> None:
    assert_error(world.post("acme", body), 422, loc)
    assert_nothing_stored(world)


@pytest.mark.parametrize(
    "when",
    [
        "0000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "2026-13-45T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2999-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1900-01-01T00:00:00+00:00",
        "2026-01-01T00:00:00",
        "2026-01-01",
        "yesterday",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
    ],
)
def test_out_of_range_timestamps_are_422(world: World, when: str) -> None:
    assert_error(world.post("acme", event(occurred_at=when)), 422, ["occurred_at"])
    assert_nothing_stored(world)


def test_future_skew_boundary(world: World) -> None:
    soon = datetime.now(UTC) + timedelta(hours=23)
    late = datetime.now(UTC) + timedelta(hours=25)
    assert world.post("acme", event(occurred_at=soon.isoformat())).status_code == 201
    assert_error(world.post("acme", event(occurred_at=late.isoformat())), 422, ["occurred_at"])
    assert len(world.all_events("acme")) == 1


def test_batch_items_are_rejected_individually_naming_the_field(world: World) -> None:
    bad = [
        event(message="\u0000"),
        event(severity="URGENT"),
        event(metadata=_nested(50)),
        event(occurred_at="1969-01-01T00:00:00Z"),
        {"action": "a.b", "actor": {"id": "u"}, "x": 1},
    ]
    r = world.client.post(
        "/v1/events/batch", json={"events": bad}, headers=world.h("acme", "writer")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 0 and body["rejected"] == len(bad)
    heads = [item["error"]["details"][0]["loc"] for item in body["results"]]
    assert heads[0] == ["events", 0, "message"]
    assert heads[1] == ["events", 1, "severity"]
    assert heads[2][:3] == ["events", 2, "metadata"]
    assert heads[3] == ["events", 3, "occurred_at"]
    assert heads[4] == ["events", 4, "x"]
    assert all(item["error"]["status"] == 422 for item in body["results"])
    assert_nothing_stored(world)


# -- SQL-looking strings ------------------------------------------------------------------


def test_sql_looking_strings_are_stored_verbatim_and_harmless(world: World) -> None:
    for i, s in enumerate(SQLISH):
        fields = {"message": s, "targets": [{"type": s, "id": s}], "metadata": {s: s}}
        r = world.post("acme", event("user.login", s, id=f"sql-{i}", **fields))
        assert r.status_code == 201, r.text
        assert {k: r.json()[k] for k in fields} == fields
    stored = {e["id"]: e for e in world.all_events("acme")}
    assert len(stored) == len(SQLISH)
    for i, s in enumerate(SQLISH):
        e = stored[f"sql-{i}"]
        assert (e["message"], e["actor"]["id"], e["metadata"]) == (s, s, {s: s})
    for i, s in enumerate(SQLISH):
        r = world.list("acme", actor_id=s)
        assert r.status_code == 200
        assert [e["id"] for e in r.json()["data"]] == [f"sql-{i}"]
        r = world.list("acme", target_type=s, target_id=s)
        assert [e["id"] for e in r.json()["data"]] == [f"sql-{i}"]
        assert world.list("acme", action=s).json()["data"] == []
    # the table still works, and still holds exactly what it should
    assert world.post("acme", event(id="after")).status_code == 201
    assert len(world.all_events("acme")) == len(SQLISH) + 1


def test_sql_looking_query_parameters_are_answered_normally(world: World) -> None:
    world.post("acme", event(id="only"))
    for value in SQLISH:
        for param in ("actor_id", "action", "target_type"):
            r = world.list("acme", **{param: value})
            assert r.status_code == 200, r.text
            assert r.json()["data"] == []
        assert_error(world.list("acme", severity=value), 400)
        r = world.list("acme", target_type="document", target_id=value)
        assert r.status_code == 200 and r.json()["data"] == []
    assert [e["id"] for e in world.all_events("acme")] == ["only"]


# -- query parameters of GET /v1/events ---------------------------------------------------


BAD_QUERIES = [
    ("severity=bogus", 400),
    ("severity=", 400),
    ("outcome=maybe", 400),
    ("limit=0", 422),
    ("limit=-5", 422),
    ("limit=1001", 422),
    ("limit=abc", 422),
    ("limit=99999999999999999999999999", 422),
    ("occurred_after=yesterday", 422),
    ("occurred_after=2026-01-01T00:00:00", 422),
    ("occurred_before=2026-13-45T00:00:00Z", 422),
    ("occurred_after=0000-01-01T00:00:00Z", 422),
    ("target_id=doc-1", 400),
    ("cursor=garbage", 400),
    ("cursor=%00%FF", 400),
    ("cursor=" + "A" * 400, 400),
    ("cursor=" + "A" * 513, 422),
    ("cursor=" + "A" * 10_000, 422),
    ("actor_id=%00", 400),
    ("actor_id=" + "x" * 300, 400),
    ("action=*", 400),
]


def test_bad_query_parameters_are_4xx(world: World) -> None:
    world.post("acme", event(id="only"))
    wrong = []
    for query, status in BAD_QUERIES:
        r = world.client.get(f"/v1/events?{query}", headers=world.h("acme", "reader"))
        if r.status_code != status:
            wrong.append((query[:60], r.status_code, status))
        else:
            assert_error(r, status)
    assert wrong == [], "(query, got, expected)"
    assert [e["id"] for e in world.all_events("acme")] == ["only"]


@pytest.mark.parametrize(
    "query",
    ["occurred_after=0001-01-01T00:00:00%2B23:59", "occurred_before=9999-12-31T23:59:59-23:59"],
)
def test_extreme_utc_offsets_in_query_are_answered(world: World, query: str) -> None:
    """Valid RFC 3339 whose UTC instant falls outside years 1..9999: a bound, or a 422."""
    world.post("acme", event(id="only"))
    r = world.client.get(f"/v1/events?{query}", headers=world.h("acme", "reader"))
    if r.status_code == 200:
        assert [e["id"] for e in r.json()["data"]] == ["only"]
    else:
        assert_error(r, 422, ["query", query.split("=")[0]])


def test_cursor_from_other_filters_or_tenant_is_refused(world: World) -> None:
    for i in range(3):
        world.post("acme", event(id=f"e{i}"))
    page = world.list("acme", limit=1).json()
    cursor = page["next_cursor"]
    assert cursor
    assert_error(world.list("acme", limit=1, cursor=cursor, outcome="failure"), 400)
    r = world.client.get(
        "/v1/events", params={"cursor": cursor, "limit": 1}, headers=world.h("globex", "reader")
    )
    assert_error(r, 400)
    mid = len(cursor) // 2
    tampered = cursor[:mid] + ("A" if cursor[mid] != "A" else "B") + cursor[mid + 1 :]
    assert_error(world.list("acme", limit=1, cursor=tampered), 400)


def test_one_number_out_of_range_rejects_its_item_not_the_batch(world: World) -> None:
    """1e400 in one item is that item's 422 inside a 200; the others are stored."""
    good = b'{"id": "fine-1", "action": "a.b", "actor": {"id": "u"}}'
    r = post_raw(
        world, b'{"events": [' + _with_number(b"1e400") + b", " + good + b"]}", "/v1/events/batch"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 1
    first, second = body["results"]
    assert first["status"] == "rejected" and first["error"]["code"] == "validation_error"
    assert first["error"]["details"][0]["loc"] == ["events", 0, "metadata"]
    assert second["status"] == "created" and second["id"] == "fine-1"
