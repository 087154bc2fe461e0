"""POST /api/chat and GET /api/conversation/{id}, event by event, as the React widget reads them."""

from __future__ import annotations

import json
import uuid

import pytest
from httpx_sse import aconnect_sse

from bookchat.rag.prompt import NO_ANSWER
from tests.api.conftest import (
    CITATION,
    answer_text,
    app_client,
    assert_contract,
    widget_events,
)

QUESTION = "How do I install bookchat?"


async def test_stream_follows_the_contract_with_both_parsers(make_settings, database_url) -> None:
    async with app_client(make_settings(database_url)) as (_, client):
        # A real SSE parser.
        async with aconnect_sse(client, "POST", "/api/chat", json={"message": QUESTION}) as source:
            assert source.response.status_code == 200
            assert source.response.headers["content-type"].startswith("text/event-stream")
            assert source.response.headers["cache-control"] == "no-cache"
            assert source.response.headers["x-accel-buffering"] == "no"
            parsed = []
            async for sse in source.aiter_sse():
                assert sse.event == "message"  # no event: lines, as the widget expects
                parsed.append(json.loads(sse.data))
        assert_contract(parsed)
        metadata = parsed[0]
        assert metadata["answerer"]["backend"] == "offline"
        assert metadata["mode"] == "general"

        # The widget's rule on the raw bytes of a second answer in the same conversation.
        conversation_id = metadata["conversation_id"]
        response = await client.post(
            "/api/chat",
            json={"message": "And how do I configure it?", "conversation_id": conversation_id},
        )
        assert response.status_code == 200
        for line in response.text.split("\n"):
            # Every non-empty line is one whole `data: <json>` (or a keep-alive comment).
            assert line == "" or line.startswith(("data: {", ":")), line
        events = widget_events(response.text)
        assert_contract(events)
        assert events[0]["conversation_id"] == conversation_id

        stored = await client.get(f"/api/conversation/{conversation_id}")
    assert stored.status_code == 200
    body = stored.json()
    assert body["conversation_id"] == conversation_id
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == QUESTION
    assert messages[1]["content"] == answer_text(parsed)
    assert messages[1]["sources"] == parsed[-1]["sources"]
    assert messages[1]["id"] == parsed[-1]["message_id"]
    assert messages[0]["id"] == parsed[0]["user_message_id"]
    assert messages[3]["content"] == answer_text(events)
    assert [m["status"] for m in messages] == ["complete"] * 4
    for message in messages:
        assert set(message) >= {"id", "role", "content", "sources", "created_at"}
        assert message["created_at"][:2] == "20"  # ISO 8601
    assert [m["created_at"] for m in messages] == sorted(m["created_at"] for m in messages)


async def test_answers_cite_sources_in_range(make_settings) -> None:
    async with app_client(make_settings()) as (_, client):
        response = await client.post(
            "/api/chat", json={"message": "Which environment variables configure bookchat?"}
        )
    events = widget_events(response.text)
    assert_contract(events)
    # The offline answerer cites every sentence it uses; at least one citation is expected.
    assert CITATION.search(answer_text(events))


async def test_selection_mode_explains_the_highlighted_text(make_settings) -> None:
    selection = "Conversations are stored in PostgreSQL when DATABASE_URL is set."
    async with app_client(make_settings()) as (_, client):
        response = await client.post(
            "/api/chat",
            json={"message": "What does this mean?", "mode": "selection", "context": selection},
        )
        events = widget_events(response.text)
        assert_contract(events)
        assert events[0]["mode"] == "selection"
        stored = await client.get(f"/api/conversation/{events[0]['conversation_id']}")
    assert stored.json()["messages"][0]["content"] == "What does this mean?"


async def test_unknown_conversation_is_404_before_any_stream(make_settings) -> None:
    unknown = uuid.uuid4()
    async with app_client(make_settings()) as (_, client):
        chat = await client.post(
            "/api/chat", json={"message": "hi", "conversation_id": str(unknown)}
        )
        read = await client.get(f"/api/conversation/{unknown}")
        malformed = await client.get("/api/conversation/not-a-uuid")
        malformed_chat = await client.post(
            "/api/chat", json={"message": "hi", "conversation_id": "not-a-uuid"}
        )
    assert chat.status_code == 404
    assert chat.headers["content-type"] == "application/json"
    assert chat.json()["code"] == "conversation_not_found"
    assert str(unknown) in chat.json()["detail"]
    assert read.status_code == 404
    assert read.json()["code"] == "conversation_not_found"
    assert malformed.status_code == 422
    assert "conversation_id" in malformed.json()["detail"]
    assert "UUID" in malformed.json()["detail"]
    assert malformed_chat.status_code == 422
    assert "conversation_id" in malformed_chat.json()["detail"]


@pytest.mark.parametrize("message", ["x", "y" * 2000])
async def test_message_length_bounds_are_inclusive(make_settings, message: str) -> None:
    async with app_client(make_settings()) as (_, client):
        response = await client.post("/api/chat", json={"message": message})
    assert response.status_code == 200
    events = widget_events(response.text)
    assert events[0]["type"] == "metadata"
    assert events[-1]["type"] == "done"


async def test_a_refusal_lists_no_sources_and_an_answer_marks_what_it_cites(make_settings) -> None:
    async with app_client(make_settings()) as (_, client):
        refused = widget_events(
            (
                await client.post("/api/chat", json={"message": "How do I bake sourdough bread?"})
            ).text
        )
        answered = widget_events((await client.post("/api/chat", json={"message": QUESTION})).text)
        stored = await client.get(f"/api/conversation/{refused[0]['conversation_id']}")
    done = refused[-1]
    assert answer_text(refused).startswith(NO_ANSWER)
    # Nothing backs a refusal: no sources, no citations, nothing to read apart.
    assert (done["sources"], done["citations"], done["related"]) == ([], [], [])
    assert stored.json()["messages"][1]["sources"] == []

    assert_contract(answered)
    done = answered[-1]
    assert done["citations"]
    # Every source keeps its number ([n] is the n-th); `cited` and `related` tell them apart.
    for number, source in enumerate(done["sources"], start=1):
        assert source["cited"] is (number in done["citations"])
    assert done["related"] == [
        n for n in range(1, len(done["sources"]) + 1) if n not in done["citations"]
    ]
