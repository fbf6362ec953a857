"""/api/v1/admin: users, sources' health and recent server errors — administrators only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from cluster.store import error_logs as error_store
from cluster.store import subscriptions as subscription_store
from cluster.store import users as user_store
from cluster.store.sources import list_sources
from cluster.store.users import User
from deployments.account_schemas import (
    AdminSourceList, AdminSourceOut, AdminUserList, AdminUserOut, ErrorLogList,
)
from deployments.auth.accounts import revoke_everything
from deployments.auth.dependencies import AdminUser, AuthError, Context, Pool
from deployments.auth.openapi import USER_ERRORS, errors
from deployments.errors import ApiError, JsonErrorRoute
from deployments.schemas import SourceHealth

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], route_class=JsonErrorRoute, responses=errors(*USER_ERRORS))

MAX_PAGE = 200
MAX_SOURCES = 5000


def admin_user_out(user: User) -> AdminUserOut:
    return AdminUserOut(id=user.id, email=user.email, role=user.role, disabled=user.disabled,
                        created_at=user.created_at, last_login_at=user.last_login_at, mfa_enabled=user.mfa_enabled)


@router.get("/users", response_model=AdminUserList, summary="Users, oldest first")
async def users(
    admin: AdminUser, pool: Pool,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AdminUserList:
    found, total = await user_store.list_users(pool, limit, offset)
    return AdminUserList(items=[admin_user_out(u) for u in found], total=total, limit=limit, offset=offset)


async def _set_disabled(admin: AdminUser, pool: Pool, context: Context, user_id: uuid.UUID,
                        disabled: bool) -> AdminUserOut:
    if disabled and user_id == admin.user_id:
        raise AuthError(409, "admin: you cannot disable your own account")
    user = await user_store.set_disabled(pool, user_id, disabled)
    if user is None:
        raise ApiError(404, f"admin: user {user_id} not found")
    if disabled:
        await revoke_everything(context, pool, user_id)
    return admin_user_out(user)


@router.post("/users/{user_id}/disable", response_model=AdminUserOut, summary="Disable a user (ends their sessions)",
             responses=errors(404, 409))
async def disable_user(user_id: uuid.UUID, admin: AdminUser, pool: Pool, context: Context) -> AdminUserOut:
    return await _set_disabled(admin, pool, context, user_id, True)


@router.post("/users/{user_id}/enable", response_model=AdminUserOut, summary="Enable a user again",
             responses=errors(404, 409))
async def enable_user(user_id: uuid.UUID, admin: AdminUser, pool: Pool, context: Context) -> AdminUserOut:
    return await _set_disabled(admin, pool, context, user_id, False)


@router.get("/sources", response_model=AdminSourceList, summary="Sources' health, failing first, with followers")
async def sources(admin: AdminUser, pool: Pool) -> AdminSourceList:
    found = await list_sources(pool, limit=MAX_SOURCES)
    followers = await subscription_store.follower_counts(pool)
    found.sort(key=lambda s: (-s.consecutive_errors, s.id))
    return AdminSourceList(
        items=[AdminSourceOut(id=s.id, url=s.url, kind=s.kind, title=s.title, followers=followers.get(s.id, 0),
                              health=SourceHealth.model_validate(s)) for s in found],
        total=len(found), failing=sum(1 for s in found if s.consecutive_errors > 0),
    )


@router.get("/errors", response_model=ErrorLogList, summary="Recent server errors, newest first")
async def recent_errors(
    admin: AdminUser, pool: Pool,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Older than this error id.")] = None,
) -> ErrorLogList:
    return ErrorLogList(items=await error_store.recent_errors(pool, limit, before_id))
