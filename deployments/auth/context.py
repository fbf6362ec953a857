"""Everything the accounts layer needs per app, built lazily on first use (building the app
does no I/O; the development secret is read from the data dir on the first request)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from starlette.applications import Starlette

from deployments.auth.keys import Keys, keys_for
from deployments.auth.oidc import OidcClients
from deployments.auth.ratelimit import ApiLimiter, AuthRateLimiter
from deployments.auth.settings import AuthSettings, get_auth_settings
from deployments.auth.tokens import AccessTokens
from deployments.backends import Backends

# A revocation must outlive the tokens it kills; a minute of slack covers clock skew.
REVOCATION_SLACK_S = 60


def _app_secret() -> str:
    from cluster.settings import get_settings

    return get_settings().secret()


def _public_url() -> str | None:
    from cluster.settings import get_settings

    return get_settings().public_url


class AuthContext:
    def __init__(self, backends: Backends, settings: AuthSettings | None = None,
                 secret: Callable[[], str] = _app_secret, public_url: Callable[[], str | None] = _public_url) -> None:
        self.backends = backends
        self.settings = settings or get_auth_settings()
        self._secret = secret
        self._public_url = public_url

    @cached_property
    def keys(self) -> Keys:
        return keys_for(self._secret())

    @cached_property
    def tokens(self) -> AccessTokens:
        return AccessTokens(self.keys.access_token, self.settings.access_token_ttl_s)

    @cached_property
    def auth_limiter(self) -> AuthRateLimiter:
        return AuthRateLimiter(self.backends.redis, self.settings.auth_rate_limit, self.settings.auth_rate_window_s)

    @cached_property
    def anonymous_search_limiter(self) -> AuthRateLimiter:
        return AuthRateLimiter(self.backends.redis, self.settings.anonymous_search_limit,
                               self.settings.anonymous_search_window_s)

    @cached_property
    def api_limiter(self) -> ApiLimiter:
        return ApiLimiter(self.backends.redis, self.settings.api_rate_limit, self.settings.api_rate_window_s,
                          revocation_ttl_s=self.settings.access_token_ttl_s + REVOCATION_SLACK_S)

    @cached_property
    def oidc(self) -> OidcClients:
        return OidcClients(self.settings)

    @property
    def public_url(self) -> str | None:
        return self._public_url()


def auth_context(app: Starlette) -> AuthContext:
    context: AuthContext = app.state.auth
    return context
