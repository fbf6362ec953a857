"""OpenAPI `responses` for the account endpoints: every error status a route can answer is
documented with the one error shape (schemathesis checks responses against this)."""

from __future__ import annotations

from typing import Any

from deployments.schemas import ErrorResponse

_DESCRIPTIONS = {
    400: "Bad request.",
    401: "Not signed in, or the credentials are wrong.",
    403: "Signed in, but not allowed (role, CSRF, disabled account, wrong code).",
    404: "Not found (or not yours).",
    409: "Conflicts with the current state.",
    413: "The body is too large.",
    415: "Unsupported body type.",
    422: "Invalid parameters; `details` names each field.",
    429: "Rate limited; see Retry-After.",
    502: "An upstream service (identity provider, feed site) failed.",
    503: "A backing service is unavailable; try again shortly.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}


# Every route that needs a user can answer these.
USER_ERRORS = (401, 403, 422, 429, 503)
