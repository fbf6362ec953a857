"""Settings of the accounts layer (NEWSRAY_* variables, like cluster.settings).

Kept beside the code that uses them so the shared settings module stays small; invalid values
fail with a message that names the variable, as cluster.settings does.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cluster.settings import ENV_PREFIX, comma_list, parse_networks, settings_error

SLUG = r"^[a-z0-9][a-z0-9_-]{0,31}$"


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Tokens.
    access_token_ttl_s: int = Field(default=900, ge=60, le=3600, description="Access JWT lifetime (15 min).")
    refresh_token_ttl_s: int = Field(default=30 * 86400, ge=3600, description="Refresh token lifetime (30 days).")
    mfa_token_ttl_s: int = Field(default=300, ge=30, le=1800, description="Time to enter the code after the password.")

    # Accounts.
    registration_open: bool = Field(default=True, description="Anyone may register (else admins create accounts).")

    # Rate limits: login, register and MFA, per account and per client address (sliding window).
    auth_rate_limit: int = Field(default=10, ge=1)
    auth_rate_window_s: int = Field(default=600, ge=1)
    mfa_max_attempts: int = Field(default=5, ge=1, description="Wrong codes per challenge before the lock.")
    mfa_lock_s: int = Field(default=900, ge=1)
    # The general per-user API limit (requests per window, all endpoints).
    api_rate_limit: int = Field(default=1200, ge=1)
    api_rate_window_s: int = Field(default=60, ge=1)
    # Anonymous semantic/hybrid searches per client address and window: each may cost a model
    # call, and anonymous callers have no per-user limit. Signed-in readers have theirs.
    anonymous_search_limit: int = Field(default=60, ge=1)
    anonymous_search_window_s: int = Field(default=60, ge=1)
    # Proxies whose X-Forwarded-For is believed (CIDRs). Empty: the peer address is the client.
    # Ray Serve's HAProxy does not add the header, so trusting it alone would let clients pick
    # their own address; list proxies only when one in front sets the header.
    trusted_proxies: str = ""

    # Browser security.
    cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS; empty = CORS off.")
    cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto", description="Secure cookies: auto = when the request (or NEWSRAY_PUBLIC_URL) is https.")

    # OpenID Connect: a Google preset and one generic provider found by its issuer URL.
    oidc_google_client_id: str = ""
    oidc_google_client_secret: SecretStr = SecretStr("")
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_name: str = Field(default="oidc", pattern=SLUG, description="URL name of the generic provider.")
    oidc_label: str = Field(default="Single sign-on", max_length=100)
    oidc_scopes: str = "openid email profile"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in comma_list(value):
            if origin == "*":
                raise ValueError("'*' is not allowed: list the origins (credentials are involved)")
            if not origin.startswith(("https://", "http://")):
                raise ValueError(f"{origin!r} is not an http(s) origin")
        return value

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.rstrip("/") for origin in comma_list(self.cors_origins)]


def load_auth_settings(**overrides: object) -> AuthSettings:
    try:
        return AuthSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise settings_error(exc) from None


@lru_cache(maxsize=1)
def get_auth_settings() -> AuthSettings:
    return load_auth_settings()
