"""Accounts and security for the Api ingress: passwords, tokens, MFA, OpenID Connect, CSRF,
rate limits, the request middleware and the FastAPI dependencies routes use.

`install_auth(app)` (deployments.auth.install) wires it all into an app; nothing here does I/O
at import time.
"""
