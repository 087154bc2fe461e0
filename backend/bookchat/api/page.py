"""The reader's chat page at `/`: one HTML file and its static assets, shipped in the package."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response

router = APIRouter(tags=["page"], include_in_schema=False)

# No inline script or style anywhere, so the page can forbid them outright. Trusted Types
# with no policy makes every HTML-parsing sink (innerHTML and friends) throw, so model or book
# text can never become markup even through a future mistake. frame-ancestors allows the
# Hugging Face Space page, which shows the app in an iframe.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self' https://huggingface.co; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
ASSET_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "markdown.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# An asset URL carries its content hash (?v=...), so a matching request may be cached for good;
# the page itself is revalidated every time so a new release shows up on the next load.
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"


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


def _respond(request: Request, file: _File, cache_control: str) -> Response:
    headers = {**_SECURITY_HEADERS, "ETag": file.etag, "Cache-Control": cache_control}
    if file.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content=file.body, media_type=file.media_type, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"])
async def chat_page(request: Request) -> Response:
    """The chat page."""
    return _respond(request, _page(), _REVALIDATE)


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
async def static_asset(name: str, request: Request) -> Response:
    """One of the page's scripts or its stylesheet; anything else is a 404."""
    if name not in ASSET_TYPES:
        raise HTTPException(status_code=404, detail="No such file on the chat page.")
    file = _asset(name)
    fresh = request.query_params.get("v") == file.version
    return _respond(request, file, _IMMUTABLE if fresh else _REVALIDATE)
