"""/api/v1/me/subscriptions and /api/v1/me/folders: what the signed-in user follows.

Subscribing by URL reuses the crawler's feed discovery (through cluster.components, as the
CLI does: deployments imports only `cluster`); a URL already in the catalog needs no fetch.
Unsubscribing never deletes a source: the catalog is shared.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from cluster import components
from cluster.opml import OpmlError, parse_opml, to_opml
from cluster.store import subscriptions as store
from cluster.store.sources import NewSource, add_source
from cluster.store.subscriptions import FolderExistsError, FolderNotFoundError, SourceNotFoundError, Subscription
from cluster.urls import normalize_source_url
from deployments.account_schemas import (
    FolderIn, FolderList, FolderOut, OpmlImportOut, RejectedOutline, SubscribeIn, SubscriptionHealth,
    SubscriptionList, SubscriptionOut, SubscriptionPatch,
)
from deployments.auth.dependencies import CurrentUser, Pool
from deployments.auth.openapi import USER_ERRORS, errors
from deployments.errors import ApiError, JsonErrorRoute, invalid_parameter

logger = logging.getLogger("newsray.api")

router = APIRouter(prefix="/api/v1/me", tags=["subscriptions"], route_class=JsonErrorRoute,
                   responses=errors(*USER_ERRORS))

MAX_OPML_BYTES = 2 * 1024 * 1024
OPML_MEDIA_TYPE = "text/x-opml"
SourceId = Annotated[int, Path(ge=1, le=2**63 - 1)]
FolderId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def subscription_out(item: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        source_id=item.source_id, url=item.url, kind=item.kind, title=item.title or item.source_title,
        custom_title=item.title, source_title=item.source_title, site_url=item.site_url, language=item.language,
        folder_id=item.folder_id, folder_name=item.folder_name, created_at=item.created_at,
        health=SubscriptionHealth(enabled=item.enabled, last_success_at=item.last_success_at,
                                  last_error=item.last_error, consecutive_errors=item.consecutive_errors),
    )


@router.get("/subscriptions", response_model=SubscriptionList, summary="What you follow, by folder")
async def list_subscriptions(principal: CurrentUser, pool: Pool) -> SubscriptionList:
    return SubscriptionList(items=[subscription_out(item) for item in await store.list_subscriptions(pool, principal.user_id)])


async def _source_for_url(pool: Pool, url: str) -> int:
    """The catalog id for a URL: the known source, or one found by discovery and added."""
    from cluster.settings import get_settings

    try:
        normalized = normalize_source_url(url)
    except ValueError as exc:
        raise invalid_parameter("body", "url", str(exc)) from None
    known = await store.find_source_id(pool, normalized)
    if known is not None:
        return known
    policy = components.load(components.FETCH_POLICY)(get_settings())
    try:
        found = await components.load(components.DISCOVER_FEED)(normalized, policy)
    except Exception as exc:  # noqa: BLE001 - fetch errors carry their own clear message ("fetch: …")
        raise invalid_parameter("body", "url", f"could not subscribe to {normalized}: {exc}") from None
    known = await store.find_source_id(pool, found.url)
    if known is not None:
        return known
    source, _ = await add_source(pool, NewSource(url=found.url, kind=found.kind, title=found.title))
    return source.id


@router.post("/subscriptions", response_model=SubscriptionOut, status_code=201,
             summary="Follow a source: by URL (feed discovery) or from the catalog",
             responses={200: {"model": SubscriptionOut, "description": "Already followed."}, **errors(404)})
async def subscribe(body: SubscribeIn, principal: CurrentUser, pool: Pool) -> SubscriptionOut | JSONResponse:
    if (body.url is None) == (body.source_id is None):
        raise invalid_parameter("body", "url", "send exactly one of url and source_id")
    source_id = body.source_id if body.source_id is not None else await _source_for_url(pool, body.url or "")
    try:
        item, created = await store.subscribe(pool, principal.user_id, source_id, body.folder_id, body.title)
    except SourceNotFoundError:
        raise ApiError(404, f"subscriptions: source {source_id} not found") from None
    except FolderNotFoundError:
        raise ApiError(404, f"subscriptions: folder {body.folder_id} not found") from None
    out = subscription_out(item)
    if not created:
        return JSONResponse(out.model_dump(mode="json"), status_code=200)
    return out


@router.patch("/subscriptions/{source_id}", response_model=SubscriptionOut, summary="Move or rename a subscription",
              responses=errors(404))
async def update_subscription(source_id: SourceId, body: SubscriptionPatch, principal: CurrentUser,
                              pool: Pool) -> SubscriptionOut:
    sent = body.model_fields_set
    try:
        item = await store.update_subscription(pool, principal.user_id, source_id,
                                               set_folder="folder_id" in sent, folder_id=body.folder_id,
                                               set_title="title" in sent, title=body.title)
    except FolderNotFoundError:
        raise ApiError(404, f"subscriptions: folder {body.folder_id} not found") from None
    if item is None:
        raise ApiError(404, f"subscriptions: you do not follow source {source_id}")
    return subscription_out(item)


@router.delete("/subscriptions/{source_id}", status_code=204, summary="Unfollow (the source stays in the catalog)",
               responses=errors(404))
async def unsubscribe(source_id: SourceId, principal: CurrentUser, pool: Pool) -> Response:
    if not await store.unsubscribe(pool, principal.user_id, source_id):
        raise ApiError(404, f"subscriptions: you do not follow source {source_id}")
    return Response(status_code=204)


@router.get("/subscriptions/opml", summary="Your subscriptions as OPML (folders as outlines)",
            response_class=Response,
            responses={200: {"content": {OPML_MEDIA_TYPE: {"schema": {"type": "string"}}},
                             "description": "An OPML 2.0 document."}})
async def export_opml(principal: CurrentUser, pool: Pool) -> Response:
    items = await store.list_subscriptions(pool, principal.user_id)
    document = to_opml([NewSource(url=i.url, kind=i.kind, title=i.title or i.source_title, site_url=i.site_url,
                                  language=i.language, category=i.folder_name) for i in items],
                       title="newsray subscriptions")
    return Response(document, media_type=OPML_MEDIA_TYPE,
                    headers={"Content-Disposition": 'attachment; filename="newsray-subscriptions.opml"'})


_OPML_BODY = {"schema": {"type": "string", "maxLength": MAX_OPML_BYTES}}


@router.post("/subscriptions/opml", response_model=OpmlImportOut, summary="Follow every feed of an OPML file",
             description="The body is the OPML document. Outlines' parent titles become your folders.",
             openapi_extra={"requestBody": {"required": True, "content": {
                 OPML_MEDIA_TYPE: _OPML_BODY, "application/xml": _OPML_BODY, "text/xml": _OPML_BODY}}},
             responses=errors(413))
async def import_opml(request: Request, principal: CurrentUser, pool: Pool) -> OpmlImportOut:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_OPML_BYTES:
            raise ApiError(413, f"subscriptions: OPML files are limited to {MAX_OPML_BYTES // 1024 // 1024} MB")
    try:
        parsed = parse_opml(bytes(body))
    except OpmlError as exc:
        raise invalid_parameter("body", "opml", str(exc)) from None
    result = await store.import_subscriptions(pool, principal.user_id, parsed.sources)
    return OpmlImportOut(subscribed=result.subscribed, already_followed=result.already,
                         sources_added=result.sources_added,
                         rejected=[RejectedOutline(url=url[:500], reason=reason) for url, reason in parsed.rejected])


# --------------------------------------------------------------------------- folders


@router.get("/folders", response_model=FolderList, summary="Your folders")
async def list_folders(principal: CurrentUser, pool: Pool) -> FolderList:
    return FolderList(items=[FolderOut.model_validate(f) for f in await store.list_folders(pool, principal.user_id)])


@router.post("/folders", response_model=FolderOut, status_code=201, summary="Create a folder", responses=errors(409))
async def create_folder(body: FolderIn, principal: CurrentUser, pool: Pool) -> FolderOut:
    try:
        return FolderOut.model_validate(await store.create_folder(pool, principal.user_id, body.name))
    except FolderExistsError:
        raise ApiError(409, f"subscriptions: you already have a folder named {body.name!r}") from None


@router.patch("/folders/{folder_id}", response_model=FolderOut, summary="Rename a folder",
              responses=errors(404, 409))
async def rename_folder(folder_id: FolderId, body: FolderIn, principal: CurrentUser, pool: Pool) -> FolderOut:
    try:
        folder = await store.rename_folder(pool, principal.user_id, folder_id, body.name)
    except FolderExistsError:
        raise ApiError(409, f"subscriptions: you already have a folder named {body.name!r}") from None
    if folder is None:
        raise ApiError(404, f"subscriptions: folder {folder_id} not found")
    return FolderOut.model_validate(folder)


@router.delete("/folders/{folder_id}", status_code=204, summary="Delete a folder (its subscriptions stay, unfiled)",
               responses=errors(404))
async def delete_folder(folder_id: FolderId, principal: CurrentUser, pool: Pool) -> Response:
    if not await store.delete_folder(pool, principal.user_id, folder_id):
        raise ApiError(404, f"subscriptions: folder {folder_id} not found")
    return Response(status_code=204)
