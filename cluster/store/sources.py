"""SQL for sources: adding, listing, claiming due ones and recording each fetch's outcome."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

SourceKind = Literal["feed", "site"]
# A claimed source is pushed this far ahead so a second scheduler (or a retry after a crash)
# does not pick it again while it is being crawled; the outcome then sets the real next time.
CLAIM_LEASE_S = 600
MAX_ERROR_TEXT = 2000

_COLUMNS = """
    id, url, kind, title, site_url, language, category, etag, last_modified, enabled, interval_s,
    next_fetch_at, last_fetched_at, last_success_at, last_status, consecutive_errors, error_count,
    last_error, last_error_at, articles_added, created_at, fetch_full_content, scrape_config, hub_url,
    websub_lease_until
"""


@dataclass(frozen=True, slots=True)
class Source:
    id: int
    url: str
    kind: SourceKind
    title: str | None
    site_url: str | None
    language: str | None
    category: str | None
    etag: str | None
    last_modified: str | None
    enabled: bool
    interval_s: int
    next_fetch_at: datetime
    last_fetched_at: datetime | None
    last_success_at: datetime | None
    last_status: int | None
    consecutive_errors: int
    error_count: int
    last_error: str | None
    last_error_at: datetime | None
    articles_added: int
    created_at: datetime
    fetch_full_content: bool = True
    scrape_config: dict[str, Any] | None = None
    hub_url: str | None = None
    websub_lease_until: datetime | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "Source":
        values = dict(row)
        if isinstance(values.get("scrape_config"), str):  # jsonb arrives as text without a codec
            values["scrape_config"] = json.loads(values["scrape_config"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class NewSource:
    url: str
    kind: SourceKind = "feed"
    title: str | None = None
    site_url: str | None = None
    language: str | None = None
    category: str | None = None


async def add_source(conn: asyncpg.Pool | asyncpg.Connection, source: NewSource, interval_s: int = 300) -> tuple[Source, bool]:
    """Insert a source; return it and whether it was new (an existing URL is left as it was)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO sources (url, kind, title, site_url, language, category, interval_s)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (url) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        source.url, source.kind, source.title, source.site_url, source.language, source.category, interval_s,
    )
    if row is not None:
        return Source.from_row(row), True
    existing = await conn.fetchrow(f"SELECT {_COLUMNS} FROM sources WHERE url = $1", source.url)
    assert existing is not None
    return Source.from_row(existing), False


async def add_sources(conn: asyncpg.Pool | asyncpg.Connection, sources: list[NewSource], interval_s: int = 300) -> int:
    """Insert many sources in one round trip; return how many were new."""
    if not sources:
        return 0
    rows = await conn.fetch(
        """
        INSERT INTO sources (url, kind, title, site_url, language, category, interval_s)
        SELECT * , $7::integer FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
        ON CONFLICT (url) DO NOTHING
        RETURNING id
        """,
        [s.url for s in sources], [s.kind for s in sources], [s.title for s in sources],
        [s.site_url for s in sources], [s.language for s in sources], [s.category for s in sources], interval_s,
    )
    return len(rows)


async def get_source(conn: asyncpg.Pool | asyncpg.Connection, source_id: int) -> Source | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM sources WHERE id = $1", source_id)
    return Source.from_row(row) if row else None


async def list_sources(conn: asyncpg.Pool | asyncpg.Connection, limit: int = 1000, offset: int = 0) -> list[Source]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM sources ORDER BY id LIMIT $1 OFFSET $2", limit, offset)
    return [Source.from_row(row) for row in rows]


async def count_sources(conn: asyncpg.Pool | asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM sources"))


async def claim_due_sources(conn: asyncpg.Pool | asyncpg.Connection, limit: int | None,
                            force: bool = False) -> list[Source]:
    """Atomically take up to `limit` (None: no limit) enabled sources that are due (all enabled
    ones if forced).

    SKIP LOCKED plus the lease on next_fetch_at means concurrent claimers never get the same
    source twice.
    """
    rows = await conn.fetch(
        f"""
        UPDATE sources SET next_fetch_at = now() + make_interval(secs => $2)
        WHERE id IN (
            SELECT id FROM sources
            WHERE enabled AND ($3 OR next_fetch_at <= now())
            ORDER BY next_fetch_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        RETURNING {_COLUMNS}
        """,
        limit, float(CLAIM_LEASE_S), force,
    )
    return [Source.from_row(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Success:
    """What a fetch that worked writes on its source's row (see :func:`record_success`)."""

    status: int
    next_fetch_in_s: float
    etag: str | None = None
    last_modified: str | None = None
    title: str | None = None
    site_url: str | None = None
    language: str | None = None
    interval_s: float | None = None  # the newly learned refresh interval, when there is one


def success_columns(source_ids: list[int], successes: list[Success]) -> tuple[list[Any], ...]:
    """The arrays for :func:`success_update_sql`'s placeholders, in order: one element per source."""
    return (
        source_ids, [s.status for s in successes], [s.etag for s in successes],
        [s.last_modified for s in successes], [s.title for s in successes], [s.site_url for s in successes],
        [s.language for s in successes], [s.next_fetch_in_s for s in successes],
        [None if s.interval_s is None else max(1, round(s.interval_s)) for s in successes],
    )


def success_update_sql(first: int, added: str) -> str:
    """The UPDATE of record_success for many sources, :func:`success_columns` at ``$first`` onwards.

    Shared with the articles store, which runs it in the same statement as the feeds' upsert (one
    round trip and one commit for several fetched feeds); ``added`` is the SQL for the articles
    added to source ``u.id``.
    """
    p = [f"${first + i}" for i in range(9)]
    return f"""
        UPDATE sources AS s SET
            last_status = u.status, etag = coalesce(u.etag, s.etag),
            last_modified = coalesce(u.last_modified, s.last_modified),
            title = coalesce(s.title, u.title), site_url = coalesce(s.site_url, u.site_url),
            language = coalesce(s.language, u.language),
            articles_added = s.articles_added + {added}, consecutive_errors = 0,
            last_fetched_at = now(), last_success_at = now(),
            next_fetch_at = now() + make_interval(secs => u.next_s), updated_at = now(),
            interval_s = coalesce(u.interval_s, s.interval_s)
        FROM unnest({p[0]}::bigint[], {p[1]}::integer[], {p[2]}::text[], {p[3]}::text[], {p[4]}::text[],
                    {p[5]}::text[], {p[6]}::text[], {p[7]}::float8[], {p[8]}::integer[])
             AS u(id, status, etag, last_modified, title, site_url, language, next_s, interval_s)
        WHERE s.id = u.id
        """


_RECORD_SUCCESS = success_update_sql(2, "$1")


async def record_success(
    conn: asyncpg.Pool | asyncpg.Connection,
    source_id: int,
    *,
    status: int,
    next_fetch_in_s: float,
    etag: str | None = None,
    last_modified: str | None = None,
    title: str | None = None,
    site_url: str | None = None,
    language: str | None = None,
    articles_added: int = 0,
    interval_s: float | None = None,
) -> None:
    """A fetch worked (a 304 counts): clear the error streak and schedule the next one.

    `interval_s`, when given, is the source's newly learned refresh interval.
    """
    await record_success_of(conn, source_id, Success(status, next_fetch_in_s, etag, last_modified, title, site_url,
                                                     language, interval_s), articles_added)


async def record_success_of(conn: asyncpg.Pool | asyncpg.Connection, source_id: int, success: Success,
                            articles_added: int = 0) -> None:
    """record_success() with its values in a :class:`Success`."""
    await conn.execute(_RECORD_SUCCESS, articles_added, *success_columns([source_id], [success]))


@dataclass(frozen=True, slots=True)
class NotModified:
    source_id: int
    status: int
    next_fetch_in_s: float


async def record_not_modified(conn: asyncpg.Pool | asyncpg.Connection, outcomes: list[NotModified]) -> None:
    """record_success() for many 304 answers in one statement (a 304 changes nothing else)."""
    await conn.execute(
        """
        UPDATE sources AS s SET
            last_status = o.status, consecutive_errors = 0, last_fetched_at = now(), last_success_at = now(),
            next_fetch_at = now() + make_interval(secs => o.next_s), updated_at = now()
        FROM unnest($1::bigint[], $2::integer[], $3::float8[]) AS o(id, status, next_s)
        WHERE s.id = o.id
        """,
        [o.source_id for o in outcomes], [o.status for o in outcomes], [o.next_fetch_in_s for o in outcomes],
    )


async def record_failure(
    conn: asyncpg.Pool | asyncpg.Connection,
    source_id: int,
    *,
    error: str,
    status: int | None,
    next_fetch_in_s: float,
    disable_after: int | None = None,
) -> Source | None:
    """A fetch failed: keep the error where an operator sees it, back off, maybe disable."""
    row = await conn.fetchrow(
        f"""
        UPDATE sources SET
            last_status = $3, last_error = $2, last_error_at = now(), last_fetched_at = now(),
            consecutive_errors = consecutive_errors + 1, error_count = error_count + 1,
            enabled = enabled AND ($5::integer IS NULL OR consecutive_errors + 1 < $5),
            next_fetch_at = now() + make_interval(secs => $4), updated_at = now()
        WHERE id = $1
        RETURNING {_COLUMNS}
        """,
        source_id, error[:MAX_ERROR_TEXT], status, next_fetch_in_s, disable_after,
    )
    return Source.from_row(row) if row else None


async def set_enabled(conn: asyncpg.Pool | asyncpg.Connection, source_id: int, enabled: bool) -> bool:
    """Enable or disable a source; enabling clears its error streak and makes it due now."""
    result = await conn.execute(
        """
        UPDATE sources SET enabled = $2,
            consecutive_errors = CASE WHEN $2 THEN 0 ELSE consecutive_errors END,
            next_fetch_at = CASE WHEN $2 THEN now() ELSE next_fetch_at END, updated_at = now()
        WHERE id = $1
        """,
        source_id, enabled,
    )
    return result.endswith(" 1")


async def source_summary(conn: asyncpg.Pool | asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow(
        """
        SELECT count(*) AS total, count(*) FILTER (WHERE enabled) AS enabled,
               count(*) FILTER (WHERE consecutive_errors > 0) AS failing,
               count(*) FILTER (WHERE enabled AND next_fetch_at <= now()) AS due
        FROM sources
        """
    )
    return dict(row) if row else {}


async def move_source(conn: asyncpg.Pool | asyncpg.Connection, source_id: int, new_url: str) -> bool:
    """Follow a permanent redirect: the source takes the new URL unless another source has it."""
    result = await conn.execute(
        """
        UPDATE sources SET moved_from = url, url = $2, etag = NULL, last_modified = NULL, updated_at = now()
        WHERE id = $1 AND url <> $2 AND NOT EXISTS (SELECT 1 FROM sources WHERE url = $2)
        """,
        source_id, new_url,
    )
    return result.endswith(" 1")


async def disable_source(conn: asyncpg.Pool | asyncpg.Connection, source_id: int, reason: str) -> None:
    """Stop crawling a source for good reason (410 Gone), keeping the reason as its last error."""
    await conn.execute(
        "UPDATE sources SET enabled = false, last_error = $2, last_error_at = now(), updated_at = now() WHERE id = $1",
        source_id, reason[:MAX_ERROR_TEXT],
    )


async def start_websub(conn: asyncpg.Pool | asyncpg.Connection, source_id: int, hub_url: str, topic: str,
                       secret: str) -> None:
    """Remember a subscription request; the lease starts when the hub verifies our intent."""
    await conn.execute(
        "UPDATE sources SET hub_url = $2, websub_topic = $3, websub_secret = $4, updated_at = now() WHERE id = $1",
        source_id, hub_url, topic, secret,
    )


async def confirm_websub(conn: asyncpg.Pool | asyncpg.Connection, source_id: int, topic: str,
                         lease_s: int | None) -> bool:
    """The hub's verification of intent: true (and the lease recorded) only for our own topic."""
    result = await conn.execute(
        """
        UPDATE sources SET websub_lease_until = CASE WHEN $3::integer IS NULL THEN NULL
                                                     ELSE now() + make_interval(secs => $3::integer) END,
                           updated_at = now()
        WHERE id = $1 AND websub_topic = $2
        """,
        source_id, topic, lease_s,
    )
    return result.endswith(" 1")


async def websub_secret(conn: asyncpg.Pool | asyncpg.Connection, source_id: int) -> tuple[str, str] | None:
    """(topic, secret) of a source's subscription, for checking a push; None when it has none."""
    row = await conn.fetchrow(
        "SELECT websub_topic, websub_secret FROM sources WHERE id = $1 AND websub_secret IS NOT NULL", source_id)
    return (row["websub_topic"], row["websub_secret"]) if row else None


async def set_scrape_config(conn: asyncpg.Pool | asyncpg.Connection, source_id: int,
                            config: dict[str, Any] | None) -> None:
    """How to scrape a `site` source (start URLs, link pattern, selectors); None for the defaults."""
    await conn.execute("UPDATE sources SET scrape_config = $2::jsonb, updated_at = now() WHERE id = $1",
                       source_id, None if config is None else json.dumps(config))
