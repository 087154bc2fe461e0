"""Gemini's streamGenerateContent over its documented REST stream (`?alt=sse`), without the SDK.

Why not google-genai on this path: the SDK validates every streamed chunk into a pydantic
GenerateContentResponse (`_from_response` -> `_remove_extra_fields` -> `model_validate`) and
reads the stream through its own line splitter; py-spy put about 70 % of the event loop's busy
time at 50 concurrent answers there (backend/bench/chat.py, README "Benchmarks"). An answer
needs three fields of each chunk: its text parts, the finish reason and the prompt's block
reason. This module posts the same JSON body the SDK posts, reads `data:` lines from httpx's
bytes, parses them with pydantic-core's JSON parser, and hands back each chunk as the plain
dict the API sent.

What the SDK did that this module keeps: error statuses become `GeminiHTTPError` with the
status and the parsed google.rpc error body (its RetryInfo delay included); an error object
sent inside a 200 stream (as `data:` or as raw JSON lines) raises the same error; transport
failures are httpx's own (`httpx.TransportError`). Retrying is the caller's job.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic_core import from_json  # Rust: a third of json.loads' time per streamed chunk

from bookchat.providers.asyncio_transport import AsyncioStream, AsyncioTransport

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"  # the version google-genai uses for the Gemini Developer API
MAX_ERROR_BODY_BYTES = 64 * 1024
KEEPALIVE_CONNECTIONS = 64  # idle connections kept for the next answers
# After its first chunk, a reply is read at most this often: what arrives meanwhile is read in
# one go (AsyncioStream.pace). The same as the answer's coalescing (rag/coalesce.py): pieces
# that arrive faster than this already go out together, so the reader sees no difference.
READ_INTERVAL_SECONDS = 0.10
# The fields of a chunk read on the answer path, by their REST (camelCase) names.
THOUGHT = "thought"


class GeminiHTTPError(Exception):
    """The API answered with an error: `code` is the HTTP status, `details` the parsed body."""

    def __init__(self, code: int, *, status: str | None, details: dict[str, Any]) -> None:
        # Only the status in the text: the body's message may quote the prompt or a key.
        super().__init__(f"HTTP {code} {status or ''}".strip())
        self.code = code
        self.status = status  # google.rpc status name, e.g. "RESOURCE_EXHAUSTED"
        self.details = details


def _error(code: int | None, body: Any) -> GeminiHTTPError:
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    status = error.get("status")
    number = error.get("code")
    return GeminiHTTPError(
        code if code is not None else number if isinstance(number, int) else 500,
        status=status if isinstance(status, str) else None,
        details=body if isinstance(body, dict) else {},
    )


class GeminiStreamClient:
    """Streams generateContent replies over one pooled httpx client; close it with aclose()."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float,
        api_version: str = API_VERSION,
        transport: httpx.AsyncBaseTransport | None = None,
        read_interval: float = READ_INTERVAL_SECONDS,
    ) -> None:
        self._read_interval = read_interval
        self._prefix = f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/{api_version}/models/"
        if transport is None and not urllib.request.getproxies():
            # asyncio's sockets, not anyio's: a fraction of the CPU per streamed chunk. With a
            # proxy in the environment httpx's own transport is kept, which honours it.
            transport = AsyncioTransport(max_keepalive_connections=KEEPALIVE_CONNECTIONS)
        self._client = httpx.AsyncClient(
            headers={"x-goog-api-key": api_key, "content-type": "application/json"},
            # A backstop per connect and per read; the caller bounds the whole answer.
            timeout=httpx.Timeout(timeout),
            # No pool cap of our own: how many answers run at once is decided above this
            # client, and a reader must not wait on a pool slot while its answer is allowed.
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=KEEPALIVE_CONNECTIONS
            ),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

    async def stream(
        self, model: str, body: dict[str, Any], *, read_timeout: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """The reply's chunks as the API sends them; raises GeminiHTTPError on an error.

        `read_timeout` bounds each wait for more of the reply (httpx.ReadTimeout past it),
        instead of the client's own.
        """
        url = f"{self._prefix}{model}:streamGenerateContent"
        payload = json.dumps(body, ensure_ascii=False).encode()
        timeout = self._client.timeout
        if read_timeout is not None:
            timeout = httpx.Timeout(
                connect=timeout.connect, read=read_timeout, write=timeout.write, pool=timeout.pool
            )
        request = self._client.build_request(
            "POST", url, params={"alt": "sse"}, content=payload, timeout=timeout
        )
        response = await self._client.send(request, stream=True)
        connection = response.extensions.get("network_stream")
        paced = connection if isinstance(connection, AsyncioStream) else None
        try:
            if response.status_code != 200:
                raise _error(response.status_code, _json_or_empty(await _bounded(response)))
            async for chunk in _chunks(response):
                if "error" in chunk:
                    raise _error(None, chunk)
                yield chunk
                if paced is not None:
                    paced.pace(self._read_interval)  # the first chunk was read as it came
        finally:
            if paced is not None:
                paced.pace(0)  # the connection goes back to the pool reading as data comes
            await response.aclose()


async def _bounded(response: httpx.Response) -> bytes:
    body = b""
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) >= MAX_ERROR_BODY_BYTES:
            break
    return body[:MAX_ERROR_BODY_BYTES]


def _json_or_empty(raw: bytes | str) -> Any:
    try:
        return from_json(raw)
    except ValueError:
        return {}


async def _chunks(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    # Lines are split from the bytes here, not by aiter_lines: an answer is a hundred chunks or
    # more, each a wake-up, and httpx's text and line layers (two more generators and decoders
    # per chunk) were a tenth of the cost of reading it (backend/docs/benchmarks.md).
    events = _Events()
    rest = b""
    async for piece in response.aiter_bytes():
        lines, rest = _split_lines(rest + piece)
        for line in lines:
            if (chunk := events.line(line)) is not None:
                yield chunk
    for chunk in events.end(rest.rstrip(b"\r\n")):
        yield chunk


class _Events:
    """SSE lines in, chunks out.

    Written here rather than through httpx-sse: an event is its `data:` lines joined by "\n"
    (Gemini sends one per event), and the API also sends an error as bare JSON lines, which
    an SSE parser drops.
    """

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.raw: list[bytes] = []

    def line(self, line: bytes) -> dict[str, Any] | None:
        """The chunk this line completes, if it completes one."""
        if line.startswith(b"data:"):
            self.data.append(line[6:] if line.startswith(b"data: ") else line[5:])
        elif not line:
            if self.data:
                value = from_json(b"\n".join(self.data))
                self.data.clear()
                return _object(value)
        elif not line.startswith((b":", b"event:", b"id:", b"retry:")):
            self.raw.append(line)
            if parsed := _json_or_empty(b"\n".join(self.raw)):
                self.raw.clear()
                return _object(parsed)
        return None

    def end(self, last_line: bytes) -> list[dict[str, Any]]:
        """The chunks left when the stream ends after `last_line` (its unterminated last line)."""
        chunks = [chunk] if last_line and (chunk := self.line(last_line)) is not None else []
        if self.data:
            chunks.append(_object(from_json(b"\n".join(self.data))))
        if self.raw:
            raise ValueError("the stream ended inside a JSON object")
        return chunks


def _split_lines(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines in `buffer` (CRLF, LF or CR ended, as SSE allows) and what is left."""
    lines = buffer.splitlines(keepends=True)
    # The last line is kept back when it has no end yet, or ends in a CR that may be the first
    # half of a CRLF still on its way.
    if lines and (lines[-1].endswith(b"\r") or not lines[-1].endswith(b"\n")):
        return [line.rstrip(b"\r\n") for line in lines[:-1]], lines[-1]
    return [line.rstrip(b"\r\n") for line in lines], b""


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"a stream chunk is a JSON {type(value).__name__}, not an object")
    return value


def text_of(chunk: dict[str, Any]) -> str:
    """The answer text in a chunk ("" if none); thought parts never reach a reader."""
    candidates = chunk.get("candidates") or ()
    content = candidates[0].get("content") if candidates else None
    parts = (content.get("parts") or ()) if content else ()
    return "".join(p["text"] for p in parts if p.get("text") and not p.get(THOUGHT))


def finish_reason(chunk: dict[str, Any]) -> str | None:
    """The first candidate's finish reason, e.g. "STOP" or "SAFETY"."""
    candidates = chunk.get("candidates") or ()
    return candidates[0].get("finishReason") if candidates else None


def block_reason(chunk: dict[str, Any]) -> str | None:
    """Why the prompt itself was blocked ("SAFETY", "OTHER", …), if it was."""
    feedback = chunk.get("promptFeedback")
    return feedback.get("blockReason") if isinstance(feedback, dict) else None


def request_body(
    *,
    system_instruction: str,
    contents: list[dict[str, Any]],
    temperature: float,
    max_output_tokens: int,
    thinking_budget: int | None,
) -> dict[str, Any]:
    """The generateContent body, in the REST API's own (camelCase) field names."""
    config: dict[str, Any] = {"temperature": temperature, "maxOutputTokens": max_output_tokens}
    if thinking_budget is not None:
        config["thinkingConfig"] = {"thinkingBudget": thinking_budget}
    return {
        "contents": contents,
        "systemInstruction": {"parts": [{"text": system_instruction}]},
        "generationConfig": config,
    }
