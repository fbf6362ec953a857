"""OpenID Connect sign-in with Authlib: a Google preset and any provider found by issuer URL.

Authlib does the protocol: the authorization URL with state, nonce and a PKCE (S256)
challenge; on the way back it checks the state, exchanges the code with the verifier, and
validates the ID token (signature against the provider's JWKS, issuer, audience, expiry,
nonce). Its Starlette client keeps that per-login data in `request.session`; we give it a
session of our own that lives only in a signed, short-lived, HttpOnly cookie scoped to the
OIDC endpoints (no app-wide session middleware, nothing stored server-side).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

from deployments.auth.settings import AuthSettings

GOOGLE_ISSUER = "https://accounts.google.com"
STATE_AUDIENCE = "newsray:oidc-state"
STATE_TTL_S = 600
MAX_STATE_COOKIE = 3500


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    label: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"


def configured_providers(settings: AuthSettings) -> list[ProviderConfig]:
    providers = []
    if settings.oidc_google_client_id:
        providers.append(ProviderConfig("google", "Google", GOOGLE_ISSUER, settings.oidc_google_client_id,
                                        settings.oidc_google_client_secret.get_secret_value(), "openid email profile"))
    if settings.oidc_issuer and settings.oidc_client_id:
        providers.append(ProviderConfig(settings.oidc_name, settings.oidc_label, settings.oidc_issuer,
                                        settings.oidc_client_id, settings.oidc_client_secret.get_secret_value(),
                                        settings.oidc_scopes))
    return providers


class OidcClients:
    def __init__(self, settings: AuthSettings) -> None:
        self.providers = {provider.name: provider for provider in configured_providers(settings)}
        self._oauth = OAuth()
        for provider in self.providers.values():
            self._oauth.register(
                provider.name, client_id=provider.client_id, client_secret=provider.client_secret,
                server_metadata_url=provider.metadata_url,
                client_kwargs={"scope": provider.scopes, "code_challenge_method": "S256", "timeout": 10.0},
            )

    def client(self, name: str) -> StarletteOAuth2App | None:
        if name not in self.providers:
            return None
        client: StarletteOAuth2App = self._oauth.create_client(name)
        return client


def encode_state(key: bytes, provider: str, session: dict[str, Any], next_path: str) -> str:
    now = int(time.time())
    claims = {"aud": STATE_AUDIENCE, "iat": now, "exp": now + STATE_TTL_S, "p": provider, "s": session, "n": next_path}
    return jwt.encode(claims, key, algorithm="HS256")


def decode_state(key: bytes, value: str | None, provider: str) -> tuple[dict[str, Any], str] | None:
    """The Authlib session and the path to return to, or None when the cookie is missing,
    forged, expired or from a login at another provider."""
    if not value or len(value) > MAX_STATE_COOKIE:
        return None
    try:
        claims = jwt.decode(value, key, algorithms=["HS256"], audience=STATE_AUDIENCE,
                            options={"require": ["exp", "aud", "p", "s", "n"]})
    except jwt.PyJWTError:
        return None
    if claims["p"] != provider or not isinstance(claims["s"], dict) or not isinstance(claims["n"], str):
        return None
    return claims["s"], claims["n"]


def safe_next(value: str | None) -> str:
    """Only a path on this site: an open redirect after login is a phishing tool."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return "/"
    if any(ord(ch) < 0x21 for ch in value):
        return "/"
    return value
