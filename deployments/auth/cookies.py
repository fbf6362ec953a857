"""The cookies the web pages authenticate with.

* newsray_access — the access JWT; HttpOnly (scripts never see it), SameSite=Lax, path /.
* newsray_refresh — the refresh token; HttpOnly, SameSite=Strict, and sent only to the auth
  endpoints (path /api/v1/auth), so no other request carries it.
* newsray_csrf — the CSRF token; readable by the page's script (that is its job), SameSite=Strict.
* newsray_mfa — an MFA challenge after a provider login; HttpOnly, auth endpoints only.
* newsray_oidc — the signed state of a provider login in progress (state, nonce, PKCE verifier).

Secure when the request came over https (or NEWSRAY_PUBLIC_URL is https, or always if told).
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import HTTPConnection
from starlette.responses import Response

ACCESS = "newsray_access"
REFRESH = "newsray_refresh"
CSRF = "newsray_csrf"
MFA = "newsray_mfa"
OIDC = "newsray_oidc"
AUTH_PATH = "/api/v1/auth"

SameSite = Literal["lax", "strict", "none"]


def secure_for(request: HTTPConnection, mode: str, public_url: str | None) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    return request.url.scheme == "https" or bool(public_url and public_url.startswith("https://"))


def set_cookie(response: Response, name: str, value: str, *, max_age: int, secure: bool, path: str = "/",
               httponly: bool = True, samesite: SameSite = "lax") -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, secure=secure, httponly=httponly,
                        samesite=samesite)


def clear_cookie(response: Response, name: str, *, secure: bool, path: str = "/", httponly: bool = True,
                 samesite: SameSite = "lax") -> None:
    response.delete_cookie(name, path=path, secure=secure, httponly=httponly, samesite=samesite)


def set_session_cookies(response: Response, *, access_token: str, access_ttl_s: int, refresh_token: str,
                        refresh_ttl_s: int, csrf: str, secure: bool) -> None:
    set_cookie(response, ACCESS, access_token, max_age=access_ttl_s, secure=secure)
    set_cookie(response, REFRESH, refresh_token, max_age=refresh_ttl_s, secure=secure, path=AUTH_PATH,
               samesite="strict")
    # As long as the refresh token: after the access cookie expires, the page still needs the
    # CSRF token to call /refresh.
    set_cookie(response, CSRF, csrf, max_age=refresh_ttl_s, secure=secure, httponly=False, samesite="strict")


def clear_session_cookies(response: Response, *, secure: bool) -> None:
    clear_cookie(response, ACCESS, secure=secure)
    clear_cookie(response, REFRESH, secure=secure, path=AUTH_PATH, samesite="strict")
    clear_cookie(response, CSRF, secure=secure, httponly=False, samesite="strict")
    clear_cookie(response, MFA, secure=secure, path=AUTH_PATH, samesite="strict")
