"""Subscriptions and folders: by URL (feed discovery against a local feed server), from the
catalog, per-user OPML import/export, unsubscribing keeps sources others follow."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from cluster.samplefeeds import SampleFeedServer, start_sample_server
from tests.deployments.auth.support import error_of, make_account
from tests.deployments.support import Seeder


@pytest.fixture(scope="module")
def feeds() -> Iterator[SampleFeedServer]:
    with start_sample_server() as server:
        yield server


async def test_subscribe_by_url_discovers_the_feed(api: httpx.AsyncClient, app: FastAPI, accounts_db: asyncpg.Pool,
                                                   feeds: SampleFeedServer) -> None:
    alice = await make_account(app, accounts_db, "alice@example.org")
    bob = await make_account(app, accounts_db, "bob@example.org")
    created = await api.post("/api/v1/me/subscriptions", headers=alice.headers, json={"url": feeds.base_url + "/"})
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["kind"] == "feed" and item["url"].startswith(feeds.base_url) and item["url"] != feeds.base_url + "/"
    assert item["folder_id"] is None and item["health"]["enabled"] is True
    # Bob subscribing to the same site reuses the catalog's source (no second source).
    again = await api.post("/api/v1/me/subscriptions", headers=bob.headers, json={"url": item["url"]})
    assert again.status_code == 201 and again.json()["source_id"] == item["source_id"]
    repeat = await api.post("/api/v1/me/subscriptions", headers=bob.headers, json={"url": item["url"]})
    assert repeat.status_code == 200
    assert await accounts_db.fetchval("SELECT count(*) FROM sources") == 1

    # Alice unsubscribes: Bob still follows it, and the source stays.
    assert (await api.delete(f"/api/v1/me/subscriptions/{item['source_id']}", headers=alice.headers)).status_code == 204
    assert (await api.delete(f"/api/v1/me/subscriptions/{item['source_id']}", headers=alice.headers)).status_code == 404
    assert (await api.get("/api/v1/me/subscriptions", headers=alice.headers)).json()["items"] == []
    assert [s["source_id"] for s in (await api.get("/api/v1/me/subscriptions", headers=bob.headers)).json()["items"]] == [item["source_id"]]
    assert await accounts_db.fetchval("SELECT count(*) FROM sources") == 1


async def test_bad_urls_name_the_field(api: httpx.AsyncClient, app: FastAPI, accounts_db: asyncpg.Pool,
                                       closed_port: int) -> None:
    alice = await make_account(app, accounts_db, "alice@example.org")
    for body in ({"url": "ftp://example.org/feed"}, {"url": f"http://127.0.0.1:{closed_port}/feed"},
                 {}, {"url": "https://example.org/feed", "source_id": 1}):
        response = await api.post("/api/v1/me/subscriptions", headers=alice.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert error_of(response)["details"][0]["loc"] == ["body", "url"]
    missing = await api.post("/api/v1/me/subscriptions", headers=alice.headers, json={"source_id": 999999})
    assert missing.status_code == 404


async def test_catalog_subscriptions_and_folders(api: httpx.AsyncClient, app: FastAPI,
                                                 accounts_db: asyncpg.Pool) -> None:
    seed = Seeder(accounts_db)
    first, second = await seed.source(title="First"), await seed.source(title="Second")
    alice = await make_account(app, accounts_db, "alice@example.org")
    bob = await make_account(app, accounts_db, "bob@example.org")
    folder = (await api.post("/api/v1/me/folders", headers=alice.headers, json={"name": "  Tech   news "})).json()
    assert folder["name"] == "Tech news" and folder["subscriptions"] == 0
    duplicate = await api.post("/api/v1/me/folders", headers=alice.headers, json={"name": "TECH NEWS"})
    assert duplicate.status_code == 409
    bobs_folder = (await api.post("/api/v1/me/folders", headers=bob.headers, json={"name": "Tech news"})).json()

    sub = await api.post("/api/v1/me/subscriptions", headers=alice.headers,
                         json={"source_id": first, "folder_id": folder["id"], "title": "My first"})
    assert sub.status_code == 201 and sub.json()["folder_name"] == "Tech news" and sub.json()["title"] == "My first"
    # Bob's folder id is not Alice's to use.
    foreign = await api.post("/api/v1/me/subscriptions", headers=alice.headers,
                             json={"source_id": second, "folder_id": bobs_folder["id"]})
    assert foreign.status_code == 404
    await api.post("/api/v1/me/subscriptions", headers=alice.headers, json={"source_id": second})
    moved = await api.patch(f"/api/v1/me/subscriptions/{second}", headers=alice.headers, json={"folder_id": folder["id"]})
    assert moved.status_code == 200 and moved.json()["folder_id"] == folder["id"]
    renamed = await api.patch(f"/api/v1/me/subscriptions/{first}", headers=alice.headers, json={"title": None})
    assert renamed.json()["title"] == "First" and renamed.json()["custom_title"] is None
    assert (await api.patch(f"/api/v1/me/subscriptions/{first}", headers=bob.headers, json={"title": "x"})).status_code == 404

    folders = (await api.get("/api/v1/me/folders", headers=alice.headers)).json()["items"]
    assert [(f["name"], f["subscriptions"]) for f in folders] == [("Tech news", 2)]
    assert (await api.patch(f"/api/v1/me/folders/{folder['id']}", headers=bob.headers, json={"name": "Mine"})).status_code == 404
    assert (await api.delete(f"/api/v1/me/folders/{folder['id']}", headers=bob.headers)).status_code == 404
    assert (await api.patch(f"/api/v1/me/folders/{folder['id']}", headers=alice.headers,
                            json={"name": "World"})).json()["name"] == "World"
    assert (await api.delete(f"/api/v1/me/folders/{folder['id']}", headers=alice.headers)).status_code == 204
    items = (await api.get("/api/v1/me/subscriptions", headers=alice.headers)).json()["items"]
    assert {i["source_id"] for i in items} == {first, second} and all(i["folder_id"] is None for i in items)


async def test_opml_import_and_export_per_user(api: httpx.AsyncClient, app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    alice = await make_account(app, accounts_db, "alice@example.org")
    bob = await make_account(app, accounts_db, "bob@example.org")
    opml = """<?xml version="1.0"?><opml version="2.0"><head><title>mine</title></head><body>
      <outline text="World"><outline type="rss" text="One" xmlUrl="https://one.example.org/feed.xml"/>
        <outline type="rss" text="Two" xmlUrl="https://two.example.org/rss"/></outline>
      <outline type="rss" text="Loose" xmlUrl="https://loose.example.org/atom.xml"/>
      <outline type="rss" text="Bad" xmlUrl="javascript:alert(1)"/></body></opml>"""
    imported = await api.post("/api/v1/me/subscriptions/opml", headers={**alice.headers, "Content-Type": "text/x-opml"},
                              content=opml)
    assert imported.status_code == 200, imported.text
    body = imported.json()
    assert (body["subscribed"], body["already_followed"], body["sources_added"], len(body["rejected"])) == (3, 0, 3, 1)
    again = (await api.post("/api/v1/me/subscriptions/opml", headers=alice.headers, content=opml)).json()
    assert (again["subscribed"], again["already_followed"], again["sources_added"]) == (0, 3, 0)
    by_bob = (await api.post("/api/v1/me/subscriptions/opml", headers=bob.headers, content=opml)).json()
    assert (by_bob["subscribed"], by_bob["sources_added"]) == (3, 0)

    exported = await api.get("/api/v1/me/subscriptions/opml", headers=alice.headers)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/x-opml")
    assert "attachment" in exported.headers["content-disposition"]
    text = exported.text
    assert 'text="World"' in text and "https://one.example.org/feed.xml" in text and "loose.example.org" in text
    folders = (await api.get("/api/v1/me/folders", headers=alice.headers)).json()["items"]
    assert [f["name"] for f in folders] == ["World"]
    # Bob's export is his own.
    assert (await api.delete(f"/api/v1/me/subscriptions/{(await api.get('/api/v1/me/subscriptions', headers=bob.headers)).json()['items'][0]['source_id']}",
                             headers=bob.headers)).status_code == 204
    assert len((await api.get("/api/v1/me/subscriptions", headers=alice.headers)).json()["items"]) == 3

    broken = await api.post("/api/v1/me/subscriptions/opml", headers=alice.headers, content="<opml><body>")
    assert broken.status_code == 422 and error_of(broken)["details"][0]["loc"] == ["body", "opml"]
    entity = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><opml version="2.0"><body>'
              '<outline xmlUrl="https://x.example.org/&e;"/></body></opml>')
    assert (await api.post("/api/v1/me/subscriptions/opml", headers=alice.headers, content=entity)).status_code == 422
    huge = await api.post("/api/v1/me/subscriptions/opml", headers=alice.headers, content=b" " * (2 * 1024 * 1024 + 1))
    assert huge.status_code == 413
