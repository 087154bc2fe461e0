"""The request path's dependencies run on the event loop, not in AnyIO's thread pool."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import pytest

from tests.api.conftest import app_client, widget_events


async def test_chat_and_conversation_take_no_worker_thread(
    make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FastAPI hands a plain `def` dependency or route to anyio.to_thread.run_sync (through
    # starlette.concurrency, which looks it up on each call): every such hop is counted here.
    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(repr(func))
        return await run_sync(func, *args, **kwargs)

    async with app_client(make_settings()) as (_, client):
        monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
        health = await client.get("/api/health")
        answer = await client.post("/api/chat", json={"message": "How do I install bookchat?"})
        conversation_id = widget_events(answer.text)[0]["conversation_id"]
        stored = await client.get(f"/api/conversation/{conversation_id}")
        vote = {"message_id": stored.json()["messages"][1]["id"], "rating": "up"}
        feedback = await client.post("/api/feedback", json=vote)
        # The first /docs/ request reads the sample book: in a thread of its own, not the pool.
        page = await client.get("/docs/getting-started/installation")
        monkeypatch.undo()
    assert (health.status_code, answer.status_code, stored.status_code) == (200, 200, 200)
    assert (feedback.status_code, page.status_code) == (200, 200)
    assert len(stored.json()["messages"]) == 2
    assert hops == []
