"""Request and response models of the account endpoints (auth, me, MFA)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from deployments.auth.accounts import normalize_email

MAX_PASSWORD_INPUT = 1024


class _In(BaseModel):
    # Unknown fields are errors that name the field: a typo never passes silently.
    model_config = ConfigDict(extra="forbid")


class EmailField(_In):
    email: str = Field(max_length=320, examples=["reader@example.org"])

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)


class LoginIn(EmailField):
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_INPUT)
    use_cookies: bool = Field(default=False, description="Web pages: set HttpOnly cookies instead of returning tokens.")


class RegisterIn(LoginIn):
    pass


class MfaIn(_In):
    mfa_token: str | None = Field(default=None, max_length=100,
                                  description="From the login answer; omitted after a provider login (cookie).")
    code: str = Field(min_length=6, max_length=20, description="A 6-digit TOTP code or a backup code.")
    use_cookies: bool = False


class RefreshIn(_In):
    refresh_token: str | None = Field(default=None, max_length=200, description="Omit to use the refresh cookie.")
    use_cookies: bool = False


class LogoutIn(_In):
    refresh_token: str | None = Field(default=None, max_length=200)


class PasswordChangeIn(_In):
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_INPUT)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_INPUT)
    use_cookies: bool = False


class DeleteAccountIn(_In):
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_INPUT,
                                 description="Required when the account has a password.")


class CodeIn(_In):
    code: str = Field(min_length=6, max_length=20)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    email_verified: bool
    role: Literal["reader", "admin"]
    created_at: datetime
    last_login_at: datetime | None
    mfa_enabled: bool
    has_password: bool
    backup_codes_left: int
    providers: list[str]


class SessionOut(BaseModel):
    mfa_required: Literal[False] = False
    token_type: Literal["bearer"] = "bearer"
    access_token: str | None = Field(description="Null when cookies were asked for.")
    refresh_token: str | None = Field(description="Null when cookies were asked for.")
    expires_in: int = Field(description="Seconds the access token is valid.")
    csrf_token: str | None = Field(description="Send as X-CSRF-Token with cookie-authenticated writes.")
    user: UserOut


class MfaChallengeOut(BaseModel):
    mfa_required: Literal[True] = True
    mfa_token: str
    expires_in: int
    methods: list[Literal["totp", "backup_code"]]


LoginOut = Annotated[SessionOut | MfaChallengeOut, Field(discriminator="mfa_required")]


class ProviderOut(BaseModel):
    name: str
    label: str
    login_url: str


class ProviderList(BaseModel):
    items: list[ProviderOut]


class TotpEnrollmentOut(BaseModel):
    secret: str = Field(description="Base32, for manual entry.")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as an SVG QR code.")


class BackupCodesOut(BaseModel):
    backup_codes: list[str] = Field(description="Shown once; each works once.")
