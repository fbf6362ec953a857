"""cluster.store.articles: idempotent, concurrent upserts and the keyset-paginated listing."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from cluster.store import articles as store
from cluster.store.articles import ArticleFilter, ArticleInput, CursorError
from cluster.store.sources import NewSource, Success, add_source, get_source

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


async def new_source(db: asyncpg.Pool, url: str = "https://news.example/feed.xml", title: str = "Example News") -> int:
    source, _ = await add_source(db, NewSource(url=url, title=title))
    return source.id


def entry(key: str, **fields: object) -> ArticleInput:
    values: dict[str, object] = {"title": f"Title {key}", "guid": key, "url": f"https://news.example/{key}",
                                 "summary": f"Summary {key}", "published_at": T0}
    values.update(fields)
    return ArticleInput(dedupe_key=key, **values)  # type: ignore[arg-type]


async def rows_by_key(db: asyncpg.Pool) -> dict[str, asyncpg.Record]:
    return {r["dedupe_key"]: r for r in await db.fetch("SELECT * FROM articles")}


async def all_pages(db: asyncpg.Pool, limit: int, filters: ArticleFilter = ArticleFilter()) -> list[store.Article]:
    seen: list[store.Article] = []
    cursor = None
    for _ in range(1000):
        page = await store.list_articles(db, filters, limit=limit, cursor=cursor)
        assert len(page.articles) <= limit
        seen.extend(page.articles)
        if page.next_cursor is None:
            return seen
        assert len(page.articles) == limit  # only a full page promises more
        cursor = page.next_cursor
    raise AssertionError("pagination never ended")


def newest_first(articles: list[store.Article]) -> list[store.Article]:
    # PostgreSQL orders uuid bytewise, as Python's UUID compares.
    return sorted(articles, key=lambda a: (a.published_at, a.id), reverse=True)


# --------------------------------------------------------------------------- upsert


async def test_upsert_is_idempotent(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    batch = [entry(f"k{i}") for i in range(5)]
    first = await store.upsert_articles(db, source_id, batch)
    assert (len(first.inserted), len(first.updated), first.unchanged) == (5, 0, 0)
    assert len(set(first.inserted)) == 5
    for _ in range(2):
        again = await store.upsert_articles(db, source_id, batch)
        assert (again.inserted, again.updated, again.unchanged) == ([], [], 5)
    rows = await rows_by_key(db)
    assert sorted(rows) == [f"k{i}" for i in range(5)]
    assert {r["id"] for r in rows.values()} == set(first.inserted)
    assert await store.count_articles(db) == 5
    assert await store.count_articles(db, source_id) == 5


async def test_upsert_of_nothing(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    assert await store.upsert_articles(db, source_id, []) == store.UpsertResult([], [], 0)


async def test_store_feed_upserts_and_records_success_in_one_statement(db: asyncpg.Pool) -> None:
    source_id = await new_source(db, title=None)  # type: ignore[arg-type]
    success = Success(status=200, next_fetch_in_s=900, etag='"v1"', last_modified="Sun, 01 Mar 2026 12:00:00 GMT",
                      title="Feed", site_url="https://news.example/", language="en", interval_s=1200.4)
    first = await store.store_feed(db, source_id, [entry("a"), entry("b")], success)
    assert (len(first.inserted), first.updated, first.unchanged) == (2, [], 0)
    source = await get_source(db, source_id)
    assert source is not None
    assert (source.last_status, source.etag, source.title, source.language) == (200, '"v1"', "Feed", "en")
    assert (source.articles_added, source.interval_s, source.consecutive_errors) == (2, 1200, 0)
    assert source.last_success_at is not None

    # Only inserted entries count as added; an unchanged one is left alone, a changed one updated.
    again = await store.store_feed(db, source_id, [entry("a"), entry("b", title="New"), entry("c")], success)
    assert (len(again.inserted), len(again.updated), again.unchanged) == (1, 1, 1)
    assert (await get_source(db, source_id)).articles_added == 3  # type: ignore[union-attr]
    assert sorted(await rows_by_key(db)) == ["a", "b", "c"]


async def test_store_feed_without_entries_still_records_success(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    result = await store.store_feed(db, source_id, [], Success(status=200, next_fetch_in_s=60, etag='"e"'))
    assert result == store.UpsertResult([], [], 0)
    source = await get_source(db, source_id)
    assert source is not None and (source.etag, source.last_status, source.articles_added) == ('"e"', 200, 0)

async def test_store_feeds_writes_several_feeds_and_their_sources_in_one_statement(db: asyncpg.Pool) -> None:
    one = await new_source(db, "https://one.example/feed")
    two = await new_source(db, "https://two.example/feed")
    empty = await new_source(db, "https://empty.example/feed")
    await store.upsert_articles(db, two, [entry("kept"), entry("edited")])
    results = await store.store_feeds(db, [
        store.FeedWrite(one, [entry("a"), entry("b")], Success(status=200, next_fetch_in_s=60, etag='"one"')),
        store.FeedWrite(two, [entry("kept"), entry("edited", title="Edited"), entry("new")],
                        Success(status=200, next_fetch_in_s=60, etag='"two"')),
        store.FeedWrite(empty, [], Success(status=200, next_fetch_in_s=60, etag='"empty"')),
    ])
    assert [(len(r.inserted), len(r.updated), r.unchanged) for r in results] == [(2, 0, 0), (1, 1, 1), (0, 0, 0)]
    keys = {(r["source_id"], r["dedupe_key"]): r["id"] for r in await db.fetch("SELECT * FROM articles")}
    assert results[0].inserted == [keys[(one, "a")], keys[(one, "b")]]
    assert results[1].inserted == [keys[(two, "new")]] and results[1].updated == [keys[(two, "edited")]]
    for source_id, etag, added in ((one, '"one"', 2), (two, '"two"', 1), (empty, '"empty"', 0)):
        source = await get_source(db, source_id)
        assert source is not None and (source.etag, source.last_status, source.articles_added) == (etag, 200, added)


async def test_store_feeds_takes_each_source_once(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    success = Success(status=200, next_fetch_in_s=60)
    with pytest.raises(ValueError, match="once"):
        await store.store_feeds(db, [store.FeedWrite(source_id, [entry("a")], success),
                                     store.FeedWrite(source_id, [entry("b")], success)])
    assert await store.count_articles(db) == 0



async def test_mixed_batch_counts_each_outcome(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    await store.upsert_articles(db, source_id, [entry("same"), entry("changes")])
    result = await store.upsert_articles(db, source_id, [entry("same"), entry("changes", title="New title"), entry("new")])
    assert (len(result.inserted), len(result.updated), result.unchanged) == (1, 1, 1)
    rows = await rows_by_key(db)
    assert result.inserted == [rows["new"]["id"]]
    assert result.updated == [rows["changes"]["id"]]


async def test_duplicate_key_in_one_batch_last_wins(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    batch = [entry("dup", title="first version"), entry("other"), entry("dup", title="last version")]
    result = await store.upsert_articles(db, source_id, batch)
    assert (len(result.inserted), len(result.updated), result.unchanged) == (2, 0, 0)
    rows = await rows_by_key(db)
    assert sorted(rows) == ["dup", "other"]
    assert rows["dup"]["title"] == "last version"


async def test_same_key_in_two_sources_is_two_articles(db: asyncpg.Pool) -> None:
    one = await new_source(db, "https://one.example/feed")
    two = await new_source(db, "https://two.example/feed")
    await store.upsert_articles(db, one, [entry("shared")])
    await store.upsert_articles(db, two, [entry("shared")])
    assert await store.count_articles(db) == 2
    assert await store.count_articles(db, one) == 1


async def test_changed_content_updates_but_published_at_stays(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    (article_id,) = (await store.upsert_articles(db, source_id, [entry("a", language="en")])).inserted
    before = await store.get_article(db, article_id)
    assert before is not None

    # Only fields a reader sees count; a moved date alone is not a change.
    moved = await store.upsert_articles(db, source_id, [entry("a", language="en", published_at=T0 + timedelta(days=1))])
    assert (moved.inserted, moved.updated, moved.unchanged) == ([], [], 1)

    changed = entry("a", title="Corrected title", summary="New summary", content="<p>Body</p>", author="Ayşe",
                    categories=("World",), published_at=T0 + timedelta(hours=5), language=None)
    result = await store.upsert_articles(db, source_id, [changed])
    assert (result.inserted, result.updated, result.unchanged) == ([], [article_id], 0)
    after = await store.get_article(db, article_id)
    assert after is not None
    assert (after.title, after.summary, after.content, after.author, after.categories) == (
        "Corrected title", "New summary", "<p>Body</p>", "Ayşe", ["World"])
    assert after.published_at == before.published_at == T0  # never moves: pagination relies on it
    assert after.fetched_at == before.fetched_at
    assert after.updated_at > before.updated_at
    assert after.language == "en"  # an entry without a language keeps the one found before
    assert await store.count_articles(db) == 1


async def test_missing_published_at_gets_the_fetch_time(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    fetched = datetime(2026, 4, 2, 8, 30, 15, 123456, tzinfo=timezone.utc)
    (given,) = (await store.upsert_articles(db, source_id, [entry("given-now", published_at=None)], now=fetched)).inserted
    assert (await store.get_article(db, given)).published_at == fetched  # type: ignore[union-attr]

    start = await db.fetchval("SELECT clock_timestamp()")
    (implicit,) = (await store.upsert_articles(db, source_id, [entry("implicit", published_at=None)])).inserted
    end = await db.fetchval("SELECT clock_timestamp()")
    published = (await store.get_article(db, implicit)).published_at  # type: ignore[union-attr]
    assert start - timedelta(seconds=5) <= published <= end + timedelta(seconds=5)

    # A later crawl of the same entry does not move it to the new fetch time.
    later = fetched + timedelta(hours=3)
    again = await store.upsert_articles(db, source_id, [entry("given-now", published_at=None, title="edited")], now=later)
    assert again.updated == [given]
    assert (await store.get_article(db, given)).published_at == fetched  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "categories",
    [(), ("World",), ("Dünya", "Ekonomi", "Spor"), ("a,b", "c;d", "with space", "{braces}", 'quote"d')],
)
async def test_categories_round_trip(db: asyncpg.Pool, categories: tuple[str, ...]) -> None:
    source_id = await new_source(db)
    (article_id,) = (await store.upsert_articles(db, source_id, [entry("c", categories=categories)])).inserted
    article = await store.get_article(db, article_id)
    assert article is not None
    assert article.categories == list(categories)
    page = await store.list_articles(db)
    assert page.articles[0].categories == list(categories)


async def test_category_change_is_an_update(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    await store.upsert_articles(db, source_id, [entry("c", categories=("World",))])
    result = await store.upsert_articles(db, source_id, [entry("c", categories=("World", "Europe"))])
    assert len(result.updated) == 1
    result = await store.upsert_articles(db, source_id, [entry("c", categories=())])
    assert len(result.updated) == 1
    assert (await store.list_articles(db)).articles[0].categories == []


async def test_concurrent_upserts_of_one_batch(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    batch = [entry(f"k{i:03d}", content=f"body {i}") for i in range(60)]
    results = await asyncio.gather(*(store.upsert_articles(db, source_id, batch) for _ in range(8)))
    assert sum(len(r.inserted) for r in results) == len(batch)
    assert sum(len(r.updated) for r in results) == 0
    assert all(len(r.inserted) + r.unchanged == len(batch) for r in results)
    inserted_ids = [article_id for r in results for article_id in r.inserted]
    assert len(set(inserted_ids)) == len(batch)
    rows = await rows_by_key(db)
    assert sorted(rows) == sorted(e.dedupe_key for e in batch)
    assert {r["id"] for r in rows.values()} == set(inserted_ids)


async def test_concurrent_upserts_of_changed_content(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    await store.upsert_articles(db, source_id, [entry(f"k{i}") for i in range(20)])
    versions = [[entry(f"k{i}", title=f"v{n}") for i in range(20)] for n in range(6)]
    results = await asyncio.gather(*(store.upsert_articles(db, source_id, batch) for batch in versions))
    assert all(r.inserted == [] for r in results)
    assert await store.count_articles(db) == 20
    titles = {r["title"] for r in await db.fetch("SELECT title FROM articles")}
    assert len(titles) == 1 and titles <= {f"v{n}" for n in range(6)}  # one version won, row by row consistent


# --------------------------------------------------------------------------- listing and pagination


async def seed(db: asyncpg.Pool, count: int = 250) -> list[store.Article]:
    source_id = await new_source(db)
    # Few distinct timestamps: most articles tie on published_at and only the id orders them.
    batch = [entry(f"p{i:04d}", published_at=T0 - timedelta(minutes=i % 7)) for i in range(count)]
    result = await store.upsert_articles(db, source_id, batch)
    assert len(result.inserted) == count
    return newest_first((await store.list_articles(db, limit=count + 1)).articles)


@pytest.mark.parametrize("limit", [20, 100, 7, 250, 1000])
async def test_pages_cover_everything_once_in_order(db: asyncpg.Pool, limit: int) -> None:
    expected = await seed(db)
    assert len(expected) == 250
    seen = await all_pages(db, limit)
    assert [a.id for a in seen] == [a.id for a in expected]
    assert len({a.id for a in seen}) == 250


async def test_listing_order_matches_the_database(db: asyncpg.Pool) -> None:
    await seed(db, 50)
    ids = [r["id"] for r in await db.fetch("SELECT id FROM articles ORDER BY published_at DESC, id DESC")]
    assert [a.id for a in await all_pages(db, 20)] == ids


async def test_last_full_page_has_no_cursor(db: asyncpg.Pool) -> None:
    await seed(db, 40)
    first = await store.list_articles(db, limit=20)
    second = await store.list_articles(db, limit=20, cursor=first.next_cursor)
    assert len(second.articles) == 20
    assert second.next_cursor is None


async def test_empty_listing(db: asyncpg.Pool) -> None:
    page = await store.list_articles(db)
    assert page.articles == [] and page.next_cursor is None


async def test_pagination_while_new_articles_arrive(db: asyncpg.Pool) -> None:
    expected = await seed(db)
    source_id = expected[0].source_id
    seen: list[store.Article] = []
    page = await store.list_articles(db, limit=20)
    arrived = 0
    while True:
        seen.extend(page.articles)
        # Between pages, newer articles arrive...
        fresh = [entry(f"new{arrived + i}", published_at=T0 + timedelta(seconds=1 + i)) for i in range(5)]
        # ...and one that ties with the newest ones: it sorts by id on either side of a cursor.
        fresh.append(entry(f"tie{arrived}", published_at=T0))
        arrived += len(fresh)
        assert len((await store.upsert_articles(db, source_id, fresh)).inserted) == len(fresh)
        if page.next_cursor is None:
            break
        page = await store.list_articles(db, limit=20, cursor=page.next_cursor)
    assert not any(a.title.startswith("Title new") for a in seen)  # newer than the first page: not in this walk
    assert len({a.id for a in seen}) == len(seen)  # nothing twice
    assert [a.id for a in seen if not a.title.startswith("Title tie")] == [a.id for a in expected]
    assert [a.id for a in seen] == [a.id for a in newest_first(seen)]
    # A new reader starting now sees the new ones first.
    assert (await store.list_articles(db, limit=1)).articles[0].title.startswith("Title new")


async def test_older_article_arriving_mid_way_shows_up_once(db: asyncpg.Pool) -> None:
    expected = await seed(db, 60)
    first = await store.list_articles(db, limit=20)
    old = await store.upsert_articles(db, expected[0].source_id, [entry("old", published_at=T0 - timedelta(days=30))])
    rest = []
    cursor = first.next_cursor
    while cursor is not None:
        page = await store.list_articles(db, limit=20, cursor=cursor)
        rest.extend(page.articles)
        cursor = page.next_cursor
    ids = [a.id for a in first.articles + rest]
    assert ids == [a.id for a in expected] + old.inserted


async def test_content_only_when_asked(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    await store.upsert_articles(db, source_id, [entry("x", content="<p>full text</p>")])
    assert (await store.list_articles(db)).articles[0].content is None
    with_content = (await store.list_articles(db, with_content=True)).articles[0]
    assert with_content.content == "<p>full text</p>"
    assert with_content.source_title == "Example News"


async def test_limit_must_be_positive(db: asyncpg.Pool) -> None:
    await seed(db, 3)
    with pytest.raises(ValueError):
        await store.list_articles(db, limit=0)


# --------------------------------------------------------------------------- filters


async def test_filters(db: asyncpg.Pool) -> None:
    en = await new_source(db, "https://en.example/feed", "English Daily")
    tr = await new_source(db, "https://tr.example/feed", "Türkçe Gazete")
    await store.upsert_articles(db, en, [
        entry("e1", title="Central bank raises interest rates", language="en", published_at=T0),
        entry("e2", title="Football final tonight", summary="The stadium is full", language="en",
              published_at=T0 - timedelta(hours=1)),
        entry("e3", title="Quiet day", content="Markets closed early; interest in bonds", language="en",
              published_at=T0 - timedelta(days=2)),
        entry("e4", title="Harbour news", summary="A teaser on lighthouses", content="The whole story of the pier",
              language="en", published_at=T0 - timedelta(days=4)),
    ])
    await store.upsert_articles(db, tr, [
        entry("t1", title="Ağaç dikme kampanyası başladı", summary="Gönüllüler şehirde buluştu", language="tr",
              published_at=T0 - timedelta(minutes=30)),
        entry("t2", title="Işık festivali", summary="Çarşı ılık bir akşamda doldu", language="tr",
              published_at=T0 - timedelta(days=3)),
        entry("t3", title="Merkez bankası faiz kararını açıkladı", language="tr", published_at=T0 - timedelta(hours=2)),
    ])

    async def keys(**filters: object) -> list[str]:
        page = await store.list_articles(db, ArticleFilter(**filters), limit=100)  # type: ignore[arg-type]
        return [a.guid for a in page.articles]  # type: ignore[misc]

    assert await keys() == ["e1", "t1", "e2", "t3", "e3", "t2", "e4"]
    assert await keys(source_id=en) == ["e1", "e2", "e3", "e4"]
    assert await keys(source_id=tr) == ["t1", "t3", "t2"]
    assert await keys(source_id=en + tr + 100) == []
    assert await keys(language="tr") == ["t1", "t3", "t2"]
    assert await keys(language="de") == []
    # Full text over the title and the body: the content, or the summary when there is none (a
    # summary beside content is its teaser, not searched twice).
    assert await keys(query="interest") == ["e1", "e3"]
    assert await keys(query="pier") == ["e4"] and await keys(query="harbour") == ["e4"]
    assert await keys(query="lighthouses") == []
    assert await keys(query="stadium") == ["e2"]
    assert await keys(query="bonds") == ["e3"]
    assert await keys(query="INTEREST rates") == ["e1"]
    assert await keys(query='"interest rates"') == ["e1"]
    assert await keys(query="interest -bonds") == ["e1"]
    assert await keys(query="football or festivali") == ["e2", "t2"]
    # Turkish letters (ğ ş ı ç ö ü) are word characters and match as written.
    assert await keys(query="ağaç") == ["t1"]
    assert await keys(query="kampanyası") == ["t1"]
    assert await keys(query="gönüllüler şehirde") == ["t1"]
    assert await keys(query="ılık") == ["t2"]
    assert await keys(query="çarşı") == ["t2"]
    assert await keys(query="AĞAÇ") == ["t1"]
    assert await keys(query="faiz") == ["t3"]
    assert await keys(query="agac") == []  # no accent folding: ğ is not g
    assert await keys(query="nothing-like-this") == []
    assert await keys(query="!!! ::") == []  # no lexemes at all: nothing, not an error
    # since is inclusive.
    assert await keys(since=T0 - timedelta(hours=1)) == ["e1", "t1", "e2"]
    assert await keys(since=T0 + timedelta(seconds=1)) == []
    # Filters combine.
    assert await keys(language="tr", query="bankası") == ["t3"]
    assert await keys(source_id=en, since=T0 - timedelta(days=2), query="interest") == ["e1", "e3"]


async def test_filtered_pagination(db: asyncpg.Pool) -> None:
    one = await new_source(db, "https://one.example/feed")
    two = await new_source(db, "https://two.example/feed")
    await store.upsert_articles(db, one, [entry(f"a{i}", title=f"alpha story {i}", published_at=T0 - timedelta(minutes=i % 3))
                                          for i in range(45)])
    await store.upsert_articles(db, two, [entry(f"b{i}", title=f"alpha other {i}", published_at=T0 - timedelta(minutes=i % 3))
                                          for i in range(45)])
    seen = await all_pages(db, 10, ArticleFilter(source_id=one, query="alpha"))
    assert len(seen) == 45 and len({a.id for a in seen}) == 45
    assert all(a.source_id == one for a in seen)
    assert [a.id for a in seen] == [a.id for a in newest_first(seen)]


# --------------------------------------------------------------------------- cursors and lookups


def test_cursor_round_trip() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=3)))
    article_id = uuid.uuid4()
    cursor = store.encode_cursor(when, article_id)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe as is
    assert store.decode_cursor(cursor) == (when, article_id)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage!!",
        "ğüş",
        "%%%%",
        _b64(b"\xff\xfe\x00junk"),
        _b64(b"not json at all"),
        _b64(b"[]"),
        _b64(b"7"),
        _b64(b"null"),
        _b64(json.dumps({"a": 1, "b": 2}).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00", str(uuid.uuid4())]).encode()),  # naive timestamp
        _b64(json.dumps(["2026-01-01", str(uuid.uuid4())]).encode()),  # a date, no time zone
        _b64(json.dumps(["yesterday", str(uuid.uuid4())]).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00+00:00", "not-a-uuid"]).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00+00:00", 5]).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00+00:00", ["x"]]).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00+00:00", None]).encode()),
        _b64(json.dumps([20260101, str(uuid.uuid4())]).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00+00:00", str(uuid.uuid4()), "extra"]).encode()),
    ],
)
async def test_invalid_cursors_raise_cursor_error(db: asyncpg.Pool, cursor: str) -> None:
    with pytest.raises(CursorError):
        store.decode_cursor(cursor)
    with pytest.raises(CursorError):
        await store.list_articles(db, cursor=cursor)


async def test_get_article(db: asyncpg.Pool) -> None:
    source_id = await new_source(db)
    (article_id,) = (await store.upsert_articles(db, source_id, [entry(
        "g", canonical_url="https://news.example/g", author="Ali Veli", content="text", language="tr")])).inserted
    article = await store.get_article(db, article_id)
    assert article is not None
    assert (article.id, article.source_id, article.source_title) == (article_id, source_id, "Example News")
    assert (article.guid, article.url, article.canonical_url) == ("g", "https://news.example/g", "https://news.example/g")
    assert (article.title, article.author, article.content, article.language) == ("Title g", "Ali Veli", "text", "tr")
    assert article.published_at == T0
    assert await store.get_article(db, uuid.uuid4()) is None


async def test_same_canonical_url_with_a_new_guid_is_one_article(db) -> None:  # type: ignore[no-untyped-def]
    from cluster.store.articles import ArticleInput, count_articles, upsert_articles
    from cluster.store.sources import NewSource, Success, add_source, get_source

    source, _ = await add_source(db, NewSource(url="http://127.0.0.1/canonical.xml"))
    first = ArticleInput(dedupe_key="guid-1", guid="guid-1", title="Story", canonical_url="http://127.0.0.1/story")
    again = ArticleInput(dedupe_key="guid-2", guid="guid-2", title="Story, updated",
                         canonical_url="http://127.0.0.1/story")
    other = ArticleInput(dedupe_key="guid-3", guid="guid-3", title="Other", canonical_url="http://127.0.0.1/other")
    assert len((await upsert_articles(db, source.id, [first])).inserted) == 1
    result = await upsert_articles(db, source.id, [again, other])
    assert len(result.inserted) == 1 and len(result.updated) == 1
    assert await count_articles(db, source.id) == 2
    titles = {r["title"] for r in await db.fetch("SELECT title FROM articles WHERE source_id = $1", source.id)}
    assert titles == {"Story, updated", "Other"}
    # Within one batch too: two guids, one canonical URL, one row (the later entry wins).
    batch = [ArticleInput(dedupe_key=f"g{i}", guid=f"g{i}", title=f"v{i}", canonical_url="http://127.0.0.1/dup")
             for i in range(3)]
    assert len((await upsert_articles(db, source.id, batch)).inserted) == 1
    assert await db.fetchval("SELECT title FROM articles WHERE canonical_url = 'http://127.0.0.1/dup'") == "v2"
