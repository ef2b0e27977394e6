"""The destinations of finished exports: a local folder, and S3 through a real HTTP server
(moto's, see tests/s3_fixture.py) so uploads, multipart, links and errors go through
boto3's whole stack."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from tests.s3_fixture import S3Server, s3_server  # noqa: F401
from trailkeep.config import ConfigError, Settings
from trailkeep.exports.object_store import (
    DestinationError,
    LocalObjectStore,
    S3ObjectStore,
    StoredObject,
    object_store,
)

# The database plays no part: once is enough.
pytestmark = pytest.mark.sqlite_only

NAME = "t_acme/exp_0193abc/export.zip"
PREFIX = "trailkeep/exports/"
MIB = 1024 * 1024


def _source(tmp_path: Path, data: bytes, name: str = "scratch.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _expected(location: str, data: bytes) -> StoredObject:
    return StoredObject(location=location, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _s3(server: S3Server, bucket: str, **overrides: Any) -> S3ObjectStore:
    options: dict[str, Any] = {
        "bucket": bucket,
        "prefix": PREFIX,
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "timeout_s": 5.0,
    }
    options.update(overrides)
    return S3ObjectStore(**options)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there any more


# --- local folder ---------------------------------------------------------------------


def test_local_put_open_exists_delete(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "exports")
    assert store.kind == "local"
    store.check()
    assert (tmp_path / "exports").is_dir()
    data = os.urandom(3 * MIB + 17)

    stored = store.put(_source(tmp_path, data), NAME)

    assert stored == _expected(NAME, data)
    assert (tmp_path / "exports" / NAME).read_bytes() == data
    assert store.exists(NAME)
    handle = store.open(NAME)
    assert handle is not None
    with handle:
        assert handle.read() == data
    assert store.link(NAME, 60, "export.zip") is None
    assert sorted(p.name for p in (tmp_path / "exports" / NAME).parent.iterdir()) == [
        "export.zip"
    ]  # no temporary file left behind

    store.delete(NAME)
    assert not store.exists(NAME)
    store.delete(NAME)  # already gone: fine
    with pytest.raises(DestinationError, match="missing"):
        store.open(NAME)


def test_local_put_of_an_empty_file(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "exports")
    assert store.put(_source(tmp_path, b""), NAME) == _expected(NAME, b"")
    assert (tmp_path / "exports" / NAME).read_bytes() == b""


@pytest.mark.parametrize("replacing", [False, True], ids=["new", "replacing"])
def test_local_put_never_shows_a_partial_file(tmp_path: Path, replacing: bool) -> None:
    """The source is a FIFO fed in two halves: between them the copy is half done, and
    the final name shows nothing (or the previous archive), never the half."""
    store = LocalObjectStore(tmp_path / "exports")
    final = tmp_path / "exports" / NAME
    old = b"the previous archive"
    if replacing:
        store.put(_source(tmp_path, old, "old.zip"), NAME)
    fifo = tmp_path / "source.fifo"
    os.mkfifo(fifo)
    first, rest = os.urandom(3 * MIB), os.urandom(MIB + 5)
    results: list[StoredObject] = []
    putter = threading.Thread(target=lambda: results.append(store.put(fifo, NAME)))
    putter.start()
    try:
        with fifo.open("wb") as feed:
            feed.write(first)
            feed.flush()
            deadline = time.monotonic() + 20
            temps: list[Path] = []
            while time.monotonic() < deadline:
                temps = [p for p in final.parent.iterdir() if p.name != final.name]
                if temps and temps[0].stat().st_size >= len(first):
                    break
                time.sleep(0.01)
            assert len(temps) == 1, "the copy goes to one temporary file in the same folder"
            assert temps[0].stat().st_size == len(first)
            if replacing:
                assert final.read_bytes() == old
            else:
                assert not final.exists()
            feed.write(rest)
    finally:
        putter.join(timeout=30)
    assert not putter.is_alive()
    assert results == [_expected(NAME, first + rest)]
    assert final.read_bytes() == first + rest
    assert [p.name for p in final.parent.iterdir()] == [final.name]


def test_local_disk_full_is_a_destination_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path / "exports")
    store.check()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DestinationError, match="is full") as caught:
        store.put(_source(tmp_path, b"x" * 1000), NAME)
    monkeypatch.undo()

    assert str(tmp_path / "exports") in str(caught.value)
    assert not store.exists(NAME)
    assert list((tmp_path / "exports" / NAME).parent.iterdir()) == []  # temp file removed


def test_local_unusable_folder(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    store = LocalObjectStore(tmp_path / "a_file" / "exports")
    with pytest.raises(DestinationError, match="a_file/exports"):
        store.check()
    with pytest.raises(DestinationError, match="a_file/exports"):
        store.put(_source(tmp_path, b"data"), NAME)


@pytest.mark.parametrize("name", ["", "../escape.zip", "/etc/x.zip", "a//b.zip", "a/./b.zip"])
def test_local_refuses_names_outside_the_folder(tmp_path: Path, name: str) -> None:
    store = LocalObjectStore(tmp_path / "exports")
    with pytest.raises(ValueError, match="safe"):
        store.put(_source(tmp_path, b"data"), name)


# --- S3 -------------------------------------------------------------------------------


def test_s3_put_small_file(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    bucket = s3_server.make_bucket("exports")
    store = _s3(s3_server, bucket)
    assert store.kind == "s3"
    store.check()
    data = os.urandom(1000)

    stored = store.put(_source(tmp_path, data), NAME)

    assert stored == _expected(PREFIX + NAME, data)
    head = s3_server.client().head_object(Bucket=bucket, Key=PREFIX + NAME)
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "application/zip"
    assert head["Metadata"] == {"sha256": stored.sha256}
    assert "-" not in head["ETag"]  # a single PUT
    body = s3_server.client().get_object(Bucket=bucket, Key=PREFIX + NAME)["Body"].read()
    assert body == data
    assert store.exists(stored.location)
    handle = store.open(stored.location)  # streamed from the bucket (archives read back)
    assert handle is not None and handle.read() == data
    assert store.location_of(NAME) == stored.location


def test_s3_put_large_file_is_multipart(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    bucket = s3_server.make_bucket("exports")
    store = _s3(s3_server, bucket)
    data = os.urandom(8 * MIB + 4321)

    stored = store.put(_source(tmp_path, data), NAME)

    assert stored == _expected(PREFIX + NAME, data)
    head = s3_server.client().head_object(Bucket=bucket, Key=stored.location)
    # A multipart object's ETag is "<md5 of the parts' md5s>-<number of parts>".
    assert head["ETag"].strip('"').endswith("-2")
    assert head["ContentLength"] == len(data)
    body = s3_server.client().get_object(Bucket=bucket, Key=stored.location)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == stored.sha256


def test_s3_link_downloads_the_archive(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    store = _s3(s3_server, s3_server.make_bucket("exports"))
    data = os.urandom(5000)
    stored = store.put(_source(tmp_path, data), NAME)

    url = store.link(stored.location, 120, "acme-2026-01.zip")

    assert url is not None
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == data
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["120"]
    # moto ignores response-content-disposition (AWS S3 and MinIO send it back as the
    # Content-Disposition header), so the test checks that the signed link asks for it.
    disposition = query["response-content-disposition"][0]
    assert disposition.startswith('attachment; filename="acme-2026-01.zip"')


def test_s3_link_expires(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    store = _s3(s3_server, s3_server.make_bucket("exports"))
    stored = store.put(_source(tmp_path, b"data"), NAME)

    url = store.link(stored.location, 1, "export.zip")

    # moto 5.2.1 does not enforce the expiry of presigned URLs (this link still answers
    # 200 after it has expired), so instead of waiting for a 403 the test checks what
    # AWS S3 and MinIO enforce: a signed validity of one second, from a signing time of now.
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["1"]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    assert "X-Amz-Signature" in query


@pytest.mark.parametrize("sse", ["AES256", "aws:kms"])
def test_s3_server_side_encryption(tmp_path: Path, s3_server: S3Server, sse: str) -> None:  # noqa: F811
    bucket = s3_server.make_bucket("exports")
    store = _s3(s3_server, bucket, sse=sse)
    stored = store.put(_source(tmp_path, b"secret audit data"), NAME)
    head = s3_server.client().head_object(Bucket=bucket, Key=stored.location)
    assert head["ServerSideEncryption"] == sse


def test_s3_delete(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    store = _s3(s3_server, s3_server.make_bucket("exports"))
    stored = store.put(_source(tmp_path, b"data"), NAME)
    assert store.exists(stored.location)
    store.delete(stored.location)
    assert not store.exists(stored.location)
    store.delete(stored.location)  # already gone: fine


def test_s3_missing_bucket_is_named(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    store = _s3(s3_server, "no-such-bucket-trailkeep")
    with pytest.raises(DestinationError, match=r"'no-such-bucket-trailkeep' .* does not exist"):
        store.check()
    with pytest.raises(DestinationError, match=r"'no-such-bucket-trailkeep' .* does not exist"):
        store.put(_source(tmp_path, b"data"), NAME)


def test_s3_unreachable_endpoint_fails_fast_without_the_secret(tmp_path: Path) -> None:
    secret = "wJalrXUtnFEMI-do-not-print-me"
    store = S3ObjectStore(
        bucket="exports",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        access_key_id="AKIDTRAILKEEP",
        secret_access_key=secret,
        timeout_s=1.0,
    )
    for attempt in (store.check, lambda: store.put(_source(tmp_path, b"data"), NAME)):
        started = time.monotonic()
        with pytest.raises(DestinationError, match="unreachable") as caught:
            attempt()
        assert time.monotonic() - started < 5
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)


def test_s3_without_credentials(monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> None:  # noqa: F811
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = _s3(s3_server, "exports", access_key_id=None, secret_access_key=None)
    with pytest.raises(DestinationError, match="no usable S3 credentials"):
        store.check()


def test_s3_endpoint_that_never_answers_fails_within_twice_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        store = S3ObjectStore(
            bucket="exports",
            endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
            access_key_id="AKIDTRAILKEEP",
            secret_access_key="testing",
            timeout_s=1.0,
        )
        started = time.monotonic()
        with pytest.raises(DestinationError, match="not answering"):
            store.check()
        assert time.monotonic() - started < 5  # two attempts of 1 s, and a backoff


# --- from the settings ----------------------------------------------------------------


def test_object_store_from_settings(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    local = object_store(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalObjectStore)
    assert local.root == tmp_path / "exports"

    with pytest.raises(ConfigError, match="TRAILKEEP_EXPORT_S3_BUCKET"):
        object_store(Settings(data_dir=tmp_path, export_destination="s3"))

    bucket = s3_server.make_bucket("exports")
    store = object_store(
        Settings(
            data_dir=tmp_path,
            export_destination="s3",
            export_s3_bucket=bucket,
            export_s3_prefix="custom/prefix",
            export_s3_endpoint_url=s3_server.endpoint_url,
            export_s3_region=s3_server.region,
            export_s3_access_key_id=s3_server.access_key_id,
            export_s3_secret_access_key=SecretStr(s3_server.secret_access_key),
            export_s3_sse="AES256",
            export_s3_timeout_seconds=5,
        )
    )
    assert store.kind == "s3"
    store.check()
    stored = store.put(_source(tmp_path, b"data"), NAME)
    assert stored.location == "custom/prefix/" + NAME
    head = s3_server.client().head_object(Bucket=bucket, Key=stored.location)
    assert head["ServerSideEncryption"] == "AES256"
