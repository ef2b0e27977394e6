"""Where finished export archives are kept: a local folder or an S3 bucket.

An export job builds its archive in a scratch file and hands it to an ``ObjectStore``.
Under its final name an archive is always complete (local: temporary file, fsync, rename;
S3: an object appears once its upload has finished), and its size and SHA-256 come back
for the job to record. Every problem of the destination (bucket missing, endpoint
unreachable, access denied, disk full ...) is a ``DestinationError`` whose message says
which, and never contains a credential.
"""

from __future__ import annotations

import errno
import hashlib
import mimetypes
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import boto3.exceptions
import boto3.session
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from trailkeep.config import ConfigError, Settings
from trailkeep.kit.hashing import file_sha256

_CHUNK = 1024 * 1024
_PART = 8 * 1024 * 1024  # multipart threshold and part size of S3 uploads


class DestinationError(Exception):
    """The export destination cannot be used; the message says why (no credentials in it)."""


@dataclass(frozen=True)
class StoredObject:
    location: str  # S3: the object key; local: the path relative to the export folder
    size: int
    sha256: str


class ObjectStore(Protocol):
    kind: str  # "local" or "s3"

    def check(self) -> None: ...
    def put(self, source: Path, name: str) -> StoredObject: ...
    def open(self, location: str) -> BinaryIO | None: ...
    def location_of(self, name: str) -> str: ...
    def link(self, location: str, seconds: int, filename: str) -> str | None: ...
    def delete(self, location: str) -> None: ...
    def exists(self, location: str) -> bool: ...


def _safe_name(name: str) -> str:
    """``name`` as a relative POSIX path with no empty, ``.`` or ``..`` parts."""
    parts = name.split("/")
    if not name or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a safe relative object name: {name!r}")
    return str(PurePosixPath(*parts))


class LocalObjectStore:
    """Archives as files under ``root`` (created on first use)."""

    kind = "local"

    def __init__(self, root: Path, what: str = "export") -> None:
        self.root = root
        self._what = what

    def _path(self, location: str) -> Path:
        return self.root / _safe_name(location)

    def _error(self, exc: OSError, action: str) -> DestinationError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return DestinationError(f"{self._what} folder {self.root} is full: cannot {action}")
        reason = exc.strerror or type(exc).__name__
        return DestinationError(f"{self._what} folder {self.root}: cannot {action}: {reason}")

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root, prefix=".check-"):
                pass
        except OSError as exc:
            raise self._error(exc, "write a file") from None

    def put(self, source: Path, name: str) -> StoredObject:
        target = self._path(name)
        digest, size = hashlib.sha256(), 0
        with source.open("rb") as src:  # a problem of the source is no destination error
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            except OSError as exc:
                raise self._error(exc, f"write {name}") from None
            try:
                with os.fdopen(fd, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, target)
                _fsync_dir(target.parent)
            except BaseException as exc:
                Path(temp).unlink(missing_ok=True)
                if isinstance(exc, OSError):
                    raise self._error(exc, f"write {name}") from None
                raise
        return StoredObject(location=_safe_name(name), size=size, sha256=digest.hexdigest())

    def location_of(self, name: str) -> str:
        """Where ``put(..., name)`` stores (and ``open`` finds) an object."""
        return _safe_name(name)

    def open(self, location: str) -> BinaryIO | None:
        try:
            return self._path(location).open("rb")
        except FileNotFoundError:
            raise DestinationError(
                f"{self._what} file {location} is missing from {self.root}"
            ) from None

    def link(self, location: str, seconds: int, filename: str) -> str | None:
        return None

    def delete(self, location: str) -> None:
        try:
            self._path(location).unlink(missing_ok=True)
        except OSError as exc:
            raise self._error(exc, f"delete {location}") from None

    def exists(self, location: str) -> bool:
        return self._path(location).is_file()


def _fsync_dir(path: Path) -> None:
    """Makes a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 one (RFC 6266)."""
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


class S3ObjectStore:
    """Archives as objects under ``prefix`` in an S3 bucket (AWS S3, MinIO, any S3 API)."""

    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        sse: str = "",
        kms_key_id: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = _without_userinfo(endpoint_url) if endpoint_url else "AWS S3"
        self._extra: dict[str, Any] = {"ServerSideEncryption": sse} if sse else {}
        if sse == "aws:kms" and kms_key_id:
            self._extra["SSEKMSKeyId"] = kms_key_id
        options: dict[str, Any] = {
            "connect_timeout": timeout_s,
            "read_timeout": timeout_s,
            # One retry: an unreachable endpoint fails within about twice the timeout.
            "retries": {"mode": "standard", "total_max_attempts": 2},
            "signature_version": "s3v4",
        }
        if endpoint_url:
            # MinIO and most S3 APIs want path-style URLs, and not all of them accept the
            # checksums boto3 adds by default since 1.36; AWS S3 keeps boto3's defaults.
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        # Credentials given as None: boto3's usual chain (environment, profile, role).
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        try:
            self._client: Any = session.client(
                "s3", endpoint_url=endpoint_url, config=Config(**options)
            )
        except (ValueError, botocore.exceptions.BotoCoreError) as exc:
            raise DestinationError(
                f"S3 endpoint {self.endpoint} is not usable: {type(exc).__name__}"
            ) from None
        self._transfer = TransferConfig(
            multipart_threshold=_PART, multipart_chunksize=_PART, max_concurrency=4
        )

    def _error(self, exc: Exception, action: str) -> DestinationError:
        # upload_file wraps a ClientError into S3UploadFailedError (as the implicit context).
        if not isinstance(exc, botocore.exceptions.ClientError) and isinstance(
            exc.__context__, botocore.exceptions.ClientError
        ):
            exc = exc.__context__
        where = f"S3 bucket {self.bucket!r} at {self.endpoint}"
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchBucket", "404") or (code == "" and status == 404):
                return DestinationError(f"{where} does not exist ({action})")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"):
                return DestinationError(f"{where} rejected the credentials ({action}): {code}")
            if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
                return DestinationError(
                    f"access denied to {where} ({action}): check the credentials and the "
                    "bucket policy"
                )
            message = error.get("Message") or status
            return DestinationError(f"{where} failed to {action}: {code} {message}")
        if isinstance(
            exc,
            botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError,
        ):
            return DestinationError(
                f"no usable S3 credentials for {where} ({action}): set "
                "TRAILKEEP_EXPORT_S3_ACCESS_KEY_ID and TRAILKEEP_EXPORT_S3_SECRET_ACCESS_KEY, "
                "or configure boto3's usual chain (environment, profile, instance role)"
            )
        if isinstance(
            exc, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError
        ):
            return DestinationError(
                f"S3 endpoint {self.endpoint} is unreachable or not answering ({action}): "
                f"{type(exc).__name__}"
            )
        return DestinationError(f"{where} failed to {action}: {type(exc).__name__}: {exc}")

    _FAILURES = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)

    def check(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except self._FAILURES as exc:
            raise self._error(exc, "check the bucket") from None

    def put(self, source: Path, name: str) -> StoredObject:
        key = self.prefix + _safe_name(name)
        sha256, size = file_sha256(source)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        extra = {**self._extra, "ContentType": content_type, "Metadata": {"sha256": sha256}}
        try:
            self._client.upload_file(
                str(source), self.bucket, key, ExtraArgs=extra, Config=self._transfer
            )
        except (*self._FAILURES, boto3.exceptions.Boto3Error) as exc:
            raise self._error(exc, f"upload {key}") from None
        return StoredObject(location=key, size=size, sha256=sha256)

    def location_of(self, name: str) -> str:
        return self.prefix + _safe_name(name)

    def open(self, location: str) -> BinaryIO | None:
        """The object's bytes, streamed (archives read back what they stored)."""
        try:
            found = self._client.get_object(Bucket=self.bucket, Key=location)
        except self._FAILURES as exc:
            raise self._error(exc, f"read {location}") from None
        body: BinaryIO = found["Body"]
        return body

    def link(self, location: str, seconds: int, filename: str) -> str | None:
        disposition = _disposition(filename)
        params = {"Bucket": self.bucket, "Key": location, "ResponseContentDisposition": disposition}
        try:
            url: str = self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=seconds
            )
        except self._FAILURES as exc:
            raise self._error(exc, f"sign a link to {location}") from None
        return url

    def delete(self, location: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=location)
        except self._FAILURES as exc:
            raise self._error(exc, f"delete {location}") from None

    def exists(self, location: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=location)
        except self._FAILURES as exc:
            if isinstance(exc, botocore.exceptions.ClientError) and exc.response.get(
                "Error", {}
            ).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error(exc, f"look up {location}") from None
        return True


def object_store(settings: Settings) -> ObjectStore:
    """The export destination the settings name (nothing is contacted: see ``check()``)."""
    if settings.export_destination == "local":
        return LocalObjectStore(settings.resolved_export_dir)
    return _s3_store(settings, settings.export_s3_prefix)


def archive_store(settings: Settings) -> ObjectStore:
    """The archive destination of retention (the export's S3 settings, its own prefix)."""
    if settings.archive_destination == "local":
        return LocalObjectStore(settings.resolved_archive_dir, "archive")
    return _s3_store(settings, settings.archive_s3_prefix)


def _s3_store(settings: Settings, prefix: str) -> ObjectStore:
    if not settings.export_s3_bucket:
        raise ConfigError("TRAILKEEP_EXPORT_S3_BUCKET must be set for the s3 export destination")
    secret = settings.export_s3_secret_access_key
    if (settings.export_s3_access_key_id is None) != (secret is None):
        raise ConfigError(
            "TRAILKEEP_EXPORT_S3_ACCESS_KEY_ID and TRAILKEEP_EXPORT_S3_SECRET_ACCESS_KEY are "
            "given together or not at all (then boto3's usual chain finds the credentials)"
        )
    if settings.export_s3_kms_key_id and settings.export_s3_sse != "aws:kms":
        raise ConfigError("TRAILKEEP_EXPORT_S3_KMS_KEY_ID needs TRAILKEEP_EXPORT_S3_SSE=aws:kms")
    try:
        return S3ObjectStore(
            bucket=settings.export_s3_bucket,
            prefix=prefix,
            endpoint_url=settings.export_s3_endpoint_url,
            region=settings.export_s3_region,
            access_key_id=settings.export_s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            sse=settings.export_s3_sse,
            kms_key_id=settings.export_s3_kms_key_id,
            timeout_s=settings.export_s3_timeout_seconds,
        )
    except DestinationError as exc:
        raise ConfigError(str(exc)) from None
