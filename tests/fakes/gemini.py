"""A fake Gemini Developer API server that speaks the wire protocol google-genai 3.x uses.

It is a real HTTP/1.1 server on 127.0.0.1 (asyncio streams in a background thread), so the
real SDK, sync and async tests, and a separately spawned bookchat process can all talk to it.

Endpoints (any API version prefix, e.g. /v1/ or /v1beta/):
  POST /{version}/models/{model}:streamGenerateContent?alt=sse   SSE GenerateContentResponse chunks
  POST /{version}/models/{model}:generateContent                 one GenerateContentResponse
  POST /{version}/models/{model}:batchEmbedContents              {"embeddings": [{"values"}]}
  POST /{version}/models/{model}:embedContent                    {"embedding": {"values"}}

Per test, queue behaviours for the next matching requests with `script(...)`: HttpError,
DropConnection, Stall, StreamError, Reply. Without a script, generation replies with a text
derived from the request (which numbered sources it saw, citing [1]) and embeddings are a
hashed bag of words.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import re
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

GENERATE_ACTIONS = ("streamGenerateContent", "generateContent")
EMBED_ACTIONS = ("batchEmbedContents", "embedContent")
DEFAULT_EMBED_DIMENSIONS = 3072  # gemini-embedding-001's native size

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_DEFAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
_SOURCE_LINE = re.compile(r"^\[(\d+)\]\s+(.+?)\s*$", re.MULTILINE)
_WORD = re.compile(r"\w+", re.UNICODE)
_TOKEN = re.compile(r"\S+\s*")


# Behaviours -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpError:
    """Answer with this HTTP status and a google-style error JSON body."""

    status: int = 429
    message: str | None = None
    retry_delay: float | None = None  # adds a google.rpc.RetryInfo detail, as quota errors do
    on: tuple[str, ...] | str | None = GENERATE_ACTIONS


@dataclass(frozen=True)
class DropConnection:
    """Abort the TCP connection after sending this many SSE chunks (0: before any response)."""

    after_chunks: int = 0
    text: str | None = None  # the text whose chunks are sent first; default: derived reply
    on: tuple[str, ...] | str | None = GENERATE_ACTIONS


@dataclass(frozen=True)
class Stall:
    """Wait `seconds` before chunk number `after_chunks` (0: before the response), then go on."""

    seconds: float
    after_chunks: int = 0
    text: str | None = None
    on: tuple[str, ...] | str | None = GENERATE_ACTIONS


@dataclass(frozen=True)
class StreamError:
    """Answer 200, send this many SSE chunks, then an error object as one more event, and end.

    The API reports a failure that happens after the response started this way.
    """

    status: int = 500
    after_chunks: int = 0
    text: str | None = None
    on: tuple[str, ...] | str | None = GENERATE_ACTIONS


@dataclass(frozen=True)
class Reply:
    """Answer with this text, split into whitespace tokens; optionally at a fixed token rate."""

    text: str
    tokens_per_second: float | None = None
    finish_reason: str = "STOP"
    # A blocked prompt: one chunk with promptFeedback.blockReason and no candidates, as the
    # real API answers a prompt its safety filters refuse (the text is then not sent).
    block_reason: str | None = None
    on: tuple[str, ...] | str | None = GENERATE_ACTIONS


Behaviour = HttpError | DropConnection | Stall | StreamError | Reply


def _matches(behaviour: Behaviour, action: str) -> bool:
    on = behaviour.on
    if on is None:
        return True
    if isinstance(on, str):
        return on == action
    return action in on


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (the API key header is never recorded)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    model: str | None
    action: str | None
    had_api_key: bool
    received_at: float = field(default_factory=time.monotonic)

    def prompt_text(self) -> str:
        """Every text part of the system instruction and the contents, joined by newlines."""
        return "\n".join(_texts(self.body))


def _texts(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    parts: list[str] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(system, dict):
        parts.extend(_parts_text(system))
    for content in body.get("contents") or []:
        if isinstance(content, dict):
            parts.extend(_parts_text(content))
    return parts


def _parts_text(content: dict[str, Any]) -> list[str]:
    return [p["text"] for p in content.get("parts") or [] if isinstance(p, dict) and "text" in p]


# Replies and embeddings -----------------------------------------------------------------------


def derived_reply(body: Any) -> str:
    """A deterministic reply showing what reached the model: the last user turn and the sources."""
    question = ""
    for content in reversed(body.get("contents") or []) if isinstance(body, dict) else []:
        if isinstance(content, dict) and content.get("role", "user") == "user":
            texts = _parts_text(content)
            if texts:
                question = texts[-1].strip().splitlines()[-1] if texts[-1].strip() else ""
                break
    sources = _SOURCE_LINE.findall("\n".join(_texts(body)))
    question = " ".join(question.split()).removeprefix("Question: ")
    with contextlib.suppress(ValueError):
        # bookchat quotes the reader's question as a JSON string (rag/prompt.py).
        question = str(json.loads(question)) if question.startswith('"') else question
    question = question[:120]
    if not sources:
        return f'The fake model saw no numbered sources for "{question}".'
    seen: dict[str, str] = {}
    for number, title in sources:
        seen.setdefault(number, title)
    listing = "; ".join(f"[{n}] {t}" for n, t in seen.items())
    return (
        f'The fake model answers "{question}" from {len(seen)} sources [1]. '
        f"Sources seen: {listing}."
    )


def tokens_of(text: str) -> list[str]:
    """Split text into whitespace tokens that join back into the original text."""
    leading = text[: len(text) - len(text.lstrip())]
    tokens = _TOKEN.findall(text)
    if tokens and leading:
        tokens[0] = leading + tokens[0]
    return tokens or ([text] if text else [])


def embed_text(text: str, dimensions: int) -> list[float]:
    """Hashed bag of words (unigrams and bigrams), L2-normalised: similar texts are similar."""
    vector = [0.0] * dimensions
    words = [w.lower() for w in _WORD.findall(text)]
    features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[index] += sign * (1.0 if " " not in feature else 0.5)
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        # An empty text still gets a valid unit vector, as the real API returns one.
        vector[0] = 1.0
        return vector
    return [v / norm for v in vector]


def _error_body(status: int, message: str | None, retry_delay: float | None = None) -> bytes:
    error: dict[str, Any] = {
        "code": status,
        "message": message or _DEFAULT_MESSAGES.get(status, "fake error"),
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if retry_delay is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay:g}s"}
        ]
    return json.dumps({"error": error}).encode()


# The server -----------------------------------------------------------------------------------


class _Abort(Exception):
    """Close the connection without finishing the response."""


class FakeGemini:
    """A scriptable fake Gemini server; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens_per_second: float | None = None,
        min_reply_tokens: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        # Server-wide pacing for derived replies (the chat benchmark sets this).
        self.tokens_per_second = tokens_per_second
        self.min_reply_tokens = min_reply_tokens
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._queue: deque[Behaviour] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # Public API -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The URL to give GEMINI_BASE_URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received since the last reset()."""
        with self._lock:
            return list(self._requests)

    def generate_requests(self) -> list[RecordedRequest]:
        """The recorded generateContent and streamGenerateContent requests."""
        return [r for r in self.requests if r.action in GENERATE_ACTIONS]

    def embed_requests(self) -> list[RecordedRequest]:
        """The recorded embedContent and batchEmbedContents requests."""
        return [r for r in self.requests if r.action in EMBED_ACTIONS]

    @property
    def task_types(self) -> list[str | None]:
        """The taskType of every embedded text, in the order received."""
        types: list[str | None] = []
        for request in self.embed_requests():
            body = request.body if isinstance(request.body, dict) else {}
            items = body.get("requests") if request.action == "batchEmbedContents" else [body]
            types.extend(item.get("taskType") for item in items or [])
        return types

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each is used by the next request it matches (`on`)."""
        with self._lock:
            self._queue.extend(behaviours)

    @property
    def pending(self) -> list[Behaviour]:
        """Scripted behaviours not used yet."""
        with self._lock:
            return list(self._queue)

    def reset(self) -> None:
        """Forget recorded requests and scripted behaviours."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def start(self) -> FakeGemini:
        """Start serving in a background thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve_connection, self.host, self.port)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-gemini", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=1)

    # Connection handling ----------------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                keep_alive = await self._respond(request, writer)
                if not keep_alive:
                    break
        except (_Abort, ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()
        except asyncio.CancelledError:
            writer.transport.abort()
        finally:
            self._connections.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader
    ) -> tuple[str, str, dict[str, str], bytes] | None:
        line = await reader.readline()
        if not line:
            return None
        method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readline()
                    break
                body += await reader.readexactly(size)
                await reader.readline()
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        return method, target, headers, body

    def _record(
        self, method: str, target: str, headers: dict[str, str], raw_body: bytes
    ) -> RecordedRequest:
        parts = urlsplit(target)
        model = action = None
        match = re.fullmatch(r"/[^/]+/models/([^/:]+):(\w+)", parts.path)
        if match:
            model, action = match.group(1), match.group(2)
        try:
            body: Any = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = raw_body.decode("utf-8", "replace")
        recorded = RecordedRequest(
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers={k: v for k, v in headers.items() if k != "x-goog-api-key"},
            body=body,
            model=model,
            action=action,
            had_api_key=bool(headers.get("x-goog-api-key")),
        )
        with self._lock:
            self._requests.append(recorded)
        return recorded

    def _next_behaviour(self, action: str) -> Behaviour | None:
        with self._lock:
            for index, behaviour in enumerate(self._queue):
                if _matches(behaviour, action):
                    del self._queue[index]
                    return behaviour
        return None

    async def _respond(
        self, request: tuple[str, str, dict[str, str], bytes], writer: asyncio.StreamWriter
    ) -> bool:
        method, target, headers, raw_body = request
        recorded = self._record(method, target, headers, raw_body)
        keep_alive = headers.get("connection", "").lower() != "close"
        if method != "POST" or recorded.action not in (*GENERATE_ACTIONS, *EMBED_ACTIONS):
            status = 405 if method != "POST" else 404
            await self._send(writer, status, _error_body(status, f"no fake for {target}"))
            return keep_alive
        if not recorded.had_api_key:
            await self._send(writer, 401, _error_body(401, "API key not valid."))
            return keep_alive
        if not isinstance(recorded.body, dict):
            await self._send(writer, 400, _error_body(400, "Invalid JSON payload received."))
            return keep_alive

        behaviour = self._next_behaviour(recorded.action)
        if isinstance(behaviour, HttpError):
            await self._send(
                writer,
                behaviour.status,
                _error_body(behaviour.status, behaviour.message, behaviour.retry_delay),
            )
            return keep_alive
        if isinstance(behaviour, DropConnection) and behaviour.after_chunks == 0:
            raise _Abort
        if isinstance(behaviour, Stall) and behaviour.after_chunks == 0:
            await asyncio.sleep(behaviour.seconds)

        if recorded.action in EMBED_ACTIONS:
            await self._send(writer, 200, json.dumps(self._embed(recorded)).encode())
            return keep_alive

        text = getattr(behaviour, "text", None)
        if text is None:
            text = self._default_text(recorded.body)
        rate = behaviour.tokens_per_second if isinstance(behaviour, Reply) else None
        rate = rate or self.tokens_per_second
        finish = behaviour.finish_reason if isinstance(behaviour, Reply) else "STOP"
        if isinstance(behaviour, Reply) and behaviour.block_reason:
            payload = self._blocked(recorded, behaviour.block_reason)
            if recorded.action == "generateContent":
                await self._send(writer, 200, json.dumps(payload).encode())
            else:
                await self._stream_chunks(writer, [payload])
            return keep_alive
        if recorded.action == "generateContent":
            if rate:
                await asyncio.sleep(len(tokens_of(text)) / rate)
            payload = self._chunk(recorded, text, finish_reason=finish, output_tokens=text)
            await self._send(writer, 200, json.dumps(payload).encode())
            return keep_alive
        await self._stream(writer, recorded, text, rate, behaviour, finish)
        return keep_alive

    def _default_text(self, body: dict[str, Any]) -> str:
        text = derived_reply(body)
        count = len(tokens_of(text))
        filler = 0
        while count < self.min_reply_tokens:
            # Deterministic padding so a benchmark can ask for a long answer.
            filler += 1
            sentence = f" Detail {filler} of the answer follows the source closely [1]."
            text += sentence
            count += len(tokens_of(sentence))
        return text

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        recorded: RecordedRequest,
        text: str,
        rate: float | None,
        behaviour: Behaviour | None,
        finish_reason: str,
    ) -> None:
        await self._stream_head(writer)
        tokens = tokens_of(text)
        # Unpaced, group tokens so a reply arrives in a few chunks, as the real API does.
        pieces = tokens if rate else _group(tokens, 4)
        started = time.monotonic()
        for index, piece in enumerate(pieces):
            if isinstance(behaviour, DropConnection) and index == behaviour.after_chunks:
                raise _Abort
            if isinstance(behaviour, StreamError) and index == behaviour.after_chunks:
                await self._send_event(writer, json.loads(_error_body(behaviour.status, None)))
                break
            if isinstance(behaviour, Stall) and index == behaviour.after_chunks and index > 0:
                await asyncio.sleep(behaviour.seconds)
            if rate:
                # Pace against the start time so the rate holds however slow the writes are.
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            last = index == len(pieces) - 1
            chunk = self._chunk(
                recorded,
                piece,
                finish_reason=finish_reason if last else None,
                output_tokens="".join(pieces[: index + 1]),
            )
            await self._send_event(writer, chunk)
        if isinstance(behaviour, DropConnection):
            # Asked to drop after more chunks than the reply has: drop before the end.
            raise _Abort
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _stream_head(self, writer: asyncio.StreamWriter) -> None:
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/event-stream\r\n"
            "Transfer-Encoding: chunked\r\n"
            "Cache-Control: no-cache\r\n"
            "\r\n"
        )
        writer.write(head.encode())
        await writer.drain()

    async def _send_event(self, writer: asyncio.StreamWriter, chunk: dict[str, Any]) -> None:
        data = f"data: {json.dumps(chunk)}\r\n\r\n".encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await writer.drain()

    async def _stream_chunks(
        self, writer: asyncio.StreamWriter, chunks: list[dict[str, Any]]
    ) -> None:
        await self._stream_head(writer)
        for chunk in chunks:
            await self._send_event(writer, chunk)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    def _blocked(self, recorded: RecordedRequest, reason: str) -> dict[str, Any]:
        prompt_tokens = sum(len(tokens_of(t)) for t in _texts(recorded.body))
        return {
            "promptFeedback": {
                "blockReason": reason,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
                ],
            },
            "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
            "modelVersion": recorded.model,
        }

    def _chunk(
        self,
        recorded: RecordedRequest,
        text: str,
        *,
        finish_reason: str | None,
        output_tokens: str,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finish_reason:
            candidate["finishReason"] = finish_reason
        prompt_tokens = sum(len(tokens_of(t)) for t in _texts(recorded.body))
        output = len(tokens_of(output_tokens))
        return {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": output,
                "totalTokenCount": prompt_tokens + output,
            },
            "modelVersion": recorded.model,
            "responseId": hashlib.blake2b(
                f"{recorded.received_at}".encode(), digest_size=8
            ).hexdigest(),
        }

    def _embed(self, recorded: RecordedRequest) -> dict[str, Any]:
        body = recorded.body
        if recorded.action == "embedContent":
            dims = int(body.get("outputDimensionality") or DEFAULT_EMBED_DIMENSIONS)
            text = "\n".join(_parts_text(body.get("content") or {}))
            return {"embedding": {"values": embed_text(text, dims)}}
        embeddings = []
        for item in body.get("requests") or []:
            dims = int(item.get("outputDimensionality") or DEFAULT_EMBED_DIMENSIONS)
            text = "\n".join(_parts_text(item.get("content") or {}))
            embeddings.append({"values": embed_text(text, dims)})
        return {"embeddings": embeddings}

    async def _send(self, writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
            "Content-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()


def _group(tokens: list[str], size: int) -> list[str]:
    return ["".join(tokens[i : i + size]) for i in range(0, len(tokens), size)] or [""]


def main(argv: list[str] | None = None) -> int:
    """Run the fake standalone until interrupted (for benchmarks and manual runs)."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.gemini")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--tokens-per-second", type=float, default=None, help="pace streamed replies"
    )
    parser.add_argument(
        "--min-reply-tokens", type=int, default=0, help="pad derived replies to this length"
    )
    args = parser.parse_args(argv)
    fake = FakeGemini(
        host=args.host,
        port=args.port,
        tokens_per_second=args.tokens_per_second,
        min_reply_tokens=args.min_reply_tokens,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with fake:
        print(f"fake-gemini listening on {fake.base_url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
