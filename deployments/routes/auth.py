"""/api/v1/auth: register, login (two steps with MFA), refresh, logout, OpenID Connect."""

from __future__ import annotations

import logging
import math
import re
import uuid
from typing import Annotated

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from joserfc.errors import JoseError

from cluster.store import mfa as mfa_store
from cluster.store import tokens as token_store
from cluster.store import users as user_store
from cluster.store.users import EmailTakenError, User
from deployments.auth import cookies
from deployments.auth.accounts import (
    IssuedSession, ProviderLoginError, account_subject, check_code, open_challenge, provider_user, refresh_session,
    start_session,
)
from deployments.auth.context import AuthContext
from deployments.auth.csrf import HEADER as CSRF_HEADER
from deployments.auth.csrf import csrf_valid
from deployments.auth.dependencies import AuthError, Context, Pool, address_of, unauthorized
from deployments.auth.middleware import principal_of
from deployments.auth.models import (
    LoginIn, LoginOut, LogoutIn, MfaChallengeOut, MfaIn, ProviderList, ProviderOut, RefreshIn, RegisterIn, SessionOut,
    UserOut,
)
from deployments.auth.oidc import STATE_TTL_S, decode_state, encode_state, safe_next
from deployments.auth.openapi import errors
from deployments.auth.passwords import WeakPasswordError, check_strength, hash_password, needs_rehash, verify_password
from deployments.auth.ratelimit import RateLimiterUnavailable
from deployments.auth.settings import SLUG
from deployments.auth.tokens import token_hash
from deployments.errors import JsonErrorRoute, invalid_parameter

logger = logging.getLogger("newsray.auth")

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=JsonErrorRoute)

ProviderName = Annotated[str, Path(pattern=SLUG, max_length=32)]


# --------------------------------------------------------------------------- helpers


async def enforce_limit(context: AuthContext, action: str, subjects: list[tuple[str, str]]) -> None:
    try:
        decision = await context.auth_limiter.hit(action, subjects)
    except RateLimiterUnavailable:
        # Fail closed: without counting, password guessing would be unlimited.
        raise AuthError(503, "auth: sign-in is unavailable right now (rate limiter down), try again shortly",
                        {"Retry-After": "30"}) from None
    if not decision.allowed:
        raise AuthError(429, "auth: too many attempts, try again later",
                        {"Retry-After": str(decision.retry_after_s)})


async def user_out(pool: Pool, user: User) -> UserOut:
    identities = await user_store.list_identities(pool, user.id)
    codes = await mfa_store.count_backup_codes(pool, user.id) if user.mfa_enabled else 0
    return UserOut(
        id=user.id, email=user.email, email_verified=user.email_verified, role=user.role,
        created_at=user.created_at, last_login_at=user.last_login_at, mfa_enabled=user.mfa_enabled,
        has_password=user.password_hash is not None, backup_codes_left=codes,
        providers=sorted({identity.provider for identity in identities}),
    )


def cookie_security(request: Request, context: AuthContext) -> bool:
    return cookies.secure_for(request, context.settings.cookie_secure, context.public_url)


async def session_out(request: Request, response: Response, context: AuthContext, pool: Pool, user: User,
                      session: IssuedSession, use_cookies: bool) -> SessionOut:
    if use_cookies:
        cookies.set_session_cookies(
            response, access_token=session.access_token, access_ttl_s=context.settings.access_token_ttl_s,
            refresh_token=session.refresh_token, refresh_ttl_s=context.settings.refresh_token_ttl_s,
            csrf=session.csrf_token, secure=cookie_security(request, context))
        return SessionOut(access_token=None, refresh_token=None, expires_in=session.expires_in,
                          csrf_token=session.csrf_token, user=await user_out(pool, user))
    return SessionOut(access_token=session.access_token, refresh_token=session.refresh_token,
                      expires_in=session.expires_in, csrf_token=None, user=await user_out(pool, user))


def user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


# --------------------------------------------------------------------------- password sign-in


@router.post("/register", response_model=SessionOut, status_code=201, summary="Create an account and sign in",
             responses=errors(403, 409, 422, 429, 503))
async def register(request: Request, body: RegisterIn, response: Response, pool: Pool, context: Context) -> SessionOut:
    if not context.settings.registration_open:
        raise AuthError(403, "auth: registration is closed; ask an administrator for an account")
    await enforce_limit(context, "register", [account_subject(context, body.email), ("address", address_of(request))])
    try:
        check_strength(body.password, body.email)
    except WeakPasswordError as exc:
        raise invalid_parameter("body", "password", f"password {exc}") from None
    try:
        user = await user_store.create_user(pool, body.email, await hash_password(body.password))
    except EmailTakenError:
        raise AuthError(409, "auth: an account with this email already exists") from None
    session = await start_session(context, pool, user, user_agent(request))
    return await session_out(request, response, context, pool, user, session, body.use_cookies)


@router.post("/login", response_model=LoginOut, summary="Sign in with email and password",
             description="Answers a session, or — with MFA on — an `mfa_token` to send with a code to /auth/mfa.",
             responses=errors(401, 403, 422, 429, 503))
async def login(request: Request, body: LoginIn, response: Response, pool: Pool,
                context: Context) -> SessionOut | MfaChallengeOut:
    await enforce_limit(context, "login", [account_subject(context, body.email), ("address", address_of(request))])
    user = await user_store.get_user_by_email(pool, body.email)
    if not await verify_password(user.password_hash if user else None, body.password) or user is None:
        raise unauthorized("auth: wrong email or password")
    if user.disabled:
        raise AuthError(403, "auth: this account is disabled")
    assert user.password_hash is not None
    if needs_rehash(user.password_hash):
        await user_store.set_password_hash(pool, user.id, await hash_password(body.password), changed=False)
    if user.mfa_enabled:
        token = await open_challenge(context, pool, user)
        return MfaChallengeOut(mfa_token=token, expires_in=context.settings.mfa_token_ttl_s,
                               methods=["totp", "backup_code"])
    session = await start_session(context, pool, user, user_agent(request))
    return await session_out(request, response, context, pool, user, session, body.use_cookies)


@router.post("/mfa", response_model=SessionOut, summary="Second step: the TOTP or backup code",
             responses=errors(401, 403, 422, 429, 503))
async def mfa_login(request: Request, body: MfaIn, response: Response, pool: Pool, context: Context) -> SessionOut:
    settings = context.settings
    token = body.mfa_token or request.cookies.get(cookies.MFA)
    challenge = await mfa_store.get_challenge(pool, token_hash(token)) if token else None
    subjects = [("address", address_of(request))]
    if challenge is not None:
        subjects.append(("account", str(challenge.user_id)))
    await enforce_limit(context, "mfa", subjects)
    if token is None or challenge is None:
        raise unauthorized("auth: no open MFA challenge (it expired or was used); sign in again")
    user = await user_store.get_user(pool, challenge.user_id)
    if user is None or user.disabled or not user.mfa_enabled:
        raise unauthorized("auth: no open MFA challenge; sign in again")
    locked_s = await user_store.mfa_lock_remaining_s(pool, user.id)
    if locked_s > 0:
        raise AuthError(429, "auth: too many wrong codes, MFA is locked for now",
                        {"Retry-After": str(max(1, math.ceil(locked_s)))})
    if await check_code(context, pool, user, body.code) == "wrong":
        failures = await mfa_store.record_failed_attempt(pool, token_hash(token))
        if failures >= settings.mfa_max_attempts:
            await mfa_store.consume_challenge(pool, token_hash(token))
            await user_store.lock_mfa(pool, user.id, settings.mfa_lock_s)
            logger.warning("auth: MFA locked for a user after %d wrong codes", failures)
            raise AuthError(429, f"auth: too many wrong codes, MFA is locked for {settings.mfa_lock_s // 60} minutes",
                            {"Retry-After": str(settings.mfa_lock_s)})
        raise unauthorized(f"auth: wrong code ({settings.mfa_max_attempts - failures} attempts left)")
    if not await mfa_store.consume_challenge(pool, token_hash(token)):
        raise unauthorized("auth: this MFA challenge was already used; sign in again")
    session = await start_session(context, pool, user, user_agent(request))
    secure = cookie_security(request, context)
    cookies.clear_cookie(response, cookies.MFA, secure=secure, path=cookies.AUTH_PATH, samesite="strict")
    use_cookies = body.use_cookies or body.mfa_token is None
    return await session_out(request, response, context, pool, user, session, use_cookies)


# --------------------------------------------------------------------------- sessions


@router.post("/refresh", response_model=SessionOut, summary="Rotate the refresh token",
             description="Each refresh token works once; presenting a used one again ends that sign-in everywhere.",
             responses=errors(401, 403, 422, 503))
async def refresh(request: Request, response: Response, pool: Pool, context: Context,
                  body: RefreshIn | None = None) -> SessionOut:
    presented = body.refresh_token if body else None
    via_cookie = presented is None
    if presented is None:
        presented = request.cookies.get(cookies.REFRESH)
        if not presented:
            raise unauthorized("auth: no refresh token")
        active = await token_store.find_active(pool, token_hash(presented))
        if active is not None and not csrf_valid(context.keys.csrf, active.family_id,
                                                 request.headers.get(CSRF_HEADER)):
            raise AuthError(403, "auth: missing or invalid CSRF token (send the X-CSRF-Token header)")
    outcome, session, user = await refresh_session(context, pool, presented, user_agent(request))
    if outcome == "reused":
        raise unauthorized("auth: this refresh token was already used; the session has been ended, sign in again")
    if outcome == "disabled":
        raise AuthError(403, "auth: this account is disabled")
    if session is None or user is None:
        raise unauthorized("auth: invalid or expired refresh token")
    return await session_out(request, response, context, pool, user, session,
                             via_cookie or bool(body and body.use_cookies))


@router.post("/logout", status_code=204, summary="End this sign-in",
             description="Revokes the refresh token's family (or the access token's session) and clears cookies.",
             responses=errors(403, 422))
async def logout(request: Request, pool: Pool, context: Context, body: LogoutIn | None = None) -> Response:
    principal = principal_of(request.scope)
    families: set[tuple[uuid.UUID, uuid.UUID]] = set()
    presented = body.refresh_token if body else None
    if presented is None and request.cookies.get(cookies.REFRESH):
        presented = request.cookies.get(cookies.REFRESH)
        active = await token_store.find_active(pool, token_hash(presented or ""))
        if active is not None and not csrf_valid(context.keys.csrf, active.family_id,
                                                 request.headers.get(CSRF_HEADER)):
            raise AuthError(403, "auth: missing or invalid CSRF token (send the X-CSRF-Token header)")
    if presented:
        active = await token_store.find_active(pool, token_hash(presented))
        if active is not None:
            families.add((active.family_id, active.user_id))
    if principal is not None and principal.csrf_ok:
        families.add((principal.session_id, principal.user_id))
    for family_id, user_id in families:
        await token_store.revoke_family(pool, family_id, user_id)
        # Kills this device's access token now; the user's other devices refresh once.
        await context.api_limiter.revoke_tokens(user_id)
    response = Response(status_code=204)
    cookies.clear_session_cookies(response, secure=cookie_security(request, context))
    return response


# --------------------------------------------------------------------------- OpenID Connect


@router.get("/providers", response_model=ProviderList, summary="Identity providers configured for sign-in")
async def providers(context: Context) -> ProviderList:
    return ProviderList(items=[
        ProviderOut(name=p.name, label=p.label, login_url=f"/api/v1/auth/oidc/{p.name}/login")
        for p in context.oidc.providers.values()
    ])


def _callback_url(request: Request, context: AuthContext, provider: str) -> str:
    public = context.public_url
    if public:
        return f"{public.rstrip('/')}/api/v1/auth/oidc/{provider}/callback"
    return str(request.url_for("oidc_callback", provider=provider))


@router.get("/oidc/{provider}/login", response_class=RedirectResponse, status_code=302,
            summary="Start signing in at an identity provider",
            responses={302: {"description": "To the provider's authorization page."}, **errors(404, 422, 502)})
async def oidc_login(request: Request, provider: ProviderName, context: Context,
                     next: Annotated[str | None, Query(max_length=500, description="Path to return to.")] = None,
                     ) -> Response:
    client = context.oidc.client(provider)
    if client is None:
        raise AuthError(404, f"auth: no identity provider named {provider!r}")
    configured = context.oidc.providers[provider]
    request.scope["session"] = {}
    try:
        metadata = await client.load_server_metadata()
        if str(metadata.get("issuer", "")).rstrip("/") != configured.issuer.rstrip("/"):
            # OpenID Connect Discovery §4.3: a document for another issuer is refused.
            raise ValueError("issuer mismatch in discovery document")
        redirect = await client.authorize_redirect(request, _callback_url(request, context, provider))
    except Exception as exc:  # noqa: BLE001 - network, JSON, or a broken discovery document
        logger.warning("auth: provider %s unusable: %s: %s", provider, type(exc).__name__, exc)
        raise AuthError(502, "auth: the identity provider cannot be reached right now") from None
    state = encode_state(context.keys.oidc_state, provider, request.scope["session"], safe_next(next))
    cookies.set_cookie(redirect, cookies.OIDC, state, max_age=STATE_TTL_S, secure=cookie_security(request, context),
                       path="/api/v1/auth/oidc", samesite="lax")
    return redirect


@router.get("/oidc/{provider}/callback", name="oidc_callback", response_class=RedirectResponse, status_code=302,
            summary="Where the identity provider sends the browser back",
            responses={302: {"description": "Signed in (cookies set), or on to the MFA step."},
                       **errors(400, 403, 404, 422, 502)})
async def oidc_callback(request: Request, provider: ProviderName, pool: Pool, context: Context) -> Response:
    client = context.oidc.client(provider)
    if client is None:
        raise AuthError(404, f"auth: no identity provider named {provider!r}")
    state = decode_state(context.keys.oidc_state, request.cookies.get(cookies.OIDC), provider)
    if state is None:
        raise AuthError(400, "auth: this sign-in expired or was started in another browser; start again")
    session, next_path = state
    request.scope["session"] = session
    try:
        token = await client.authorize_access_token(request)
    except MismatchingStateError:
        raise AuthError(400, "auth: sign-in state mismatch (a forged or stale callback); start again") from None
    except OAuthError as exc:
        code = re.sub(r"[^a-z_]", "", str(exc.error or "error"))[:40]
        raise AuthError(400, f"auth: the identity provider refused the sign-in ({code})") from None
    except (JoseError, AuthlibBaseError, ValueError, KeyError) as exc:
        logger.warning("auth: provider %s: ID token rejected: %s", provider, type(exc).__name__)
        raise AuthError(400, "auth: the identity provider's ID token failed validation") from None
    except httpx.HTTPError as exc:
        logger.warning("auth: provider %s unreachable: %s", provider, type(exc).__name__)
        raise AuthError(502, "auth: the identity provider cannot be reached right now") from None
    userinfo = token.get("userinfo")
    if not userinfo:
        raise AuthError(400, "auth: the identity provider sent no ID token")
    try:
        user = await provider_user(context, pool, provider, dict(userinfo))
    except ProviderLoginError as exc:
        raise AuthError(403, str(exc)) from None
    if user.disabled:
        raise AuthError(403, "auth: this account is disabled")
    secure = cookie_security(request, context)
    redirect = RedirectResponse(next_path, status_code=302)
    cookies.clear_cookie(redirect, cookies.OIDC, secure=secure, path="/api/v1/auth/oidc")
    if user.mfa_enabled:
        # The provider proved the first factor; the account's own second factor still applies.
        challenge = await open_challenge(context, pool, user)
        cookies.set_cookie(redirect, cookies.MFA, challenge, max_age=context.settings.mfa_token_ttl_s, secure=secure,
                           path=cookies.AUTH_PATH, samesite="strict")
        redirect.headers["location"] = "/?mfa=required"
        return redirect
    issued = await start_session(context, pool, user, user_agent(request))
    cookies.set_session_cookies(
        redirect, access_token=issued.access_token, access_ttl_s=context.settings.access_token_ttl_s,
        refresh_token=issued.refresh_token, refresh_ttl_s=context.settings.refresh_token_ttl_s,
        csrf=issued.csrf_token, secure=secure)
    return redirect
