"""The reader's pages: where web/ is, the Jinja2 environment, and the headers pages carry."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import jinja2
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

WEB_DIR_ENV = "NEWSRAY_WEB_DIR"

# Pages load nothing from elsewhere, so the strictest policy costs nothing and defeats
# injected scripts and framing (clickjacking) even if escaping ever failed.
PAGE_SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_STATIC_HEADERS = [(b"x-content-type-options", b"nosniff")]


def web_dir() -> Path:
    """web/ beside the packages: the repository root is Ray's working_dir, so this holds in a
    checkout, an editable install and a Serve replica alike; NEWSRAY_WEB_DIR overrides it."""
    override = os.environ.get(WEB_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[1] / "web"


@lru_cache(maxsize=4)
def template_environment(directory: Path) -> jinja2.Environment:
    # autoescape=True for every template, not a file-extension guess: titles and summaries
    # come from feeds anyone can write.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class SecureStaticFiles(StaticFiles):
    """Static files that browsers must not sniff into another type."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_STATIC_HEADERS]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def static_files(directory: Path) -> SecureStaticFiles:
    # check_dir=False: no file system access while the app is built (it is built at import
    # time inside Serve replicas); a missing folder shows up as 404s, and /health still works.
    return SecureStaticFiles(directory=directory / "static", check_dir=False)
