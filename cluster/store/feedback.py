"""SQL for reading state and feedback: one row per user and article, upserted, plus an event
per change (what the ranking learns from, with its time).

The upsert is one INSERT … ON CONFLICT DO UPDATE whose SET expressions read the stored row, so
concurrent updates of the same article by the same user serialize on the row lock and none is
lost (dwell times add up, the last rating wins).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from cluster.store._conn import Conn, transaction
from cluster.store.articles import decode_cursor, encode_cursor

HistoryFilter = Literal["all", "opened", "read", "saved", "liked", "disliked", "rated", "hidden"]

_FILTERS: dict[str, str] = {
    "all": "true",
    "opened": "st.open_count > 0",
    "read": "st.read_at IS NOT NULL",
    "saved": "st.saved_at IS NOT NULL",
    "liked": "st.reaction = 1",
    "disliked": "st.reaction = -1",
    "rated": "st.rating IS NOT NULL",
    "hidden": "st.hidden_at IS NOT NULL",
}


class ArticleNotFoundError(LookupError):
    """The article does not exist (or was deleted meanwhile)."""


@dataclass(frozen=True, slots=True)
class StateChange:
    """What one request changes; None / False means "leave as it is"."""

    opened: bool = False
    read: bool | None = None
    dwell_ms: int = 0  # added to the total
    set_reaction: bool = False
    reaction: int | None = None  # 1 like, -1 dislike, None clears
    set_rating: bool = False
    rating: int | None = None  # 1-5, None clears
    saved: bool | None = None
    hidden: bool | None = None

    def events(self) -> list[tuple[str, int | None, int | None]]:
        """(kind, value, dwell_ms) per change; dwell rides on the open/read event it belongs to."""
        out: list[tuple[str, int | None, int | None]] = []
        dwell = self.dwell_ms or None
        if self.opened:
            out.append(("opened", None, None))
        if self.read is not None:
            out.append(("read" if self.read else "unread", None, dwell if self.read else None))
            if self.read:
                dwell = None
        if dwell:
            out.append(("dwell", None, dwell))
        if self.set_reaction:
            out.append(({1: "like", -1: "dislike"}.get(self.reaction or 0, "unreact"), self.reaction, None))
        if self.set_rating:
            out.append(("rating" if self.rating is not None else "unrate", self.rating, None))
        if self.saved is not None:
            out.append(("saved" if self.saved else "unsaved", None, None))
        if self.hidden is not None:
            out.append(("hidden" if self.hidden else "unhidden", None, None))
        return out


@dataclass(frozen=True, slots=True)
class ArticleState:
    article_id: uuid.UUID
    first_opened_at: datetime | None
    last_opened_at: datetime | None
    open_count: int
    read_at: datetime | None
    dwell_ms: int
    reaction: int | None
    reacted_at: datetime | None
    rating: int | None
    rated_at: datetime | None
    saved_at: datetime | None
    hidden_at: datetime | None
    updated_at: datetime


_STATE_COLUMNS = """article_id, first_opened_at, last_opened_at, open_count, read_at, dwell_ms, reaction,
    reacted_at, rating, rated_at, saved_at, hidden_at, updated_at"""


async def apply_change(conn: Conn, user_id: uuid.UUID, article_id: uuid.UUID, change: StateChange) -> ArticleState:
    """Upsert the state and record the events, in one transaction."""
    try:
        async with transaction(conn) as c:
            row = await c.fetchrow(
                f"""
                INSERT INTO article_states AS st (
                    user_id, article_id, first_opened_at, last_opened_at, open_count, read_at, dwell_ms,
                    reaction, reacted_at, rating, rated_at, saved_at, hidden_at)
                VALUES ($1, $2,
                    CASE WHEN $3 THEN now() END, CASE WHEN $3 THEN now() END, CASE WHEN $3 THEN 1 ELSE 0 END,
                    CASE WHEN $4 THEN now() END, $5,
                    CASE WHEN $6 THEN $7::smallint END, CASE WHEN $6 AND $7 IS NOT NULL THEN now() END,
                    CASE WHEN $8 THEN $9::smallint END, CASE WHEN $8 AND $9 IS NOT NULL THEN now() END,
                    CASE WHEN $10 THEN now() END, CASE WHEN $11 THEN now() END)
                ON CONFLICT (user_id, article_id) DO UPDATE SET
                    first_opened_at = CASE WHEN $3 THEN coalesce(st.first_opened_at, now()) ELSE st.first_opened_at END,
                    last_opened_at = CASE WHEN $3 THEN now() ELSE st.last_opened_at END,
                    open_count = st.open_count + CASE WHEN $3 THEN 1 ELSE 0 END,
                    read_at = CASE WHEN $4 IS NULL THEN st.read_at WHEN $4 THEN coalesce(st.read_at, now()) END,
                    dwell_ms = st.dwell_ms + $5,
                    reaction = CASE WHEN $6 THEN $7::smallint ELSE st.reaction END,
                    reacted_at = CASE WHEN NOT $6 THEN st.reacted_at WHEN $7 IS NOT NULL THEN now() END,
                    rating = CASE WHEN $8 THEN $9::smallint ELSE st.rating END,
                    rated_at = CASE WHEN NOT $8 THEN st.rated_at WHEN $9 IS NOT NULL THEN now() END,
                    saved_at = CASE WHEN $10 IS NULL THEN st.saved_at WHEN $10 THEN coalesce(st.saved_at, now()) END,
                    hidden_at = CASE WHEN $11 IS NULL THEN st.hidden_at WHEN $11 THEN coalesce(st.hidden_at, now()) END,
                    updated_at = now()
                RETURNING {_STATE_COLUMNS}
                """,
                user_id, article_id, change.opened, change.read, change.dwell_ms, change.set_reaction, change.reaction,
                change.set_rating, change.rating, change.saved, change.hidden)
            events = change.events()
            if events:
                await c.execute(
                    """
                    INSERT INTO feedback_events (user_id, article_id, kind, value, dwell_ms)
                    SELECT $1, $2, * FROM unnest($3::text[], $4::integer[], $5::integer[])
                    """,
                    user_id, article_id, [e[0] for e in events], [e[1] for e in events], [e[2] for e in events])
    except asyncpg.ForeignKeyViolationError:
        raise ArticleNotFoundError(article_id) from None
    assert row is not None
    return ArticleState(**dict(row))


async def get_state(conn: Conn, user_id: uuid.UUID, article_id: uuid.UUID) -> ArticleState | None:
    row = await conn.fetchrow(
        f"SELECT {_STATE_COLUMNS} FROM article_states WHERE user_id = $1 AND article_id = $2", user_id, article_id)
    return ArticleState(**dict(row)) if row else None


@dataclass(frozen=True, slots=True)
class HistoryItem:
    state: ArticleState
    title: str
    url: str | None
    source_id: int
    source_title: str | None
    published_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: list[HistoryItem]
    next_cursor: str | None


async def history(conn: Conn, user_id: uuid.UUID, which: HistoryFilter = "all", limit: int = 20,
                  cursor: str | None = None) -> HistoryPage:
    """The user's articles with any state, most recent activity first, keyset-paginated.
    Raises articles.CursorError for a cursor it did not make."""
    params: list[object] = [user_id, limit + 1]
    where = f"st.user_id = $1 AND {_FILTERS[which]}"
    if cursor:
        updated_at, article_id = decode_cursor(cursor)
        params += [updated_at, article_id]
        where += " AND (st.updated_at, st.article_id) < ($3, $4)"
    rows = await conn.fetch(
        f"""
        SELECT {", ".join("st." + c.strip() for c in _STATE_COLUMNS.split(","))},
               a.title, a.url, a.source_id, s.title AS source_title, a.published_at
        FROM article_states st JOIN articles a ON a.id = st.article_id JOIN sources s ON s.id = a.source_id
        WHERE {where}
        ORDER BY st.updated_at DESC, st.article_id DESC
        LIMIT $2
        """,
        *params)
    items = []
    for row in rows[:limit]:
        values = dict(row)
        extra = {key: values.pop(key) for key in ("title", "url", "source_id", "source_title", "published_at")}
        items.append(HistoryItem(state=ArticleState(**values), **extra))
    next_cursor = None
    if len(rows) > limit:
        last = items[-1].state
        next_cursor = encode_cursor(last.updated_at, last.article_id)
    return HistoryPage(items, next_cursor)


async def count_events(conn: Conn, user_id: uuid.UUID, article_id: uuid.UUID | None = None) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM feedback_events WHERE user_id = $1 AND ($2::uuid IS NULL OR article_id = $2)",
        user_id, article_id))
