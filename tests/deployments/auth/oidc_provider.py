"""A real OpenID Connect provider for the tests, built with Authlib's server side (Flask
integration), served by werkzeug on 127.0.0.1 in a thread.

It signs ID tokens with its own RSA key (published at /jwks), requires PKCE (S256) and a
nonce, and auto-approves as `next_user`, the identity the test wants to sign in as. Two
switches make it misbehave on purpose: `tamper_nonce` (an ID token for another request) and
`sign_with_other_key` (a signature its JWKS does not vouch for).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CLIENT_ID = "newsray-test"
CLIENT_SECRET = "provider-side-client-secret-for-tests"


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "email", "profile"}
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: dict[str, Any]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    provider: "Provider"

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return "not-the-nonce-you-sent" if self.provider.tamper_nonce else self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None


@dataclass
class Provider:
    issuer: str = ""
    redirect_uris: list[str] = field(default_factory=list)
    next_user: dict[str, Any] = field(default_factory=dict)
    tamper_nonce: bool = False
    sign_with_other_key: bool = False
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-1"}))
    other_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-1"}))
    codes: dict[str, AuthCode] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def as_user(self, sub: str, email: str, verified: bool = True) -> None:
        self.next_user = {"sub": sub, "email": email, "email_verified": verified}


def build_app(provider: Provider) -> Flask:
    app = Flask("test-oidc-provider")

    def query_client(client_id: str) -> Client | None:
        if client_id != CLIENT_ID:
            return None
        return Client(CLIENT_ID, CLIENT_SECRET, provider.redirect_uris)

    server = AuthorizationServer(app, query_client=query_client, save_token=lambda token, req: None)

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, req: Any) -> None:
            data = req.payload.data
            provider.codes[code] = AuthCode(
                code=code, client_id=req.client.get_client_id(), redirect_uri=req.payload.redirect_uri,
                scope=req.payload.scope, user=req.user, nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"), code_challenge_method=data.get("code_challenge_method"),
                auth_time=int(time.time()), provider=provider)

        def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
            item = provider.codes.get(code)
            return item if item and item.client_id == client.get_client_id() else None

        def delete_authorization_code(self, authorization_code: AuthCode) -> None:
            provider.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: AuthCode) -> dict[str, Any]:
            return authorization_code.user

    class OpenID(OpenIDCode):
        def resolve_client_private_key(self, client: Client) -> dict[str, Any]:
            key = provider.other_key if provider.sign_with_other_key else provider.key
            return key.as_dict(private=True)

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            return {"iss": provider.issuer, "aud": [client.get_client_id()]}

        def get_client_algorithm(self, client: Client) -> str:
            return "RS256"

        def exists_nonce(self, nonce: str, req: Any) -> bool:
            return any(c.nonce == nonce for c in provider.codes.values())

        def generate_user_info(self, user: dict[str, Any], scope: str) -> UserInfo:
            return UserInfo(sub=user["sub"], email=user["email"], email_verified=user["email_verified"])

    server.register_grant(CodeGrant, [OpenID(require_nonce=True), CodeChallenge(required=True)])

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return jsonify({
            "issuer": provider.issuer,
            "authorization_endpoint": f"{provider.issuer}/authorize",
            "token_endpoint": f"{provider.issuer}/token",
            "jwks_uri": f"{provider.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
        })

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify({"keys": [provider.key.as_dict(private=False)]})

    @app.get("/authorize")
    def authorize() -> Any:
        # No login page: the test decides who "logs in" here.
        grant = server.get_consent_grant(end_user=provider.next_user)
        return server.create_authorization_response(grant=grant, grant_user=provider.next_user)

    @app.post("/token")
    def token() -> Any:
        provider.token_requests.append(dict(request.form))
        return server.create_token_response()

    return app


@contextmanager
def running_provider(redirect_uris: list[str]) -> Iterator[Provider]:
    provider = Provider(redirect_uris=redirect_uris)
    http = make_server("127.0.0.1", 0, build_app(provider), threaded=True)
    provider.issuer = f"http://127.0.0.1:{http.server_port}"
    thread = threading.Thread(target=http.serve_forever, name="test-oidc-provider", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=10)
