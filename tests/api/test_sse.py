"""api/sse.py: the same bytes as FastAPI's own SSE path, keep-alives, errors and closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.sse import EventSourceResponse

from bookchat.api import sse

# What an answer's events hold: nested sources, floats, non-ASCII, escapes, empty values.
EVENTS: list[dict[str, Any]] = [
    {"type": "metadata", "conversation_id": "c0ffee", "answerer": {"backend": "gemini"}},
    {"type": "token", "content": 'Zażółć «gęślą» jaźń 🚀 [1]\nnext line\r\tand "quotes" \\'},
    {"type": "token", "content": "\u2028 separators \u2029 and </script>"},
    {
        "type": "done",
        "sources": [{"file": "a.md", "similarity": 0.1234, "cited": True, "version": None}],
        "citations": [1],
        "related": [],
        "stopped": False,
    },
]


async def _events() -> AsyncIterator[dict[str, Any]]:
    for event in EVENTS:
        await asyncio.sleep(0)
        yield event


def _apps() -> FastAPI:
    app = FastAPI()

    @app.post("/fastapi", response_class=EventSourceResponse)
    async def yielded() -> AsyncIterator[dict[str, Any]]:
        async for event in _events():
            yield event

    @app.post("/lean")
    async def returned() -> EventSourceResponse:
        return sse.event_stream(_events())

    return app


async def test_the_bytes_and_headers_are_fastapis() -> None:
    transport = httpx.ASGITransport(app=_apps())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        theirs = await client.post("/fastapi")
        ours = await client.post("/lean")
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == theirs.content
    assert ours.content.startswith(b'data: {"type":"metadata"')
    for name in ("content-type", "cache-control", "x-accel-buffering"):
        assert ours.headers[name] == theirs.headers[name], name


async def _collect(body: AsyncIterator[bytes], into: list[bytes] | None = None) -> list[bytes]:
    sent = [] if into is None else into
    async for chunk in body:
        sent.append(chunk)
    return sent


async def test_a_silent_stream_gets_keep_alive_comments_and_a_busy_one_none() -> None:
    async def silent_then_one() -> AsyncIterator[dict[str, Any]]:
        await asyncio.sleep(0.35)
        yield {"type": "token", "content": "late"}

    async def busy() -> AsyncIterator[dict[str, Any]]:
        for n in range(8):
            await asyncio.sleep(0.05)
            yield {"type": "token", "content": str(n)}

    silent = await _collect(sse._body(silent_then_one(), 0.1))
    assert silent[-1] == sse.encode_event({"type": "token", "content": "late"})
    assert set(silent[:-1]) == {b": ping\n\n"}
    assert len(silent) >= 3
    # Events 50 ms apart never leave the stream idle for the interval.
    assert b": ping\n\n" not in await _collect(sse._body(busy(), 0.2))


async def test_an_error_comes_after_the_events_before_it() -> None:
    async def failing() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "token", "content": "one"}
        raise RuntimeError("the source broke")

    sent: list[bytes] = []
    with pytest.raises(RuntimeError, match="the source broke"):
        await _collect(sse._body(failing(), 15.0), sent)
    assert sent == [sse.encode_event({"type": "token", "content": "one"})]


async def test_a_reader_who_leaves_closes_the_events_and_waits_for_their_clean_up() -> None:
    cleaned: list[str] = []
    first = asyncio.Event()

    async def endless() -> AsyncIterator[dict[str, Any]]:
        try:
            yield {"type": "token", "content": "one"}
            await asyncio.Event().wait()
            yield {"type": "token", "content": "never"}
        finally:
            await asyncio.sleep(0.05)  # storing a partial answer takes a moment
            cleaned.append("stored")

    async def read() -> None:
        async for _ in sse._body(endless(), 15.0):
            first.set()

    reader = asyncio.create_task(read())
    await first.wait()
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    # The clean-up ran to its end before the response's task did.
    assert cleaned == ["stored"]
