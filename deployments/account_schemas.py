"""Request and response models of the per-user endpoints: subscriptions, folders, preferences,
reading state and feedback, history, and the admin views."""

from __future__ import annotations

import json
import re
import uuid
import zoneinfo
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cluster.store.error_logs import ErrorLog
from deployments.schemas import SourceHealth

LANGUAGE = re.compile(r"^[a-z]{2,3}$")
MAX_LIST = 100


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_null(value: Any, info: ValidationInfo) -> Any:
    # Validators run only for fields the client sent: null is refused by name, omission is fine.
    if value is None:
        raise ValueError(f"{info.field_name} must not be null (omit it to leave it unchanged)")
    return value


# --------------------------------------------------------------------------- preferences


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@lru_cache(maxsize=1)
def topic_keys() -> frozenset[str]:
    """The topic catalog the enrichment assigns from (NEWSRAY_ENRICH_TOPICS_FILE, else bundled)."""
    from cluster.settings import get_settings

    path = get_settings().enrich_topics_file
    raw = path.read_text() if path else resources.files("cluster.data").joinpath("topics.json").read_text()
    return frozenset(str(topic["key"]) for topic in json.loads(raw)["topics"])


def _topics(values: list[str], field: str) -> list[str]:
    known = topic_keys()
    unknown = sorted({value for value in values if value not in known})
    if unknown:
        raise ValueError(f"unknown topics {unknown}; known: {sorted(known)}")
    return sorted(set(values))


class PreferencesOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    topics_followed: list[str]
    topics_muted: list[str]
    languages: list[str]
    time_zone: str
    digest_enabled: bool
    digest_hour: int = Field(ge=0, le=23)
    offline_reading: bool
    updated_at: datetime | None


class PreferencesPatch(_In):
    """Only the fields sent change."""

    topics_followed: list[str] | None = Field(default=None, max_length=MAX_LIST)
    topics_muted: list[str] | None = Field(default=None, max_length=MAX_LIST)
    languages: list[str] | None = Field(default=None, max_length=20, description="ISO 639 codes, e.g. en, tr.")
    time_zone: str | None = Field(default=None, max_length=64, description="An IANA name, e.g. Europe/Istanbul.")
    digest_enabled: bool | None = None
    digest_hour: int | None = Field(default=None, ge=0, le=23, description="Local hour of the daily digest.")
    offline_reading: bool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: Any, info: ValidationInfo) -> Any:
        return _not_null(value, info)

    @field_validator("topics_followed", "topics_muted")
    @classmethod
    def _known_topics(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _topics(value, info.field_name or "topics")

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not LANGUAGE.match(item)]
        if bad:
            raise ValueError(f"not ISO 639 language codes: {bad[:5]}")
        return sorted(set(value))

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        if value not in time_zones():
            raise ValueError(f"{value[:64]!r} is not an IANA time zone name (e.g. Europe/Istanbul)")
        return value


# --------------------------------------------------------------------------- reading state


class ArticleStatePatch(_In):
    """Only the fields sent change; `reaction` or `rating` sent as null clear them."""

    opened: bool | None = Field(default=None, description="true records one more visit.")
    read: bool | None = None
    dwell_ms: int | None = Field(default=None, ge=0, le=86_400_000, description="Time spent, added to the total.")
    reaction: Literal["like", "dislike"] | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    saved: bool | None = None
    hidden: bool | None = None

    @field_validator("opened", "read", "dwell_ms", "saved", "hidden", mode="before")
    @classmethod
    def _no_null(cls, value: Any, info: ValidationInfo) -> Any:
        return _not_null(value, info)


class ArticleStateOut(BaseModel):
    article_id: uuid.UUID
    first_opened_at: datetime | None
    last_opened_at: datetime | None
    open_count: int
    read_at: datetime | None
    dwell_ms: int
    reaction: Literal["like", "dislike"] | None
    reacted_at: datetime | None
    rating: int | None
    rated_at: datetime | None
    saved_at: datetime | None
    hidden_at: datetime | None
    updated_at: datetime | None


class HistoryArticle(BaseModel):
    id: uuid.UUID
    title: str
    url: str | None
    source_id: int
    source_title: str | None
    published_at: datetime


class HistoryItemOut(BaseModel):
    article: HistoryArticle
    state: ArticleStateOut


class HistoryOut(BaseModel):
    items: list[HistoryItemOut]
    next_cursor: str | None


# --------------------------------------------------------------------------- subscriptions


def _clean_name(value: str) -> str:
    value = " ".join(value.split())
    if not value or any(ord(ch) < 0x20 for ch in value):
        raise ValueError("must be non-empty printable text")
    return value


class SubscribeIn(_In):
    """Either `url` (a feed or a site; its feed is discovered) or `source_id` (from the catalog)."""

    url: str | None = Field(default=None, max_length=2000)
    source_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    folder_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    title: str | None = Field(default=None, min_length=1, max_length=300, description="Your own name for it.")

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else _clean_name(value)


class SubscriptionPatch(_In):
    """`folder_id` null moves it out of its folder; `title` null goes back to the source's."""

    folder_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    title: str | None = Field(default=None, min_length=1, max_length=300)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        return None if value is None else _clean_name(value)


class SubscriptionOut(BaseModel):
    source_id: int
    url: str
    kind: Literal["feed", "site"]
    title: str | None = Field(description="Your title if set, else the source's.")
    custom_title: str | None
    source_title: str | None
    site_url: str | None
    language: str | None
    folder_id: int | None
    folder_name: str | None
    created_at: datetime
    health: "SubscriptionHealth"


class SubscriptionHealth(BaseModel):
    enabled: bool
    last_success_at: datetime | None
    last_error: str | None
    consecutive_errors: int


SubscriptionOut.model_rebuild()


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class FolderIn(_In):
    name: str = Field(min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _clean_name(value)


class FolderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at: datetime
    subscriptions: int


class FolderList(BaseModel):
    items: list[FolderOut]


class RejectedOutline(BaseModel):
    url: str
    reason: str


class OpmlImportOut(BaseModel):
    subscribed: int = Field(description="New subscriptions.")
    already_followed: int
    sources_added: int = Field(description="Sources new to the catalog.")
    rejected: list[RejectedOutline]


# --------------------------------------------------------------------------- admin


class AdminUserOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Literal["reader", "admin"]
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    mfa_enabled: bool


class AdminUserList(BaseModel):
    items: list[AdminUserOut]
    total: int
    limit: int
    offset: int


class AdminSourceOut(BaseModel):
    id: int
    url: str
    kind: Literal["feed", "site"]
    title: str | None
    followers: int
    health: SourceHealth


class AdminSourceList(BaseModel):
    items: list[AdminSourceOut]
    total: int
    failing: int


class ErrorLogList(BaseModel):
    # The store's record is the wire format as it is: nothing in it is internal.
    items: list[ErrorLog]
