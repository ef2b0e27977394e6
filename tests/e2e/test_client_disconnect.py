"""A client that goes away mid-upload is logged as a client disconnect, at info level:
no "unhandled error", no traceback, nothing stored, and the server goes on serving."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server, all_events

pytestmark = pytest.mark.slow


def test_a_disconnect_mid_upload_is_an_info_line_not_an_error(
    server: Server, seeded: dict[str, Any]
) -> None:
    server.start(extra_env={"TRAILKEEP_LOG_LEVEL": "INFO"})
    head = (
        "POST /v1/events/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {seeded['a_writer']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(head.encode() + b'{"events": [{"action": "half.sent"')
            time.sleep(0.2)  # the server is reading the body when the client goes
    # The server still answers, and nothing of the cut uploads was stored.
    r = httpx.post(
        f"{server.url}/v1/events",
        json={"action": "after.cut", "actor": {"id": "u"}},
        headers={"Authorization": f"Bearer {seeded['a_writer']}"},
    )
    assert r.status_code == 201, r.text
    assert [e["action"] for e in all_events(server.url, seeded["a_reader"])] == ["after.cut"]
    server.stop()
    assert server.log_path is not None
    log = server.log_path.read_text()
    assert log.count("client disconnected before the request was read") == 3, log[-3000:]
    assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]
