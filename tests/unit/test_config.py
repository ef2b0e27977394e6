"""Settings: environment variables and the production secret check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from trailkeep.config import DEFAULT_SECRET, ConfigError, Limits, Settings

GOOD_SECRET = "k" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not depend on TRAILKEEP_* variables of the machine they run on."""
    for name in list(os.environ):
        if name.upper().startswith("TRAILKEEP_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("secret", [DEFAULT_SECRET, "", "short", "k" * 31])
def test_production_refuses_default_or_weak_secret(secret: str) -> None:
    settings = Settings(env="production", secret_key=secret)
    with pytest.raises(ConfigError) as info:
        settings.check_secrets()
    assert "TRAILKEEP_SECRET_KEY" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_production_refuses_the_default_when_nothing_is_set() -> None:
    assert Settings().secret_key == DEFAULT_SECRET
    with pytest.raises(ConfigError):
        Settings(env="production").check_secrets()


@pytest.mark.parametrize("secret", [GOOD_SECRET, "x" * 64, "a-random-value-0123456789-ABCDEFGH"])
def test_production_accepts_a_long_secret(secret: str) -> None:
    Settings(env="production", secret_key=secret).check_secrets()


def test_production_refuses_a_short_jwt_secret() -> None:
    weak = Settings(env="production", secret_key=GOOD_SECRET, jwt_hs256_secret="j" * 31)
    with pytest.raises(ConfigError):
        weak.check_secrets()
    Settings(env="production", secret_key=GOOD_SECRET, jwt_hs256_secret="j" * 32).check_secrets()


@pytest.mark.parametrize("env", ["development", "test"])
def test_other_environments_allow_the_default(env: str) -> None:
    Settings(env=env).check_secrets()  # type: ignore[arg-type]


def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAILKEEP_ENV", "production")
    with pytest.raises(ConfigError):
        Settings().check_secrets()
    monkeypatch.setenv("TRAILKEEP_SECRET_KEY", GOOD_SECRET)
    settings = Settings()
    assert settings.env == "production" and settings.secret_key == GOOD_SECRET
    settings.check_secrets()


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAILKEEP_LIMIT_MAX_BATCH_EVENTS", "7")
    monkeypatch.setenv("TRAILKEEP_LIMIT_MAX_TARGETS", "3")
    settings = Settings()
    assert settings.limits.max_batch_events == 7
    assert settings.limits.max_targets == 3
    assert settings.limits.max_event_bytes == Limits.model_fields["max_event_bytes"].default
    assert Limits().max_batch_events == 7


def test_plain_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAILKEEP_PORT", "9123")
    monkeypatch.setenv("TRAILKEEP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRAILKEEP_SQLITE_SYNCHRONOUS", "NORMAL")
    monkeypatch.setenv("TRAILKEEP_ACCESS_LOG", "false")
    settings = Settings()
    assert settings.port == 9123
    assert settings.data_dir == tmp_path
    assert settings.sqlite_synchronous == "NORMAL"
    assert settings.access_log is False
    assert settings.database().sqlite_path == tmp_path / "trailkeep.db"


def test_explicit_values_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAILKEEP_PORT", "9123")
    assert Settings(port=8001).port == 8001


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRAILKEEP_LIMIT_MAX_BATCH_EVENTS", "0"),
        ("TRAILKEEP_LIMIT_MAX_BATCH_EVENTS", "many"),
        ("TRAILKEEP_LIMIT_MAX_EVENT_BYTES", "10"),
        ("TRAILKEEP_PORT", "70000"),
        ("TRAILKEEP_ENV", "staging"),
        ("TRAILKEEP_SQLITE_SYNCHRONOUS", "OFF"),
    ],
)
def test_invalid_environment_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_database_url() -> None:
    settings = Settings(data_dir=Path("/srv/tk"))
    assert settings.resolved_database_url == "sqlite:////srv/tk/trailkeep.db"
    assert Settings(database_url="sqlite:///x.db").database().sqlite_path == Path("x.db")
    pg = Settings(database_url="postgres://u:pw@127.0.0.1:5433/tk").database()
    assert pg.backend == "postgresql"
    assert pg.libpq == "postgresql://u:pw@127.0.0.1:5433/tk"
    assert pg.sqlalchemy == "postgresql+psycopg://u:pw@127.0.0.1:5433/tk"
    assert pg.redacted == "postgres://u:***@127.0.0.1:5433/tk"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://h/db", "unsupported database URL"),
        ("sqlite:///", "unsupported database URL"),
        ("postgresql://u@127.0.0.1:notaport/db", "malformed PostgreSQL URL"),
        ("postgresql://u@127.0.0.1:5432", "names no database"),
        ("postgresql://u:hunter2@127.0.0.1:5432", "names no database"),
        ("nonsense", "unsupported database URL"),
    ],
)
def test_bad_database_urls_are_named(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        Settings(database_url=url).database()
    assert "hunter2" not in str(caught.value)
