"""/api/v1/me: the signed-in user's account, password, MFA, preferences, reading state and
history. Every query is scoped by the caller's id from the verified token; there is no way to
name another user here."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from cluster.store import feedback as feedback_store
from cluster.store import preferences as preference_store
from cluster.store import users as user_store
from cluster.store.articles import CursorError, get_article
from cluster.store.feedback import ArticleNotFoundError, ArticleState, StateChange
from cluster.store.users import User
from deployments.account_schemas import (
    ArticleStateOut, ArticleStatePatch, HistoryArticle, HistoryItemOut, HistoryOut, PreferencesOut, PreferencesPatch,
)
from deployments.auth import cookies, mfa
from deployments.auth.accounts import account_subject, check_code, issue_backup_codes, revoke_everything, start_session
from deployments.auth.context import AuthContext
from deployments.auth.dependencies import AuthError, Context, CurrentUser, Pool, address_of, unauthorized
from deployments.auth.models import (
    BackupCodesOut, CodeIn, DeleteAccountIn, PasswordChangeIn, SessionOut, TotpEnrollmentOut, UserOut,
)
from deployments.auth.openapi import USER_ERRORS, errors
from deployments.auth.passwords import WeakPasswordError, check_strength, hash_password, verify_password
from deployments.auth.tokens import Principal
from deployments.errors import ApiError, JsonErrorRoute, invalid_parameter
from deployments.routes.auth import cookie_security, enforce_limit, session_out, user_agent, user_out

router = APIRouter(prefix="/api/v1/me", tags=["me"], route_class=JsonErrorRoute, responses=errors(*USER_ERRORS))

MAX_HISTORY = 100


async def me_user(pool: Pool, principal: Principal) -> User:
    user = await user_store.get_user(pool, principal.user_id)
    if user is None or user.disabled:
        raise unauthorized("auth: this account no longer exists or is disabled")
    return user


@router.get("", response_model=UserOut, summary="The signed-in account")
async def me(principal: CurrentUser, pool: Pool) -> UserOut:
    return await user_out(pool, await me_user(pool, principal))


@router.delete("", status_code=204, summary="Delete the account and everything that is yours",
               description="Subscriptions, folders, preferences, reading state, feedback and sessions go with it. "
                           "Sources stay in the shared catalog.")
async def delete_me(request: Request, principal: CurrentUser, pool: Pool, context: Context,
                    body: DeleteAccountIn | None = None) -> Response:
    user = await me_user(pool, principal)
    await _confirm_password(request, context, user, body.password if body else None)
    await user_store.delete_user(pool, user.id)
    await context.api_limiter.revoke_tokens(user.id)
    response = Response(status_code=204)
    cookies.clear_session_cookies(response, secure=cookie_security(request, context))
    return response


async def _confirm_password(request: Request, context: AuthContext, user: User, password: str | None) -> None:
    """Sensitive changes re-check the password (a stolen access token alone is not enough)."""
    if user.password_hash is None:
        return  # provider-only accounts have none; the session itself is the proof
    await enforce_limit(context, "login", [account_subject(context, user.email), ("address", address_of(request))])
    if password is None or not await verify_password(user.password_hash, password):
        raise AuthError(403, "auth: wrong password")


@router.post("/password", response_model=SessionOut, summary="Change the password",
             description="Ends every other sign-in; answers a fresh session for this one.",
             responses=errors(409))
async def change_password(request: Request, body: PasswordChangeIn, response: Response, principal: CurrentUser,
                          pool: Pool, context: Context) -> SessionOut:
    user = await me_user(pool, principal)
    if user.password_hash is None:
        raise AuthError(409, "auth: this account signs in through an identity provider and has no password")
    await _confirm_password(request, context, user, body.current_password)
    try:
        check_strength(body.new_password, user.email)
    except WeakPasswordError as exc:
        raise invalid_parameter("body", "new_password", f"password {exc}") from None
    await user_store.set_password_hash(pool, user.id, await hash_password(body.new_password))
    await revoke_everything(context, pool, user.id)
    session = await start_session(context, pool, user, user_agent(request))
    return await session_out(request, response, context, pool, user, session,
                             body.use_cookies or principal.via_cookie)


# --------------------------------------------------------------------------- MFA


async def _mfa_limit(request: Request, context: AuthContext, user: User) -> None:
    await enforce_limit(context, "mfa", [("account", str(user.id)), ("address", address_of(request))])


@router.post("/mfa/totp", response_model=TotpEnrollmentOut, summary="Start TOTP enrolment",
             description="Answers a new secret (with an otpauth URI and a QR code); confirm it with a first code.",
             responses=errors(409))
async def enroll_totp(principal: CurrentUser, pool: Pool, context: Context) -> TotpEnrollmentOut:
    user = await me_user(pool, principal)
    if user.mfa_enabled:
        raise AuthError(409, "auth: MFA is already on; disable it first to enrol a new device")
    secret = mfa.new_secret()
    await user_store.set_pending_totp(pool, user.id, mfa.encrypt_secret(context.keys.totp_encryption, user.id, secret))
    uri = mfa.provisioning_uri(secret, user.email)
    return TotpEnrollmentOut(secret=secret, otpauth_uri=uri, qr_svg=mfa.qr_svg(uri))


@router.post("/mfa/totp/confirm", response_model=BackupCodesOut, summary="Confirm TOTP with a first code",
             description="Turns MFA on and answers 10 single-use backup codes, shown this once.",
             responses=errors(409))
async def confirm_totp(request: Request, body: CodeIn, principal: CurrentUser, pool: Pool,
                       context: Context) -> BackupCodesOut:
    user = await me_user(pool, principal)
    if user.mfa_enabled:
        raise AuthError(409, "auth: MFA is already on")
    if user.totp_pending_secret is None:
        raise AuthError(409, "auth: no enrolment in progress; start one with POST /api/v1/me/mfa/totp")
    await _mfa_limit(request, context, user)
    secret = mfa.decrypt_secret(context.keys.totp_encryption, user.id, user.totp_pending_secret)
    step = mfa.matching_step(secret, body.code)
    if step is None:
        raise AuthError(403, "auth: wrong code; check the device's clock and try the next code")
    if not await user_store.enable_totp(pool, user.id, user.totp_pending_secret, step):
        raise AuthError(409, "auth: the enrolment changed meanwhile; start again")
    return BackupCodesOut(backup_codes=await issue_backup_codes(context, pool, user.id))


async def _user_proving_mfa(request: Request, body: CodeIn, principal: Principal, pool: Pool,
                            context: AuthContext) -> User:
    """The caller's account, once they have proved MFA with a current TOTP or backup code
    (rate-limited like a login): what turning MFA off or replacing the codes requires."""
    user = await me_user(pool, principal)
    if not user.mfa_enabled:
        raise AuthError(409, "auth: MFA is not on")
    await _mfa_limit(request, context, user)
    if await check_code(context, pool, user, body.code) == "wrong":
        raise AuthError(403, "auth: wrong code")
    return user


@router.post("/mfa/totp/disable", status_code=204, summary="Turn MFA off (needs a valid code)",
             responses=errors(409))
async def disable_totp(request: Request, body: CodeIn, principal: CurrentUser, pool: Pool,
                       context: Context) -> Response:
    user = await _user_proving_mfa(request, body, principal, pool, context)
    await user_store.disable_totp(pool, user.id)
    return Response(status_code=204)


@router.post("/mfa/backup-codes", response_model=BackupCodesOut, summary="Replace the backup codes (needs a code)",
             responses=errors(409))
async def regenerate_backup_codes(request: Request, body: CodeIn, principal: CurrentUser, pool: Pool,
                                  context: Context) -> BackupCodesOut:
    user = await _user_proving_mfa(request, body, principal, pool, context)
    return BackupCodesOut(backup_codes=await issue_backup_codes(context, pool, user.id))


# --------------------------------------------------------------------------- preferences


@router.get("/preferences", response_model=PreferencesOut, summary="Reading preferences")
async def get_preferences(principal: CurrentUser, pool: Pool) -> PreferencesOut:
    return PreferencesOut.model_validate(await preference_store.get_preferences(pool, principal.user_id))


@router.patch("/preferences", response_model=PreferencesOut, summary="Change some preferences",
              description="Only the fields sent change. Invalid values answer 422 naming each field.")
async def patch_preferences(body: PreferencesPatch, principal: CurrentUser, pool: Pool) -> PreferencesOut:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    current = await preference_store.get_preferences(pool, principal.user_id)
    followed = set(changes.get("topics_followed", current.topics_followed))
    muted = set(changes.get("topics_muted", current.topics_muted))
    if followed & muted:
        field = "topics_muted" if "topics_muted" in changes else "topics_followed"
        raise invalid_parameter("body", field, f"a topic cannot be both followed and muted: {sorted(followed & muted)}")
    return PreferencesOut.model_validate(await preference_store.update_preferences(pool, principal.user_id, changes))


# --------------------------------------------------------------------------- reading state and history


def state_out(state: ArticleState) -> ArticleStateOut:
    reaction: Literal["like", "dislike"] | None = {1: "like", -1: "dislike"}.get(state.reaction or 0)  # type: ignore[assignment]
    return ArticleStateOut(
        article_id=state.article_id, first_opened_at=state.first_opened_at, last_opened_at=state.last_opened_at,
        open_count=state.open_count, read_at=state.read_at, dwell_ms=state.dwell_ms, reaction=reaction,
        reacted_at=state.reacted_at, rating=state.rating, rated_at=state.rated_at, saved_at=state.saved_at,
        hidden_at=state.hidden_at, updated_at=state.updated_at,
    )


def _empty_state(article_id: uuid.UUID) -> ArticleStateOut:
    return ArticleStateOut(article_id=article_id, first_opened_at=None, last_opened_at=None, open_count=0,
                           read_at=None, dwell_ms=0, reaction=None, reacted_at=None, rating=None, rated_at=None,
                           saved_at=None, hidden_at=None, updated_at=None)


@router.get("/articles/{article_id}/state", response_model=ArticleStateOut, summary="Your state of one article",
            responses=errors(404))
async def get_article_state(article_id: uuid.UUID, principal: CurrentUser, pool: Pool) -> ArticleStateOut:
    state = await feedback_store.get_state(pool, principal.user_id, article_id)
    if state is not None:
        return state_out(state)
    if await get_article(pool, article_id) is None:
        raise ApiError(404, f"feedback: article {article_id} not found")
    return _empty_state(article_id)


@router.patch("/articles/{article_id}/state", response_model=ArticleStateOut,
              summary="Record reading and feedback: opened, read (with dwell time), like/dislike, rating, saved, hidden",
              responses=errors(404))
async def patch_article_state(article_id: uuid.UUID, body: ArticleStatePatch, principal: CurrentUser,
                              pool: Pool) -> ArticleStateOut:
    sent = body.model_fields_set
    change = StateChange(
        opened=bool(body.opened), read=body.read, dwell_ms=body.dwell_ms or 0,
        set_reaction="reaction" in sent, reaction={"like": 1, "dislike": -1}.get(body.reaction or ""),
        set_rating="rating" in sent, rating=body.rating, saved=body.saved, hidden=body.hidden,
    )
    try:
        state = await feedback_store.apply_change(pool, principal.user_id, article_id, change)
    except ArticleNotFoundError:
        raise ApiError(404, f"feedback: article {article_id} not found") from None
    return state_out(state)


@router.get("/history", response_model=HistoryOut, summary="Articles you opened, read, rated, saved or hid",
            description="Most recent activity first; pass `next_cursor` back as `cursor` for more.")
async def history(
    principal: CurrentUser, pool: Pool,
    filter: Annotated[feedback_store.HistoryFilter, Query(description="Only articles in this state.")] = "all",
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> HistoryOut:
    try:
        page = await feedback_store.history(pool, principal.user_id, filter, limit, cursor or None)
    except CursorError:
        raise invalid_parameter("query", "cursor", "invalid cursor: pass back a next_cursor exactly as received") from None
    return HistoryOut(
        items=[HistoryItemOut(article=HistoryArticle(id=item.state.article_id, title=item.title, url=item.url,
                                                     source_id=item.source_id, source_title=item.source_title,
                                                     published_at=item.published_at),
                              state=state_out(item.state)) for item in page.items],
        next_cursor=page.next_cursor,
    )
