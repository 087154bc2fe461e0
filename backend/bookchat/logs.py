"""Logging setup and the one-line-per-request access log."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookchat.redact import escape_controls, redact

access_log = logging.getLogger("bookchat.access")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """Each record is one line: control characters in the message are escaped.

    A traceback keeps its lines (it is the one multi-line part a reader needs), each indented
    and escaped, so no line of it can pass for a record of its own. The configured secrets are
    masked in all of it (bookchat.redact), whoever logged the record.
    """

    def __init__(self, fmt: str, *, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(self._one_line(record), self.secrets)

    def _one_line(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = escape_controls(self.formatMessage(record))
        # Formatted here, not from record.exc_text: another handler may have cached it raw.
        if record.exc_info:
            line += "\n" + self._indented(self.formatException(record.exc_info))
        elif record.exc_text:
            line += "\n" + self._indented(record.exc_text)
        if record.stack_info:
            line += "\n" + self._indented(self.formatStack(record.stack_info))
        return line

    @staticmethod
    def _indented(text: str) -> str:
        return "\n".join("    " + escape_controls(line) for line in text.splitlines())


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Send bookchat's logs to stderr at LOG_LEVEL, secrets masked; quiet chatty libraries."""
    root = logging.getLogger()
    # Idempotent: tests and `serve` may both call this; one handler, never two.
    for handler in list(root.handlers):
        if getattr(handler, "_bookchat", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(_FORMAT, secrets=secrets))
    handler._bookchat = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Their INFO lines repeat request URLs (with keys in query strings for some SDKs) or
    # duplicate our access log; WARNING and above still come through.
    for name in ("httpx", "httpx2", "httpcore", "google_genai", "uvicorn.access", "urllib3"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


class AccessLogMiddleware:
    """Log method, path, status and latency once per request, when the response has ended."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        first_byte: float | None = None
        streamed = False

        async def send_logged(message: Message) -> None:
            nonlocal status, first_byte, streamed
            if message["type"] == "http.response.start":
                status = message["status"]
                first_byte = time.perf_counter()
                headers = dict(message.get("headers") or [])
                streamed = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            total_ms = (time.perf_counter() - started) * 1000
            # The path only, never the query string: that is where callers put secrets.
            line = f"{scope['method']} {scope['path']} {status or '-'} {total_ms:.1f}ms"
            if first_byte is not None and streamed:
                # For a stream the total is the whole answer; the time to headers matters too.
                line += f" (headers after {(first_byte - started) * 1000:.1f}ms)"
            access_log.info(line)
