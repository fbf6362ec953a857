"""Preferences (validation naming the field), reading state and feedback (timestamps, events,
upserts under concurrency), and the history."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from fastapi import FastAPI

from tests.deployments.auth.support import error_of, make_account
from tests.deployments.support import Seeder


async def test_preferences_defaults_patch_and_validation(api: httpx.AsyncClient, app: FastAPI,
                                                         accounts_db: asyncpg.Pool) -> None:
    alice = await make_account(app, accounts_db, "alice@example.org")
    defaults = (await api.get("/api/v1/me/preferences", headers=alice.headers)).json()
    assert defaults == {"topics_followed": [], "topics_muted": [], "languages": [], "time_zone": "UTC",
                        "digest_enabled": False, "digest_hour": 7, "offline_reading": False, "updated_at": None}
    patched = await api.patch("/api/v1/me/preferences", headers=alice.headers, json={
        "topics_followed": ["technology", "science", "technology"], "languages": ["tr", "en"],
        "time_zone": "Europe/Istanbul", "digest_enabled": True, "digest_hour": 18})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["topics_followed"] == ["science", "technology"] and body["languages"] == ["en", "tr"]
    assert body["time_zone"] == "Europe/Istanbul" and body["digest_hour"] == 18 and body["updated_at"]
    partial = (await api.patch("/api/v1/me/preferences", headers=alice.headers, json={"offline_reading": True})).json()
    assert partial["offline_reading"] is True and partial["time_zone"] == "Europe/Istanbul"

    invalid = {
        "time_zone": ({"time_zone": "Mars/Olympus_Mons"}, "IANA"),
        "digest_hour": ({"digest_hour": 24}, "less than or equal to 23"),
        "languages": ({"languages": ["english"]}, "ISO 639"),
        "topics_muted": ({"topics_muted": ["no-such-topic"]}, "unknown topics"),
        "offline_reading": ({"offline_reading": None}, "must not be null"),
        "colour": ({"colour": "blue"}, "Extra inputs"),
    }
    for field, (body_in, text) in invalid.items():
        response = await api.patch("/api/v1/me/preferences", headers=alice.headers, json=body_in)
        assert response.status_code == 422, (field, response.text)
        detail = error_of(response)["details"][0]
        assert detail["loc"] == ["body", field] and text in detail["msg"], (field, detail)
    clash = await api.patch("/api/v1/me/preferences", headers=alice.headers, json={"topics_muted": ["science"]})
    assert clash.status_code == 422 and error_of(clash)["details"][0]["loc"] == ["body", "topics_muted"]
    # Nothing invalid was stored; and Bob's preferences are his own.
    assert (await api.get("/api/v1/me/preferences", headers=alice.headers)).json()["topics_muted"] == []
    bob = await make_account(app, accounts_db, "bob@example.org")
    assert (await api.get("/api/v1/me/preferences", headers=bob.headers)).json()["time_zone"] == "UTC"


async def test_reading_state_feedback_and_events(api: httpx.AsyncClient, app: FastAPI,
                                                 accounts_db: asyncpg.Pool) -> None:
    seed = Seeder(accounts_db)
    article_ids = await seed.articles(await seed.source(title="Daily"), 3)
    alice = await make_account(app, accounts_db, "alice@example.org")
    first = article_ids[0]
    url = f"/api/v1/me/articles/{first}/state"
    empty = (await api.get(url, headers=alice.headers)).json()
    assert empty["open_count"] == 0 and empty["updated_at"] is None

    opened = (await api.patch(url, headers=alice.headers, json={"opened": True})).json()
    assert opened["open_count"] == 1 and opened["first_opened_at"] and opened["read_at"] is None
    read = (await api.patch(url, headers=alice.headers, json={"opened": True, "read": True, "dwell_ms": 42000})).json()
    assert read["open_count"] == 2 and read["read_at"] and read["dwell_ms"] == 42000
    liked = (await api.patch(url, headers=alice.headers, json={"reaction": "like", "rating": 5, "saved": True})).json()
    assert liked["reaction"] == "like" and liked["rating"] == 5 and liked["rated_at"] and liked["saved_at"]
    changed = (await api.patch(url, headers=alice.headers, json={"reaction": "dislike", "rating": 2})).json()
    assert changed["reaction"] == "dislike" and changed["rating"] == 2
    cleared = (await api.patch(url, headers=alice.headers, json={"reaction": None, "rating": None, "saved": False,
                                                                 "hidden": True, "read": False})).json()
    assert cleared["reaction"] is None and cleared["rating"] is None and cleared["saved_at"] is None
    assert cleared["hidden_at"] and cleared["read_at"] is None and cleared["dwell_ms"] == 42000
    assert await accounts_db.fetchval("SELECT count(*) FROM article_states") == 1
    kinds = [row["kind"] for row in await accounts_db.fetch(
        "SELECT kind FROM feedback_events WHERE user_id = $1 ORDER BY id", alice.id)]
    assert kinds == ["opened", "opened", "read", "like", "rating", "saved", "dislike", "rating", "unread",
                     "unreact", "unrate", "unsaved", "hidden"]
    read_event = await accounts_db.fetchrow("SELECT dwell_ms, created_at FROM feedback_events WHERE kind = 'read'")
    assert read_event["dwell_ms"] == 42000 and read_event["created_at"] is not None

    for body, field in (({"rating": 6}, "rating"), ({"rating": 0}, "rating"), ({"reaction": "love"}, "reaction"),
                        ({"dwell_ms": -1}, "dwell_ms"), ({"read": None}, "read")):
        response = await api.patch(url, headers=alice.headers, json=body)
        assert response.status_code == 422 and error_of(response)["details"][0]["loc"] == ["body", field]
    missing = await api.patch("/api/v1/me/articles/00000000-0000-0000-0000-000000000000/state", headers=alice.headers,
                              json={"read": True})
    assert missing.status_code == 404
    assert (await api.get("/api/v1/me/articles/00000000-0000-0000-0000-000000000000/state",
                          headers=alice.headers)).status_code == 404


async def test_concurrent_feedback_upserts_lose_nothing(api: httpx.AsyncClient, app: FastAPI,
                                                        accounts_db: asyncpg.Pool) -> None:
    seed = Seeder(accounts_db)
    [article_id] = await seed.articles(await seed.source(), 1)
    alice = await make_account(app, accounts_db, "alice@example.org")
    url = f"/api/v1/me/articles/{article_id}/state"
    answers = await asyncio.gather(*(api.patch(url, headers=alice.headers,
                                               json={"opened": True, "dwell_ms": 100, "rating": 1 + n % 5})
                                     for n in range(24)))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
    state = (await api.get(url, headers=alice.headers)).json()
    assert state["open_count"] == 24 and state["dwell_ms"] == 2400 and 1 <= state["rating"] <= 5
    assert await accounts_db.fetchval("SELECT count(*) FROM article_states") == 1
    assert await accounts_db.fetchval("SELECT count(*) FROM feedback_events WHERE kind = 'rating'") == 24


async def test_history_newest_activity_first_with_filters(api: httpx.AsyncClient, app: FastAPI,
                                                          accounts_db: asyncpg.Pool) -> None:
    seed = Seeder(accounts_db)
    ids = await seed.articles(await seed.source(title="Daily"), 5)
    alice = await make_account(app, accounts_db, "alice@example.org")
    bob = await make_account(app, accounts_db, "bob@example.org")
    for article_id in ids:
        await api.patch(f"/api/v1/me/articles/{article_id}/state", headers=alice.headers, json={"read": True})
    await api.patch(f"/api/v1/me/articles/{ids[1]}/state", headers=alice.headers, json={"saved": True})
    await api.patch(f"/api/v1/me/articles/{ids[0]}/state", headers=bob.headers, json={"saved": True})

    page = (await api.get("/api/v1/me/history", headers=alice.headers, params={"limit": 3})).json()
    assert [i["article"]["id"] for i in page["items"]] == [ids[1], ids[4], ids[3]]
    assert page["items"][0]["article"]["source_title"] == "Daily" and page["next_cursor"]
    rest = (await api.get("/api/v1/me/history", headers=alice.headers,
                          params={"limit": 3, "cursor": page["next_cursor"]})).json()
    assert [i["article"]["id"] for i in rest["items"]] == [ids[2], ids[0]] and rest["next_cursor"] is None
    saved = (await api.get("/api/v1/me/history", headers=alice.headers, params={"filter": "saved"})).json()
    assert [i["article"]["id"] for i in saved["items"]] == [ids[1]]
    assert [i["article"]["id"] for i in (await api.get("/api/v1/me/history", headers=bob.headers)).json()["items"]] == [ids[0]]
    bad = await api.get("/api/v1/me/history", headers=alice.headers, params={"cursor": "nonsense"})
    assert bad.status_code == 422 and error_of(bad)["details"][0]["loc"] == ["query", "cursor"]
