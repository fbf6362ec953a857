"""cluster.settings: defaults, NEWSRAY_* from the environment, validation, the secret key."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from cluster.settings import (
    ENV_PREFIX,
    SECRET_FILE_NAME,
    Settings,
    SettingsError,
    _development_secret,
    load_settings,
    secret_problem,
)

STRONG_SECRET = "kJ8#vQ2!mZ7rT1pX9wL4sN6bY3cF0hD5gA-eU_iO"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No NEWSRAY_* variable from the test session (conftest exports some) leaks in."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


# --------------------------------------------------------------------------- defaults and environment


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.data_dir == Path("var")
    assert settings.http_host == "127.0.0.1"
    assert settings.http_port == 8000
    assert settings.environment == "development"
    assert settings.production is False
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.ray_address is None
    assert settings.secret_key is None
    assert settings.db_pool_min <= settings.db_pool_max
    assert settings.crawl_db_connections == 1
    assert settings.allowed_networks == ()
    assert settings.resolved_data_dir == (Path.cwd() / "var").resolve()


def test_environment_variables_are_read(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("NEWSRAY_HTTP_PORT", "9123")
    clean_env.setenv("NEWSRAY_HTTP_HOST", "  127.0.0.2 ")
    clean_env.setenv("NEWSRAY_DATA_DIR", str(tmp_path / "data"))
    clean_env.setenv("NEWSRAY_DATABASE_URL", "postgresql://user:pw@127.0.0.1:5433/news")
    clean_env.setenv("NEWSRAY_REDIS_URL", "redis://127.0.0.1:6390/2")
    clean_env.setenv("NEWSRAY_RAY_ADDRESS", "127.0.0.1:6380")
    clean_env.setenv("NEWSRAY_CRAWL_ALLOWED_NETWORKS", "127.0.0.0/8, 10.0.0.0/8")
    clean_env.setenv("NEWSRAY_LOAD_DEFAULT_SOURCES", "false")
    clean_env.setenv("NEWSRAY_DB_POOL_MIN", "2")
    clean_env.setenv("NEWSRAY_DB_POOL_MAX", "4")
    clean_env.setenv("NEWSRAY_CRAWL_DB_CONNECTIONS", "3")
    settings = load_settings()
    assert settings.http_port == 9123
    assert settings.http_host == "127.0.0.2"
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == "postgresql://user:pw@127.0.0.1:5433/news"
    assert settings.redis_url == "redis://127.0.0.1:6390/2"
    assert settings.ray_address == "127.0.0.1:6380"
    assert settings.allowed_networks == ("127.0.0.0/8", "10.0.0.0/8")
    assert settings.load_default_sources is False
    assert (settings.db_pool_min, settings.db_pool_max) == (2, 4)
    assert settings.crawl_db_connections == 3


def test_unprefixed_variables_are_ignored(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HTTP_PORT", "9999")
    clean_env.setenv("DATABASE_URL", "mysql://nope")
    settings = load_settings()
    assert settings.http_port == 8000
    assert settings.database_url is None


def test_empty_urls_mean_embedded(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NEWSRAY_DATABASE_URL", "")
    clean_env.setenv("NEWSRAY_REDIS_URL", "")
    settings = load_settings()
    assert settings.database_url is None
    assert settings.redis_url is None


def test_overrides_win_over_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NEWSRAY_HTTP_PORT", "9123")
    assert load_settings(http_port=9124).http_port == 9124


def test_settings_are_frozen(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.http_port = 1  # type: ignore[misc]
    assert settings.http_port == 8000


# --------------------------------------------------------------------------- invalid values


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NEWSRAY_HTTP_PORT", "70000"),
        ("NEWSRAY_HTTP_PORT", "0"),
        ("NEWSRAY_HTTP_PORT", "eighty"),
        ("NEWSRAY_ENVIRONMENT", "staging"),
        ("NEWSRAY_DATABASE_URL", "mysql://root:pw@127.0.0.1/news"),
        ("NEWSRAY_REDIS_URL", "http://127.0.0.1:6379"),
        ("NEWSRAY_CRAWL_ALLOWED_NETWORKS", "127.0.0.0/8,10.0.0.0/33"),
        ("NEWSRAY_CRAWL_ALLOWED_NETWORKS", "not-a-network"),
        ("NEWSRAY_HTTP_HOST", "   "),
        ("NEWSRAY_LOG_LEVEL", "LOUD"),
        ("NEWSRAY_CRAWL_INTERVAL_S", "0"),
        ("NEWSRAY_DB_POOL_MAX", "0"),
        ("NEWSRAY_CRAWL_DB_CONNECTIONS", "0"),
    ],
)
def test_invalid_value_names_the_variable(clean_env: pytest.MonkeyPatch, variable: str, value: str) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert variable in str(info.value)


def test_several_invalid_values_are_all_named(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NEWSRAY_HTTP_PORT", "70000")
    clean_env.setenv("NEWSRAY_ENVIRONMENT", "staging")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "NEWSRAY_HTTP_PORT" in str(info.value)
    assert "NEWSRAY_ENVIRONMENT" in str(info.value)


def test_pool_min_above_max_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NEWSRAY_DB_POOL_MIN", "5")
    clean_env.setenv("NEWSRAY_DB_POOL_MAX", "2")
    with pytest.raises(SettingsError, match="NEWSRAY_DB_POOL_MIN"):
        load_settings()


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


# --------------------------------------------------------------------------- production secret


def test_production_requires_a_secret(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NEWSRAY_ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="NEWSRAY_SECRET_KEY"):
        load_settings()


@pytest.mark.parametrize(
    "secret",
    [
        "changeme",
        "changeme-changeme-changeme-changeme-changeme",
        "please-CHANGEME-" + secrets.token_urlsafe(32),
        "placeholder" * 4,
        "secret",
        "password",
        "short-but-random-9f8K",
        "a" * 40,
        "ab" * 30,
        "0123456789" * 2,
        "",
    ],
)
def test_production_refuses_weak_secrets(clean_env: pytest.MonkeyPatch, secret: str) -> None:
    clean_env.setenv("NEWSRAY_ENVIRONMENT", "production")
    clean_env.setenv("NEWSRAY_SECRET_KEY", secret)
    with pytest.raises(SettingsError, match="NEWSRAY_SECRET_KEY") as info:
        load_settings()
    assert secret_problem(secret) is not None
    if len(secret) >= 8:  # the message never echoes the secret itself
        assert secret not in str(info.value)


@pytest.mark.parametrize("secret", [STRONG_SECRET, secrets.token_urlsafe(48), secrets.token_hex(32)])
def test_production_accepts_a_strong_secret(clean_env: pytest.MonkeyPatch, secret: str) -> None:
    clean_env.setenv("NEWSRAY_ENVIRONMENT", "production")
    clean_env.setenv("NEWSRAY_SECRET_KEY", secret)
    settings = load_settings()
    assert settings.production is True
    assert settings.secret() == secret
    assert secret not in repr(settings)  # SecretStr keeps it out of logs
    # Production never falls back to a generated file.
    assert not (settings.resolved_data_dir / SECRET_FILE_NAME).exists()


def test_secret_problem_reasons() -> None:
    assert secret_problem("changeme") == "is a placeholder"
    assert "at least" in (secret_problem("x9!Kp") or "")
    assert "predictable" in (secret_problem("a" * 40) or "")
    assert secret_problem(STRONG_SECRET) is None


def test_secret_refused_in_production_without_load_settings(clean_env: pytest.MonkeyPatch) -> None:
    # Settings built directly skip load_settings()'s check; secret() still refuses.
    settings = Settings(environment="production")
    with pytest.raises(SettingsError, match="NEWSRAY_SECRET_KEY"):
        settings.secret()


# --------------------------------------------------------------------------- development secret


def test_development_secret_is_generated_once(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data_dir = tmp_path / "deep" / "data"
    settings = load_settings(data_dir=data_dir)
    first = settings.secret()
    path = data_dir / SECRET_FILE_NAME
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first
    assert secret_problem(first) is None  # strong enough even for production
    # Stable across calls and across fresh settings objects (a restart).
    assert settings.secret() == first
    assert load_settings(data_dir=data_dir).secret() == first
    assert [p.name for p in data_dir.iterdir()] == [SECRET_FILE_NAME]  # no temporary files left behind


def test_development_secrets_differ_per_data_dir(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    one = load_settings(data_dir=tmp_path / "one").secret()
    two = load_settings(data_dir=tmp_path / "two").secret()
    assert one != two


def test_explicit_secret_is_used_in_development(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("NEWSRAY_SECRET_KEY", "dev-only")
    settings = load_settings(data_dir=tmp_path)
    assert settings.secret() == "dev-only"
    assert not (tmp_path / SECRET_FILE_NAME).exists()


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    # An empty key file (e.g. left by a crash) must never become an empty signing key.
    (tmp_path / SECRET_FILE_NAME).write_text("")
    with pytest.raises(SettingsError, match=SECRET_FILE_NAME):
        _development_secret(tmp_path)


def _race_for_secret(data_dir: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue) -> None:
    import threading

    values: list[str] = []
    local = threading.Barrier(4)

    def one() -> None:
        local.wait()
        values.append(_development_secret(Path(data_dir)))

    barrier.wait()
    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(values)


def test_development_secret_is_the_same_for_racing_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    rounds, processes = 3, 4
    for round_number in range(rounds):
        data_dir = tmp_path / f"round-{round_number}"
        barrier = context.Barrier(processes)
        results = context.Queue()
        workers = [context.Process(target=_race_for_secret, args=(str(data_dir), barrier, results))
                   for _ in range(processes)]
        for worker in workers:
            worker.start()
        values = [value for _ in workers for value in results.get(timeout=60)]
        for worker in workers:
            worker.join(timeout=30)
            assert worker.exitcode == 0
        assert len(values) == processes * 4
        assert len(set(values)) == 1, f"racing processes saw different secrets: {set(values)}"
        assert values[0] and (data_dir / SECRET_FILE_NAME).read_text().strip() == values[0]
        assert stat.S_IMODE((data_dir / SECRET_FILE_NAME).stat().st_mode) == 0o600
        assert [p.name for p in data_dir.iterdir()] == [SECRET_FILE_NAME]
