"""FastAPI's interactive API docs, off by default: on a public Space they are one more page that
loads scripts from a CDN. BOOKCHAT_API_DOCS=on serves them at /api/docs and /api/redoc (not
/docs, where the sample book's pages are), each under a policy that allows its CDN files, its
own inline script (by hash) and nothing else. /openapi.json stays public either way: it is the
widget's contract, plain JSON that runs nothing and names no secret.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

CDN = "https://cdn.jsdelivr.net"
FAVICON = "/static/icon.svg"  # bookchat's own icon rather than a third site's
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: str) -> str:
    """The CSP for one docs page: its CDN files, its inline scripts by hash, no framing."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src {CDN} {hashes}".rstrip()
        + f"; style-src {CDN} 'unsafe-inline'; img-src 'self' data: {CDN}; font-src {CDN} data:; "
        "connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def _secured(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode("utf-8")
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": docs_policy(html),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


def build_router(*, openapi_url: str, title: str) -> APIRouter:
    """/api/docs (Swagger UI) and /api/redoc for the app's schema at openapi_url."""
    router = APIRouter(include_in_schema=False)

    @router.get("/api/docs")
    async def swagger() -> HTMLResponse:
        """Swagger UI for the HTTP API."""
        return _secured(
            get_swagger_ui_html(
                openapi_url=openapi_url, title=f"{title} API", swagger_favicon_url=FAVICON
            )
        )

    @router.get("/api/redoc")
    async def redoc() -> HTMLResponse:
        """ReDoc for the HTTP API."""
        return _secured(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{title} API",
                redoc_favicon_url=FAVICON,
                with_google_fonts=False,  # one CDN, not two
            )
        )

    return router
