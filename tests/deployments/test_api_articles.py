"""GET /api/v1/articles and /api/v1/articles/{id} against a real PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.deployments.support import BASE_TIME, Seeder


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == status
    assert error["message"].startswith("api: ")
    assert "Traceback" not in response.text
    return error


async def test_newest_first_with_summary_but_no_content(client: httpx.AsyncClient, seed: Seeder) -> None:
    source_id = await seed.source(title="Daily Example")
    ids = await seed.articles(source_id, 25)
    response = await client.get("/api/v1/articles")
    assert response.status_code == 200
    body = response.json()
    assert len(body["items"]) == 20 and body["next_cursor"]
    first = body["items"][0]
    # Newest first: the last inserted (latest published_at) leads.
    assert first["id"] == ids[-1]
    assert [item["published_at"] for item in body["items"]] == sorted(
        (item["published_at"] for item in body["items"]), reverse=True)
    assert first["title"] == "Article 24" and first["summary"] == "Summary of a 24"
    assert first["source_id"] == source_id and first["source_title"] == "Daily Example"
    assert first["url"] == "https://example.org/a/24" and first["language"] == "en"
    assert "content" not in first


async def test_pages_have_no_gaps_or_duplicates_while_articles_arrive(client: httpx.AsyncClient, seed: Seeder) -> None:
    source_id = await seed.source()
    original = await seed.articles(source_id, 47)
    seen: list[str] = []
    cursor: str | None = None
    for page_number in range(20):  # bounded: 47 articles in pages of 10 need 5
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/v1/articles", params=params)).json()
        seen.extend(item["id"] for item in body["items"])
        # Newer articles land between page fetches, as a crawl would add them.
        await seed.articles(source_id, 3, start=BASE_TIME + timedelta(days=1 + page_number), prefix=f"new{page_number}")
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert cursor is None
    assert len(seen) == len(set(seen)) == len(original)
    assert set(seen) == set(original)
    assert seen == list(reversed(original))


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
async def test_limit_out_of_bounds_is_422(client: httpx.AsyncClient, limit: str) -> None:
    error = assert_error(await client.get("/api/v1/articles", params={"limit": limit}), 422)
    assert error["details"][0]["loc"] == ["query", "limit"]


async def test_limit_bounds_are_inclusive(client: httpx.AsyncClient, seed: Seeder) -> None:
    source_id = await seed.source()
    await seed.articles(source_id, 105)
    for limit, expected in ((1, 1), (100, 100)):
        body = (await client.get("/api/v1/articles", params={"limit": limit})).json()
        assert len(body["items"]) == expected and body["next_cursor"]


@pytest.mark.parametrize("cursor", [
    "not-a-cursor!",
    base64.urlsafe_b64encode(b'["yesterday","x"]').decode().rstrip("="),
    base64.urlsafe_b64encode(b'["2025-01-01T00:00:00","00000000-0000-0000-0000-000000000000"]').decode(),
    base64.urlsafe_b64encode(b"[5, 5]").decode(),
    base64.urlsafe_b64encode(b'{"a": 1}').decode(),
    "",
])
async def test_invalid_cursor_is_422_with_details(client: httpx.AsyncClient, db: object, cursor: str) -> None:
    response = await client.get("/api/v1/articles", params={"cursor": cursor})
    if cursor == "":
        # An empty cursor is "no cursor": the first page.
        assert response.status_code == 200
        return
    error = assert_error(response, 422)
    assert error["details"] == [{"loc": ["query", "cursor"], "msg": error["details"][0]["msg"], "type": "value_error"}]
    assert "cursor" in error["details"][0]["msg"]


@pytest.mark.parametrize(("name", "value"), [
    ("source", str(2**63)),  # beyond PostgreSQL's bigint
    ("source", "0"),
    ("q", "nul\x00byte"),  # PostgreSQL text cannot hold NUL
    ("q", "x" * 201),
    ("language", "e"),
    ("language", "en'; DROP TABLE articles; --"),
])
async def test_values_postgresql_would_refuse_are_422(client: httpx.AsyncClient, name: str, value: str) -> None:
    error = assert_error(await client.get("/api/v1/articles", params={name: value}), 422)
    assert error["details"][0]["loc"] == ["query", name]


async def test_language_tags_with_regions_are_accepted(client: httpx.AsyncClient, db: object) -> None:
    for tag in ("en", "pt-BR", "zh_Hant", "tur"):
        assert (await client.get("/api/v1/articles", params={"language": tag})).status_code == 200


@pytest.mark.parametrize("since", ["2025-03-01T12:00:00", "last tuesday", "2025-13-01T00:00:00Z"])
async def test_invalid_or_naive_since_is_422(client: httpx.AsyncClient, since: str) -> None:
    error = assert_error(await client.get("/api/v1/articles", params={"since": since}), 422)
    assert error["details"][0]["loc"] == ["query", "since"]


async def test_filters(client: httpx.AsyncClient, seed: Seeder) -> None:
    english = await seed.source(title="English Daily")
    turkish = await seed.source(title="Türkçe Gazete", language="tr")
    await seed.articles(english, 5, title="Markets rally {n}", prefix="en")
    await seed.articles(turkish, 4, title="Ekonomi haberi {n}", prefix="tr", language="tr",
                        start=BASE_TIME + timedelta(hours=1))

    async def ids_for(**params: str | int) -> list[str]:
        response = await client.get("/api/v1/articles", params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        return [item["title"] for item in response.json()["items"]]

    assert len(await ids_for(source=english)) == 5
    assert all(title.startswith("Ekonomi") for title in await ids_for(source=turkish))
    assert len(await ids_for(language="tr")) == 4
    assert await ids_for(language="de") == []
    assert sorted(await ids_for(q="markets")) == [f"Markets rally {n}" for n in range(5)]
    assert await ids_for(q="ekonomi", language="en") == []
    # since is inclusive: the English articles at 12:03 and 12:04, all Turkish ones (13:00+).
    since = (BASE_TIME + timedelta(minutes=3)).isoformat()
    assert len(await ids_for(since=since)) == 2 + 4
    # The same instant written with another UTC offset.
    assert len(await ids_for(since="2025-03-01T14:03:00+02:00")) == 2 + 4
    assert await ids_for(source=999999) == []
    assert_error(await client.get("/api/v1/articles", params={"source": "abc"}), 422)


async def test_filters_keep_pagination(client: httpx.AsyncClient, seed: Seeder) -> None:
    english = await seed.source()
    other = await seed.source()
    mine = await seed.articles(english, 12, prefix="mine")
    await seed.articles(other, 12, prefix="other")
    first = (await client.get("/api/v1/articles", params={"source": english, "limit": 8})).json()
    second = (await client.get("/api/v1/articles", params={"source": english, "limit": 8,
                                                            "cursor": first["next_cursor"]})).json()
    assert second["next_cursor"] is None
    assert [i["id"] for i in first["items"] + second["items"]] == list(reversed(mine))


async def test_one_article_includes_content(client: httpx.AsyncClient, seed: Seeder) -> None:
    source_id = await seed.source(title="Long Reads")
    [article_id] = await seed.articles(source_id, 1, content="<p>All the words</p>")
    response = await client.get(f"/api/v1/articles/{article_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == article_id and body["content"] == "<p>All the words</p>"
    assert body["source_title"] == "Long Reads" and body["guid"] == "a-0"
    assert body["published_at"].startswith("2025-03-01T12:00:00")


async def test_unknown_article_is_404_json(client: httpx.AsyncClient, db: object) -> None:
    missing = uuid.uuid4()
    error = assert_error(await client.get(f"/api/v1/articles/{missing}"), 404)
    assert str(missing) in error["message"]


@pytest.mark.parametrize("bad_id", ["42", "not-a-uuid", "123e4567-e89b-12d3-a456-42661417400"])
async def test_malformed_article_id_is_422_json(client: httpx.AsyncClient, bad_id: str) -> None:
    error = assert_error(await client.get(f"/api/v1/articles/{bad_id}"), 422)
    assert error["details"][0]["loc"] == ["path", "article_id"]
