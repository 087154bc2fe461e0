"""Headers every response carries, whichever route (or error handler) made it."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# nosniff: a JSON error or an SSE stream is never run as a script or styled as CSS, whatever a
# page that embeds it claims. The referrer policy keeps bookchat's paths (conversation ids) out
# of other sites' logs. A route that sets its own value (the page, the docs) keeps it.
DEFAULT_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
)


class DefaultHeadersMiddleware:
    """Add DEFAULT_HEADERS to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in DEFAULT_HEADERS if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
