"""The reader's chat page at `/`, its static assets, and the embeddable widget at `/widget.js`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response

from bookchat.config import DEFAULT_FRAME_ANCESTORS

NO_FRAMING = "'none'"
ASSET_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "chat.js": "text/javascript; charset=utf-8",
    "markdown.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# The widget is these sources in this order inside one function; nothing is minified or
# transpiled, so what a book owner reads in /widget.js is what is in the repository.
WIDGET_SCRIPTS = ("markdown.js", "chat.js", "embed.js")
WIDGET_STYLES = ("chat.css", "embed.css")
JAVASCRIPT = "text/javascript; charset=utf-8"
# An asset URL carries its content hash (?v=...), so a matching request may be cached for good;
# the page itself is revalidated every time so a new release shows up on the next load.
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
# The widget's URL is fixed in every book page, so it cannot carry a hash: books cache it for
# ten minutes, then revalidate with its ETag (a 304 when unchanged).
_WIDGET_CACHE = "public, max-age=600"


def content_security_policy(frame_ancestors: Sequence[str] = DEFAULT_FRAME_ANCESTORS) -> str:
    """The page's policy: no inline script or style, no HTML sinks, framing as configured.

    Trusted Types with no policy makes every HTML-parsing sink (innerHTML and friends) throw,
    so model or book text can never become markup even through a future mistake.
    """
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {' '.join(frame_ancestors) or NO_FRAMING}; "
        "require-trusted-types-for 'script'; trusted-types 'none'"
    )


CONTENT_SECURITY_POLICY = content_security_policy()


@dataclass(frozen=True)
class _File:
    body: bytes
    media_type: str

    @cached_property
    def version(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:16]

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def _read(name: str) -> bytes:
    return resources.files("bookchat.web").joinpath(name).read_bytes()


@cache
def _asset(name: str) -> _File:
    return _File(body=_read(name), media_type=ASSET_TYPES[name])


@cache
def _page() -> _File:
    # Stamp each asset URL with its hash so browsers never mix an old script with a new page.
    html = _read("index.html").decode("utf-8")
    for name in ASSET_TYPES:
        html = html.replace(f"/static/{name}", f"/static/{name}?v={_asset(name).version}")
    return _File(body=html.encode("utf-8"), media_type="text/html; charset=utf-8")


@cache
def widget_script() -> _File:
    """/widget.js: the page's renderer and conversation code plus the widget, in one scope.

    Assembled from the same files the page loads (no build step). The outer function takes
    `globalThis` as a parameter so the parts register with each other on a private object
    instead of the book's window; `bookchatScript` is read before anything else runs, while
    document.currentScript still names this script.
    """
    styles = "\n".join(_read(name).decode("utf-8") for name in WIDGET_STYLES)
    parts = "\n".join(_read(name).decode("utf-8") for name in WIDGET_SCRIPTS)
    body = (
        "/* bookchat widget: markdown.js, chat.js and embed.js from bookchat/web/. */\n"
        "(function (globalThis) {\n"
        '"use strict";\n'
        "const bookchatScript = document.currentScript;\n"
        f"const bookchatStyles = {json.dumps(styles)};\n"
        f"{parts}\n"
        "})({});\n"
    )
    return _File(body=body.encode("utf-8"), media_type=JAVASCRIPT)


def _respond(
    request: Request, file: _File, cache_control: str, headers: dict[str, str]
) -> Response:
    headers = {**headers, "ETag": file.etag, "Cache-Control": cache_control}
    if file.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content=file.body, media_type=file.media_type, headers=headers)


def build_router(*, frame_ancestors: Sequence[str] = DEFAULT_FRAME_ANCESTORS) -> APIRouter:
    """The page, asset and widget routes, with the page framable only by frame_ancestors."""
    router = APIRouter(tags=["page"], include_in_schema=False)
    page_headers = {
        "Content-Security-Policy": content_security_policy(frame_ancestors),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
    widget_headers = {
        "X-Content-Type-Options": "nosniff",
        # Any book may load it, including one that isolates itself with COEP or loads
        # scripts with crossorigin (to see their errors): it is public, with no secrets.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",
    }

    @router.api_route("/", methods=["GET", "HEAD"])
    async def chat_page(request: Request) -> Response:
        """The chat page."""
        return _respond(request, _page(), _REVALIDATE, page_headers)

    @router.api_route("/static/{name}", methods=["GET", "HEAD"])
    async def static_asset(name: str, request: Request) -> Response:
        """One of the page's scripts or its stylesheet; anything else is a 404."""
        if name not in ASSET_TYPES:
            raise HTTPException(status_code=404, detail="No such file on the chat page.")
        file = _asset(name)
        fresh = request.query_params.get("v") == file.version
        return _respond(request, file, _IMMUTABLE if fresh else _REVALIDATE, page_headers)

    @router.api_route("/widget.js", methods=["GET", "HEAD"])
    async def widget(request: Request) -> Response:
        """The embeddable widget: one script tag adds "Ask the book" to any page."""
        return _respond(request, widget_script(), _WIDGET_CACHE, widget_headers)

    return router


router = build_router()
