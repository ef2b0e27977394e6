"""One settings object for the whole service.

Every setting can be given as an environment variable with the prefix ``TRAILKEEP_``
(``TRAILKEEP_DATA_DIR``, ``TRAILKEEP_MAX_BATCH_EVENTS`` ...); command-line flags of
``trailkeep serve`` override the environment. docs/configuration.md lists them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from trailkeep.store.urls import DatabaseUrl, DatabaseUrlError, parse_database_url

DEFAULT_SECRET = "dev-insecure-secret-change-me"


class ConfigError(ValueError):
    """The settings cannot be used (raised at start-up, before serving)."""


class Limits(BaseSettings):
    """Size limits on ingested events. Every limit is enforced with a 4xx naming the field."""

    model_config = SettingsConfigDict(env_prefix="TRAILKEEP_LIMIT_", extra="ignore")

    max_event_bytes: int = Field(65_536, ge=1024, description="Serialized size of one event")
    max_batch_events: int = Field(1000, ge=1, le=10_000)
    max_batch_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_id_length: int = Field(128, ge=16, le=512)
    max_action_length: int = Field(128, ge=8)
    max_name_length: int = Field(256, ge=8, description="actor/target names, ids, emails")
    max_message_length: int = Field(8192, ge=16)
    max_targets: int = Field(32, ge=1)
    max_metadata_bytes: int = Field(16_384, ge=64)
    max_metadata_depth: int = Field(8, ge=1, le=64)
    max_metadata_keys: int = Field(256, ge=1, description="keys in total, all levels")
    max_changes_bytes: int = Field(32_768, ge=64)
    max_future_skew_seconds: int = Field(86_400, ge=0, description="occurred_at ahead of now")
    min_occurred_year: int = Field(1970, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAILKEEP_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        None,
        description="sqlite:///PATH or postgresql://USER@HOST:PORT/DB;"
        " defaults to sqlite:///<data_dir>/trailkeep.db",
    )
    secret_key: str = Field(
        DEFAULT_SECRET, description="Signs pagination cursors; must be set in production"
    )
    # SQLite durability: FULL fsyncs the WAL on every commit (group commit keeps it cheap).
    sqlite_synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL"
    sqlite_cache_mb: int = Field(256, ge=2)
    # Group commit: one transaction takes up to this many events ...
    commit_max_events: int = Field(5000, ge=1)
    # ... and waits at most this long for more to arrive before committing.
    commit_max_wait_ms: float = Field(0.0, ge=0, le=100)
    # SQLite: processes that tokenize events for the full-text index (0: a thread of the
    # server, which then competes with requests for the interpreter).
    index_processes: int = Field(1, ge=0, le=8)
    # PostgreSQL: connections for reads and admin writes (the writers have their own) ...
    pg_pool_size: int = Field(6, ge=1, le=100)
    # ... event writers per process, each with its own connection; a tenant's events
    # always go through the same one, so different tenants commit side by side.
    pg_writers: int = Field(2, ge=1, le=16)
    # ... how long a request waits for one (or for a new connection) before its 503 ...
    pg_connect_timeout_seconds: float = Field(2.0, gt=0, le=60)
    # ... and the longest any one statement may run.
    pg_statement_timeout_ms: int = Field(10_000, ge=100)
    # Searches and stats (both backends): a read running longer is stopped and answered
    # 400 query_timeout, so no query can hold the database (docs/query-language.md).
    query_timeout_ms: int = Field(5_000, ge=50, le=600_000)
    # Monthly partitions are created this many months ahead of the current month.
    pg_partitions_ahead_months: int = Field(3, ge=1, le=24)
    ingest_queue_max: int = Field(50_000, ge=1, description="Events waiting; beyond, 503")
    # The request thread and the writer thread share the GIL; Python hands it over every
    # 5 ms by default, so the writer waited up to 5 ms per step under load.
    gil_switch_interval_us: int = Field(200, ge=20, le=5000)
    # Authentication
    jwt_hs256_secret: str | None = None
    jwt_jwks_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_tenant_claim: str = "tenant_id"
    jwt_roles_claim: str = "roles"
    auth_cache_seconds: float = Field(2.0, ge=0, description="API key lookups are cached")
    access_log: bool = True
    log_level: str = "INFO"
    # Tamper evidence (docs/integrity.md). The checkpoint signing key: a C2SP/Go note
    # signer key string, given directly or in a file (default <data_dir>/signing.key,
    # which `trailkeep init` creates). Its name is the log host: origins are
    # "<host>/t/<tenant_id>".
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    log_host: str = Field("localhost", description="Used only when init creates the key")
    # A tenant's tree is signed at most this often, and within this long of growing.
    checkpoint_interval_seconds: float = Field(1.0, ge=0.01, le=3600)
    # Tenants whose log was signed by the service key before per-tenant keys get a second
    # signature by it on each new checkpoint while this is on (docs/integrity.md).
    checkpoint_legacy_cosign: bool = True
    # The integrity scrub (docs/integrity.md): stored events re-hashed against the tree,
    # this many a second in all (12: a full pass a day over 1,000,000 events); 0: off.
    scrub_events_per_second: float = Field(12.0, ge=0, le=1_000_000)
    # Privacy (docs/privacy.md): the master key that wraps every tenant's data keys,
    # given directly or in a file (default <data_dir>/privacy.key, created by init).
    privacy_key: SecretStr | None = None
    privacy_key_file: Path | None = None
    # How long a process trusts what it read of a subject's key: an erasure made by
    # another process takes effect there within this time (in-process: at once).
    privacy_key_cache_seconds: float = Field(5.0, ge=0, le=300)
    # Exports (docs/exports.md). Finished archives go to a local folder (default
    # <data_dir>/exports) or to an S3 bucket; the S3 settings work unchanged against AWS
    # S3, MinIO or any S3 API (endpoint_url empty: AWS). Credentials: these settings, or
    # boto3's usual chain (environment, profile, instance role) when they are empty.
    export_destination: Literal["local", "s3"] = "local"
    export_dir: Path | None = None
    export_s3_bucket: str | None = None
    export_s3_prefix: str = "trailkeep/exports/"
    export_s3_endpoint_url: str | None = None
    export_s3_region: str | None = None
    export_s3_access_key_id: str | None = None
    export_s3_secret_access_key: SecretStr | None = None
    # Server-side encryption of the uploaded objects: none, "AES256" or "aws:kms".
    export_s3_sse: Literal["", "AES256", "aws:kms"] = ""
    export_s3_kms_key_id: str | None = None
    export_s3_timeout_seconds: float = Field(10.0, gt=0, le=600)
    # A download link of an S3 export is valid this long.
    export_link_seconds: int = Field(300, ge=10, le=7 * 86_400)
    # Jobs running at once in one process (one per tenant at a time, always).
    export_workers: int = Field(2, ge=1, le=16)
    # A running job's lease: another process takes over a job whose worker stopped
    # renewing it (a crash) after this long.
    export_lease_seconds: float = Field(30.0, ge=1, le=3600)
    # How often an idle worker looks for queued jobs queued by other processes.
    export_poll_seconds: float = Field(2.0, gt=0, le=600)
    # Retention (docs/retention.md). The service runs every tenant's policy this often
    # (0: never; run it with `trailkeep retention run` or POST /v1/retention/run).
    retention_interval_seconds: float = Field(86_400.0, ge=0, le=30 * 86_400)
    # Rows deleted per transaction: bounds how long one delete holds the writer.
    retention_batch_rows: int = Field(500, ge=1, le=100_000)
    # The share of the database writer's time retention's deletes may take: after a
    # batch that took t, a run waits t * (1 / share - 1) before the next (1: no pause).
    retention_writer_share: float = Field(0.5, gt=0, le=1)
    # Events per archive segment (one Parquet file with its bundle).
    retention_segment_rows: int = Field(250_000, ge=1, le=10_000_000)
    # A running run's lease: a run whose process died is taken over after this long.
    retention_lease_seconds: float = Field(60.0, ge=1, le=3600)
    # Where archive segments go before their rows are deleted: a local folder (default
    # <data_dir>/archives) or S3, with the bucket, endpoint and credentials of the
    # export_s3_* settings and a prefix of its own.
    archive_destination: Literal["local", "s3"] = "local"
    archive_dir: Path | None = None
    archive_s3_prefix: str = "trailkeep/archives/"
    # Exposes POST /v1/_bench/validate (validates, stores nothing) for bench/ingest.py.
    bench_endpoints: bool = False
    # bench/ingest.py's baseline for the cost of integrity: no canonical-form check, no
    # leaf hashes, no tiles, no checkpoints. Needs bench_endpoints; refused in production.
    bench_without_integrity: bool = False
    limits: Limits = Field(default_factory=Limits)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'trailkeep.db').as_posix()}"

    @property
    def merkle(self) -> bool:
        """Whether events are hashed into the tenant's tree (always, but in one benchmark)."""
        return not (self.bench_without_integrity and self.bench_endpoints)

    def check_secrets(self) -> None:
        """Refuse to serve in production with a default or weak secret."""
        if self.env != "production":
            return
        if not self.secret_key or self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32:
            raise ConfigError(
                "TRAILKEEP_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production (it is empty, the default, or too short)"
            )
        if self.bench_without_integrity:
            raise ConfigError(
                "TRAILKEEP_BENCH_WITHOUT_INTEGRITY is for benchmarks, never production"
            )
        if self.jwt_hs256_secret is not None and len(self.jwt_hs256_secret) < 32:
            raise ConfigError("TRAILKEEP_JWT_HS256_SECRET must be at least 32 characters")

    @property
    def resolved_signing_key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "signing.key"

    @property
    def resolved_export_dir(self) -> Path:
        return self.export_dir or self.data_dir / "exports"

    @property
    def resolved_archive_dir(self) -> Path:
        return self.archive_dir or self.data_dir / "archives"

    @property
    def resolved_privacy_key_file(self) -> Path:
        return self.privacy_key_file or self.data_dir / "privacy.key"

    def database(self) -> DatabaseUrl:
        try:
            return parse_database_url(self.resolved_database_url)
        except DatabaseUrlError as exc:
            raise ConfigError(str(exc)) from None
