"""``s3_server``: moto's standalone S3 server on a loopback port, for the export tests.

A real HTTP server in its own process, so the code under test goes through boto3's whole
stack (signing, multipart, retries, timeouts) exactly as against AWS S3 or MinIO. Moto
accepts any credentials. Use it with ``from tests.s3_fixture import s3_server  # noqa: F401``;
however many test modules import it, one server runs for the whole session.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class S3Server:
    endpoint_url: str
    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    region: str = "us-east-1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def client(self) -> Any:
        """A boto3 S3 client of the server (for setting up and inspecting from tests)."""
        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        ).client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def make_bucket(self, name: str) -> str:
        """Creates a fresh, empty bucket named ``name`` plus a unique suffix; returns its name."""
        base = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40] or "bucket"
        bucket = f"{base}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket


def _start(log: Path) -> S3Server:
    for _ in range(3):  # another process may take the free port before moto binds it
        port = _free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/moto-api/", timeout=1).status_code == 200:
                    return S3Server(endpoint_url=url, process=process)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        _stop(process)
    raise RuntimeError(f"moto's S3 server did not start:\n{log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# The running server and how many fixture instances use it: pytest makes one session
# fixture per module that imports this one, and they should share the server.
_shared: list[S3Server] = []
_users: list[int] = [0]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if not _shared:
        _shared.append(_start(tmp_path_factory.mktemp("moto") / "server.log"))
    _users[0] += 1
    try:
        yield _shared[0]
    finally:
        _users[0] -= 1
        if _users[0] == 0:
            server = _shared.pop()
            if server.process is not None:
                _stop(server.process)
