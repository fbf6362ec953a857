"""One settings object, read from NEWSRAY_* environment variables and validated at start-up.

Invalid settings fail early with a message that names the variable, so an operator never has
to guess which of twenty values was wrong.
"""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
import tempfile
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "NEWSRAY_"
SECRET_FILE_NAME = "secret_key"
# Values people paste from tutorials; production refuses them even when long enough.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "password", "development", "dev", "test", "placeholder",
     "insecure", "default", "your-secret-key", "please-change-me", "xxx"}
)
MIN_SECRET_LENGTH = 32
MIN_SECRET_ENTROPY_BITS = 128


class SettingsError(ValueError):
    """Raised when the environment does not describe a valid configuration."""



def comma_list(value: str) -> tuple[str, ...]:
    """A comma-separated setting's items, stripped, empty ones dropped."""
    return tuple(filter(None, (part.strip() for part in value.split(","))))


def parse_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma-separated list of networks (`10.0.0.0/8, ::1`); ValueError names a bad entry."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in comma_list(value))

class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path("./var"), description="Where embedded services keep data.")
    database_url: str | None = Field(default=None, description="External PostgreSQL (with pgvector).")
    redis_url: str | None = Field(default=None, description="External Redis.")
    ray_address: str | None = Field(default=None, description="Join this Ray cluster instead of starting one.")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(default=8265, ge=1, le=65535)
    ray_port: int = Field(default=6380, ge=1024, le=65535, description="GCS port of the local Ray head.")
    # HAProxy's stats page binds every interface in Ray 2.60 (its template hard-codes `*`);
    # the port is configurable so it can be firewalled or moved out of the way.
    haproxy_stats_port: int = Field(default=8404, ge=1, le=65535)
    demo_port: int = Field(default=8787, ge=1, le=65535, description="Port of the bundled sample feed server.")
    environment: Literal["development", "production"] = "development"
    secret_key: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Crawling.
    crawl_interval_s: float = Field(default=300.0, gt=0, description="Default refresh interval of a source.")
    scheduler_tick_s: float = Field(default=30.0, gt=0, description="How often the scheduler looks for due sources.")
    fetch_timeout_s: float = Field(default=10.0, gt=0)
    user_agent: str = "newsray/0.1 (self-hosted news reader; +https://github.com/newsray/newsray)"
    crawler_actors: int = Field(default=0, ge=0, description="0 = size the pool to the cluster.")
    # Empty by default: the crawler refuses private and loopback addresses. Tests and the demo
    # allow 127.0.0.0/8 explicitly, operators may allow their intranet.
    crawl_allowed_networks: str = Field(default="", description="Comma-separated CIDRs the crawler may reach even if private.")
    load_default_sources: bool = True
    # Where hubs reach this instance from outside (WebSub callbacks); push is off without it.
    public_url: str | None = None
    # Politeness: requests in flight per host across the cluster, and the pause between them.
    host_concurrency: int = Field(default=1, ge=1, le=16)
    host_delay_s: float = Field(default=1.0, ge=0)
    # Fetch the page of teaser-only articles and keep its main text (robots.txt obeyed).
    full_content: bool = True

    # Database pool per process; small because every Ray worker holds its own.
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    # A crawler actor's connections: its stores queue for them. PostgreSQL spends less CPU per
    # stored feed with few writers at once than with many (lock waits, context switches): 2.26,
    # 2.35 and 2.55 ms per farm feed with 2, 4 and 20 writers, on 2 cores. One is enough: a store
    # takes a few ms, so one connection carries more feeds a second than an actor's core can
    # parse, and the crawler never holds one while asking for another (tests/actors/test_crawl.py).
    crawl_db_connections: int = Field(default=1, ge=1)

    # Enrichment (jobs/enrich.py): models, batch sizes and thresholds of the Ray Data pipeline.
    enrich_model: str = Field(default="", description="Sentence-transformers model name or local path; empty = bundled all-MiniLM-L6-v2.")
    enrich_model_version: str = Field(default="", description="Label stored per row; empty = derived from the model. A change re-embeds.")
    enrich_batch_size: int = Field(default=64, ge=1, description="Embedding batch size on CPU workers.")
    enrich_gpu_batch_size: int = Field(default=512, ge=1, description="Embedding batch size on GPU workers.")
    enrich_max_tokens: int = Field(default=128, ge=8, description="Text is truncated to this many tokens (MiniLM was trained on 128).")
    enrich_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    enrich_torch_threads: int = Field(default=0, ge=0, description="Threads per CPU model worker; 0 = the node's cores.")
    enrich_topics_file: Path | None = Field(default=None, description="Topic catalog JSON; empty = the bundled one.")
    enrich_topic_threshold: float = Field(default=0.78, gt=0, le=1, description="Cosine to a topic centroid that assigns it.")
    enrich_story_window_h: float = Field(default=72.0, gt=0)
    enrich_story_cosine: float = Field(default=0.6, gt=0, le=1, description="Embedding cosine that makes two articles one story.")
    enrich_story_jaccard: float = Field(default=0.5, gt=0, le=1, description="MinHash Jaccard that makes two articles one story.")
    enrich_summarizer: str = Field(default="", description="Seq2seq models by language, e.g. 'en=/models/bart,*=/models/mt5'; empty = extractive.")
    enrich_summary_max_tokens: int = Field(default=96, ge=8, description="Length cap of abstractive summaries.")
    enrich_micro_batch: int = Field(default=256, ge=1, description="Articles per scheduler-started micro-batch.")
    enrich_auto: bool = Field(default=True, description="The crawl scheduler enriches new articles as they arrive (micro-batches).")

    @field_validator("http_host", "dashboard_host")
    @classmethod
    def _host_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must start with postgresql://")
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value or None

    @field_validator("crawl_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # refuse a malformed entry at start-up, naming the variable
        return value

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def allowed_networks(self) -> tuple[str, ...]:
        return comma_list(self.crawl_allowed_networks)

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    def secret(self) -> str:
        """The application secret; in development one is generated once and kept in the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.production:  # load_settings() already refused this; keep the invariant local too
            raise SettingsError(f"{ENV_PREFIX}SECRET_KEY: required in production")
        return _development_secret(self.resolved_data_dir)


def _development_secret(data_dir: Path) -> str:
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return _read_secret_file(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # Written whole to a private temporary file, then hard-linked into place: the link either
    # publishes the complete key or fails because a racing process linked first. (Creating the
    # final file with O_EXCL and writing it afterwards let a racer read it empty.)
    fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=f".{SECRET_FILE_NAME}-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_secret_file(path)
    finally:
        os.unlink(temporary)
    return value


def _read_secret_file(path: Path) -> str:
    value = path.read_text().strip()
    if not value:  # never sign anything with an empty key
        raise SettingsError(f"{ENV_PREFIX}SECRET_KEY: {path} is empty; delete it to generate a new key")
    return value


def secret_problem(value: str) -> str | None:
    """Why a secret is unfit for production, or None when it is fine."""
    lowered = value.strip().lower()
    if lowered in PLACEHOLDER_SECRETS or any(word in lowered for word in ("changeme", "change-me", "placeholder")):
        return "is a placeholder"
    if len(value) < MIN_SECRET_LENGTH:
        return f"must be at least {MIN_SECRET_LENGTH} characters"
    counts = Counter(value)
    entropy_per_char = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    if entropy_per_char * len(value) < MIN_SECRET_ENTROPY_BITS or len(counts) < 10:
        return "is too predictable (use e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
    return None


def settings_error(exc: ValidationError) -> SettingsError:
    """A validation failure as one message naming each offending NEWSRAY_ variable."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "?"
        problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
    return SettingsError("invalid settings: " + "; ".join(problems))


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; raise SettingsError naming the offending variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise settings_error(exc) from None
    if settings.production:
        if settings.secret_key is None:
            raise SettingsError(f"{ENV_PREFIX}SECRET_KEY: required in production")
        problem = secret_problem(settings.secret_key.get_secret_value())
        if problem:
            raise SettingsError(f"{ENV_PREFIX}SECRET_KEY: {problem}")
    if settings.db_pool_min > settings.db_pool_max:
        raise SettingsError(f"{ENV_PREFIX}DB_POOL_MIN: must not exceed {ENV_PREFIX}DB_POOL_MAX")
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
