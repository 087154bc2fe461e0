"""Streaming on a real uvicorn: disconnects, 100 concurrent readers, keep-alive comments."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.api.conftest import (
    app_client,
    wait_live_ready,
    widget_events,
    widget_events_as_they_come,
)
from tests.fakes.gemini import FakeGemini, Reply, Stall

KEY = "AIzaFAKE-streaming-test-key-51d2"
LONG_REPLY = " ".join(f"word{i} [1]." for i in range(200))


async def read_conversation(client: httpx.AsyncClient, conversation_id: str) -> list[dict]:
    response = await client.get(f"/api/conversation/{conversation_id}")
    assert response.status_code == 200
    return response.json()["messages"]


async def test_reader_disconnect_stores_the_partial_answer(
    make_settings, live_server, fake_gemini, database_url
) -> None:
    fake_gemini.script(Reply(LONG_REPLY, tokens_per_second=20))
    settings = make_settings(database_url, GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake_gemini.base_url)
    server = live_server(settings)
    await wait_live_ready(server)
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with client.stream("POST", "/api/chat", json={"message": "Install?"}) as response:
            assert response.status_code == 200
            async for event in widget_events_as_they_come(response):
                if event["type"] == "metadata":
                    conversation_id = event["conversation_id"]
                elif event["type"] == "token":
                    seen.append(event["content"])
                    if len(seen) == 3:
                        break  # the reader closes the tab
        # Leaving the block closes the connection mid-stream.

        # The server notices at its next write and stores what was streamed; wait for it.
        for _ in range(600):
            messages = await read_conversation(client, conversation_id)
            if len(messages) == 2:
                break
            await asyncio.sleep(0.05)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    stored = messages[1]
    assert stored["status"] == "partial"
    assert stored["content"].startswith("".join(seen))
    assert LONG_REPLY.startswith(stored["content"])
    assert stored["content"] != LONG_REPLY


@pytest.mark.slow
async def test_a_hundred_concurrent_streams_progress_together(make_settings, live_server) -> None:
    # Slow enough that no answer can finish before every reader has started, unless
    # something blocks the event loop and serialises the streams.
    with FakeGemini(tokens_per_second=5, min_reply_tokens=60) as fake:
        settings = make_settings(GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake.base_url)
        server = live_server(settings)
        await wait_live_ready(server)
        order: list[tuple[str, int]] = []  # ("first", i) / ("done", i), in arrival order

        async def reader(client: httpx.AsyncClient, i: int) -> list[dict]:
            events = []
            async with client.stream(
                "POST", "/api/chat", json={"message": f"How do I install bookchat? ({i})"}
            ) as response:
                if response.status_code != 200:
                    pytest.fail(f"{response.status_code}: {(await response.aread())!r}")
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    event = json.loads(line[6:])
                    if event["type"] == "token" and not any(e["type"] == "token" for e in events):
                        order.append(("first", i))
                    if event["type"] in {"done", "error"}:
                        order.append((event["type"], i))
                    events.append(event)
            return events

        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
            results = await asyncio.gather(*(reader(client, i) for i in range(100)))
    assert all(r[-1]["type"] == "done" for r in results), [r[-1] for r in results]
    kinds = [kind for kind, _ in order]
    assert kinds.count("first") == 100
    first_done = kinds.index("done")
    assert "first" not in kinds[first_done:], "a stream finished before another had started"


async def test_keep_alive_comments_while_the_model_is_silent(
    make_settings, fake_gemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastapi.sse

    from bookchat.api import sse

    # The default interval is what proxies see (FastAPI's own); shortened so the test is quick.
    assert sse.PING_INTERVAL_SECONDS == fastapi.sse._PING_INTERVAL <= 15
    monkeypatch.setattr(sse, "PING_INTERVAL_SECONDS", 0.2)
    fake_gemini.script(Stall(seconds=1.5, after_chunks=1, text="Install it [1]. Then run it [1]."))
    settings = make_settings(GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake_gemini.base_url)
    async with app_client(settings) as (_, client):
        response = await client.post("/api/chat", json={"message": "Install?"})
    assert ": ping" in response.text.split("\n")
    events = widget_events(response.text)  # the widget's rule skips the comments
    assert events[0]["type"] == "metadata"
    assert events[-1]["type"] == "done"


async def test_shutdown_mid_answer_stores_the_partial_answer(
    make_settings, live_server, fake_gemini
) -> None:
    fake_gemini.script(Reply(LONG_REPLY, tokens_per_second=20))
    settings = make_settings(GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake_gemini.base_url)
    server = live_server(settings)
    await wait_live_ready(server)
    seen: list[str] = []
    ended_with: dict | None = None
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
        client.stream("POST", "/api/chat", json={"message": "Install?"}) as response,
    ):
        try:
            async for event in widget_events_as_they_come(response):
                if event["type"] == "metadata":
                    conversation_id = event["conversation_id"]
                elif event["type"] == "token":
                    seen.append(event["content"])
                    if len(seen) == 3:
                        # As on SIGTERM: open answers get the graceful period, then are cut.
                        server.server.should_exit = True
                elif event["type"] in {"done", "error"}:
                    ended_with = event
        except httpx.RemoteProtocolError:
            pass  # the server closed the stream mid-response
    await asyncio.to_thread(server.__exit__, None, None, None)
    assert ended_with is None  # cut short, not finished: the reply is far longer than the wait

    # The store outlives the process: a new app on the same data dir reads the answer.
    async with app_client(settings) as (_, client):
        messages = await read_conversation(client, conversation_id)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["status"] == "partial"
    assert messages[1]["content"].startswith("".join(seen))
    assert LONG_REPLY.startswith(messages[1]["content"])
