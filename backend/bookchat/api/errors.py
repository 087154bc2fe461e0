"""Every error as JSON a reader can act on: `{"detail": str, "code": str}`; never a trace."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookchat.redact import escape_controls

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# A body must have arrived this long after its first read: a client trickling a byte a second
# would otherwise hold a connection (of BOOKCHAT_MAX_CONNECTIONS) for hours.
BODY_SECONDS = 10.0
# How much of a request's path an error message quotes back (the path is the client's text).
MAX_QUOTED_PATH = 80

_TOO_LARGE = f"the request body is larger than the {MAX_BODY_BYTES // 1024} KiB limit"
_TOO_SLOW = f"the request body did not arrive within {BODY_SECONDS:g} s"
_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


class ApiError(HTTPException):
    """An HTTP error with a machine-readable code next to the reader's message."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code
        self.extra = extra  # more JSON fields next to detail and code (e.g. retry_after)


# PostgreSQL cannot store NUL in text: a body's text with one is refused by its model's
# validator (the same on both stores) rather than hitting a store error that a client told to
# retry would hit for ever; the schema says so with this pattern. (Pydantic already refuses lone
# surrogates, the other text no store can hold.)
NO_NUL_PATTERN = "^[^\\u0000]*$"
NOT_BLANK_NO_NUL_PATTERN = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


def storable(value: str | None) -> str | None:
    """A body's text as given; a ValueError (a 422 naming the field) if it holds NUL."""
    if value is not None and "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The JSON shape of every error response."""
    return {"detail": detail, "code": code, **extra}


# What every request with a body may also be answered, before its route runs (the JSON
# handlers and BodyLimitMiddleware below): documented on each such operation.
_BODY_ERRORS = {
    "400": "the body is not JSON (`detail` says where it stopped reading)",
    "408": "the body did not arrive in time",
    "413": "the body is larger than the limit",
}
_ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail", "code"],
    "properties": {
        "detail": {"type": "string", "description": "what went wrong, for a reader"},
        "code": {"type": "string", "description": "what went wrong, for a program"},
        "errors": {
            "type": "array",
            "description": "on 400 and 422: each field that was refused, and why",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "retry_after": {"type": "integer", "description": "on 429: seconds to wait"},
    },
}


def _document_errors(app: FastAPI) -> None:
    """Make the app's OpenAPI schema say how it answers errors: every 4xx and 5xx response
    with the one error shape, and the 400, 408 and 413 any body can get.

    The schema is this contract (http-api.md); a client generated from it, or a fuzzer checking
    responses against it, must not meet undocumented statuses or bodies.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "requestBody" in operation:
                    for status, description in _BODY_ERRORS.items():
                        responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "message") -> "message"; ("path", "conversation_id") -> "conversation_id"
    parts = [str(p) for p in loc if p not in {"body", "path", "query", "header"}]
    return ".".join(parts)


# The body /api/chat takes; other endpoints name their own fields in their errors.
_CHAT_EXAMPLE = ' such as {"message": "…"}'


def _explain(error: dict[str, Any], example: str = "") -> str:
    kind = error.get("type", "")
    field = _field(error.get("loc", ()))
    if kind == "json_invalid":
        position = error.get("loc", ("body", "?"))[-1]
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        return f"the request body is not valid JSON ({reason} at character {position})"
    if kind == "missing" and not field:
        return f"the request body is empty: send a JSON object{example}"
    if kind in {"model_attributes_type", "dict_type"} and not field:
        return "the request body must be a JSON object with Content-Type: application/json" + (
            f",{example}" if example else ""
        )
    if kind == "uuid_parsing" or kind == "uuid_type":
        return f"{field}: must be a UUID such as 123e4567-e89b-12d3-a456-426614174000"
    message = str(error.get("msg", "is invalid"))
    # Pydantic prefixes custom validator messages with "Value error, ".
    message = message.removeprefix("Value error, ")
    if kind == "missing":
        message = "is required"
    elif kind == "literal_error":
        message = f"must be one of {(error.get('ctx') or {}).get('expected', '')}".rstrip()
    else:
        message = message[:1].lower() + message[1:]
    return f"{field}: {message}" if field else message


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    example = _CHAT_EXAMPLE if request.url.path == "/api/chat" else ""
    explained = [_explain(e, example) for e in errors]
    invalid_json = any(e.get("type") == "json_invalid" for e in errors)
    status, code = (400, "invalid_json") if invalid_json else (422, "invalid_request")
    fields = [
        # A json_invalid loc is ("body", <character offset>): no field of the request.
        {"field": "" if e.get("type") == "json_invalid" else _field(e.get("loc", ())), "message": m}
        for e, m in zip(errors, explained, strict=True)
    ]
    detail = "; ".join(dict.fromkeys(explained))
    return JSONResponse(error_body(code, detail, errors=fields), status_code=status)


def _unreadable_json(exc: StarletteHTTPException) -> str | None:
    """Why FastAPI's bare "error parsing the body" 400 happened, when the body was JSON to it.

    FastAPI reports only json.JSONDecodeError as invalid JSON; bytes that are not UTF-8, nesting
    deeper than the parser's recursion limit and over-long integers raise other errors.
    """
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return "the request body is not valid JSON (it must be UTF-8 text)"
    if isinstance(cause, RecursionError):
        return "the request body is not valid JSON (nested too deep to read)"
    if isinstance(cause, ValueError):
        return "the request body is not valid JSON (a number is too long to read)"
    return None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if (reason := _unreadable_json(exc)) is not None:
        return JSONResponse(error_body("invalid_json", reason), status_code=400)
    code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
    detail = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"there is nothing at {quoted_path(request.url.path)}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {quoted_path(request.url.path)}"
    extra = getattr(exc, "extra", None) or {}
    return JSONResponse(
        error_body(code, str(detail), **extra), status_code=exc.status_code, headers=exc.headers
    )


def quoted_path(path: str) -> str:
    """A request path as an error may quote it: bounded, its control characters escaped.

    The path is whatever a stranger sent: a 20 KB one must not come back whole, nor an escape
    sequence that a terminal showing the response would obey.
    """
    quoted = escape_controls(path)
    return quoted if len(quoted) <= MAX_QUOTED_PATH else quoted[:MAX_QUOTED_PATH] + "…"


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON handlers for validation and HTTP errors, and document them."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    _document_errors(app)


def _reader_went_away(exc: BaseException) -> bool:
    import anyio

    if isinstance(exc, BaseExceptionGroup):
        return all(_reader_went_away(e) for e in exc.exceptions)
    return isinstance(exc, anyio.BrokenResourceError | anyio.ClosedResourceError | OSError)


class UnhandledErrorMiddleware:
    """Turn an exception escaping a route into a generic JSON 500; the trace goes to the log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_tracked(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if response_started and _reader_went_away(exc):
                # A stream whose reader disconnected: normal, and its answer is already stored.
                log.debug(
                    "%s %s: the client went away mid-response", scope["method"], scope["path"]
                )
                return
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if response_started:
                # Too late for a status code; ending the response is all that is left.
                return
            response = JSONResponse(
                error_body("internal_error", "something went wrong on our side; please retry"),
                status_code=500,
            )
            await response(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse request bodies over max_bytes with a JSON 413, declared or streamed, and bodies
    still arriving seconds after they started with a JSON 408."""

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, seconds: float | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.seconds = BODY_SECONDS if seconds is None else seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            # Refused before a byte of the body is read.
            response = JSONResponse(error_body("body_too_large", _TOO_LARGE), status_code=413)
            await response(scope, receive, send)
            return
        received = 0
        complete = False
        deadline: float | None = None

        async def receive_limited() -> Message:
            nonlocal received, complete, deadline
            if complete:
                # After the body, receive() waits for a disconnect for as long as a stream
                # lasts: no deadline there.
                return await receive()
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.seconds
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                # Surfaces where the route reads its body, and becomes the JSON 408.
                raise ApiError(
                    408, "body_timeout", _TOO_SLOW, headers={"Connection": "close"}
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    # Surfaces where the route reads its body, and becomes the JSON 413.
                    raise ApiError(413, "body_too_large", _TOO_LARGE)
            return message

        await self.app(scope, receive_limited, send)
