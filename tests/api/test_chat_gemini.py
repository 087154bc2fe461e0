"""Gemini answers over real HTTP against the fake server (GEMINI_BASE_URL)."""

from __future__ import annotations

import logging

import pytest

from bookchat.config import DEFAULT_GEMINI_MODEL
from bookchat.rag.chat import RETRIEVAL_UNAVAILABLE
from tests.api.conftest import answer_text, app_client, assert_contract, widget_events
from tests.fakes.gemini import EMBED_ACTIONS, DropConnection, HttpError, Reply, Stall

KEY = "AIzaFAKE-gemini-test-key-0c4e"
QUESTION = "How do I install bookchat?"


@pytest.fixture
def gemini_settings(make_settings, fake_gemini, database_url):
    def make(**overrides):
        return make_settings(
            database_url,
            GEMINI_API_KEY=KEY,
            GEMINI_BASE_URL=fake_gemini.base_url,
            **overrides,
        )

    return make


async def chat_and_read(client, message: str = QUESTION):
    response = await client.post("/api/chat", json={"message": message})
    assert response.status_code == 200
    events = widget_events(response.text)
    stored = await client.get(f"/api/conversation/{events[0]['conversation_id']}")
    return response, events, stored.json()["messages"]


async def test_answer_streams_from_gemini_with_numbered_sources(gemini_settings, fake_gemini):
    async with app_client(gemini_settings()) as (_, client):
        response, events, messages = await chat_and_read(client)
        health = await client.get("/api/health")
    assert health.json()["services"]["llm"]["backend"] == "gemini"
    assert health.json()["services"]["llm"]["status"] == "up"
    for text in (health.text, response.text):
        assert KEY not in text
    assert_contract(events)
    assert events[0]["answerer"]["backend"] == "gemini"
    assert events[0]["answerer"]["model"] == DEFAULT_GEMINI_MODEL
    # The fake echoes the numbered sources it was given: the prompt carried the passages.
    answer = answer_text(events)
    assert "Sources seen: [1]" in answer
    assert len(fake_gemini.generate_requests()) == 1
    assert fake_gemini.generate_requests()[0].had_api_key
    assert messages[-1]["content"] == answer
    assert messages[-1]["status"] == "complete"


async def test_rate_limited_once_then_answers(gemini_settings, fake_gemini):
    fake_gemini.script(HttpError(429), Reply("Install it with pip [1]."))
    async with app_client(gemini_settings()) as (_, client):
        _, events, messages = await chat_and_read(client)
    assert_contract(events)
    assert answer_text(events) == "Install it with pip [1]."
    assert len(fake_gemini.generate_requests()) == 2
    assert messages[-1]["status"] == "complete"


async def test_server_error_before_the_first_token(
    gemini_settings, fake_gemini, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    fake_gemini.script(*[HttpError(500, message="internal boom at /srv/gemini")] * 10)
    async with app_client(gemini_settings()) as (_, client):
        response, events, messages = await chat_and_read(client)
    assert [e["type"] for e in events] == ["metadata", "error"]
    error = events[-1]
    assert error["code"].startswith("llm_")
    assert error["message"]
    assert "boom" not in error["message"]
    assert "Traceback" not in response.text
    assert "/srv/gemini" not in response.text
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "failed"),
    ]
    assert KEY not in caplog.text


async def test_connection_dropped_mid_stream_keeps_the_partial_answer(gemini_settings, fake_gemini):
    text = "Install bookchat with pip [1]. Then run bookchat serve [1]. More words follow here."
    fake_gemini.script(DropConnection(after_chunks=3, text=text))
    async with app_client(gemini_settings()) as (_, client):
        _, events, messages = await chat_and_read(client)
    types = [e["type"] for e in events]
    assert types[0] == "metadata"
    assert types[-1] == "error"
    assert "token" in types
    assert events[-1]["code"].startswith("llm_")
    partial = answer_text(events)
    assert partial
    assert text.startswith(partial)
    assert partial != text
    assert messages[-1]["role"] == "assistant"
    assert messages[-1]["status"] == "partial"
    assert messages[-1]["content"] == partial


async def test_a_stall_past_the_timeout_is_llm_timeout(gemini_settings, fake_gemini):
    text = "Install bookchat with pip [1]. Then run it [1]."
    fake_gemini.script(*[Stall(seconds=30, after_chunks=2, text=text)] * 3)
    async with app_client(gemini_settings(GEMINI_TIMEOUT=1)) as (_, client):
        _, events, messages = await chat_and_read(client)
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "llm_timeout"
    assert messages[-1]["status"] in {"partial", "failed"}
    assert messages[-1]["content"] == answer_text(events)


async def test_a_safety_finish_on_the_only_chunk_is_not_stored_complete(
    gemini_settings, fake_gemini
):
    # One chunk carries both the text and the SAFETY finish: the reader sees the text, then
    # llm_blocked, and the stored answer says it was cut short.
    fake_gemini.script(Reply("Here is what", finish_reason="SAFETY"))
    async with app_client(gemini_settings()) as (_, client):
        _, events, messages = await chat_and_read(client)
    assert [e["type"] for e in events] == ["metadata", "token", "error"]
    assert events[-1]["code"] == "llm_blocked"
    assert messages[-1]["status"] == "partial"
    assert messages[-1]["content"] == "Here is what"


async def test_a_blocked_prompt_is_llm_blocked(gemini_settings, fake_gemini):
    fake_gemini.script(Reply("", block_reason="SAFETY"))
    async with app_client(gemini_settings()) as (_, client):
        _, events, messages = await chat_and_read(client)
    assert [e["type"] for e in events] == ["metadata", "error"]
    assert events[-1]["code"] == "llm_blocked"
    assert messages[-1]["status"] == "failed"


async def test_an_embedding_error_echoing_the_key_never_reaches_the_reader(
    make_settings, fake_gemini, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    # Gemini embeddings (the sample book is embedded through the fake at start-up); then the
    # question's embedding fails with an upstream message that quotes the key and a path.
    settings = make_settings(
        GEMINI_API_KEY=KEY,
        GEMINI_BASE_URL=fake_gemini.base_url,
        BOOKCHAT_EMBEDDER="gemini",
        BOOKCHAT_DATA_DIR=tmp_path / "gemini-data",
    )
    echo = f"Consumer 'api_key:{KEY}' has been suspended (/srv/owner/secrets.env)"
    async with app_client(settings) as (_, client):
        fake_gemini.script(*[HttpError(403, echo, on=EMBED_ACTIONS)] * 6)
        response = await client.post("/api/chat", json={"message": QUESTION})
    events = widget_events(response.text)
    assert events[-1]["code"] == "retrieval_unavailable"
    assert KEY not in response.text
    assert "suspended" not in response.text
    assert "/srv/owner" not in response.text
    assert events[-1]["message"] == RETRIEVAL_UNAVAILABLE
    # The line this failure adds to the log names its kind, not the upstream's text.
    lines = [r.getMessage() for r in caplog.records if "retrieval unavailable" in r.getMessage()]
    assert lines
    assert all(KEY not in line for line in lines)


async def test_the_embedding_failure_log_line_is_scrubbed_generically(
    make_settings, fake_gemini, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    # The upstream quotes a key nobody configured here, a host, a user and a path: the log's
    # WARNING keeps the cause and loses all four (bookchat.redact.describe).
    settings = make_settings(
        GEMINI_API_KEY=KEY,
        GEMINI_BASE_URL=fake_gemini.base_url,
        BOOKCHAT_EMBEDDER="gemini",
        BOOKCHAT_DATA_DIR=tmp_path / "gemini-data",
    )
    echo = (
        "Consumer 'api_key:sk-OTHER-4410' suspended for user \"owner\" "
        "at 10.20.30.40:8443 (/srv/owner/secrets.env); retry with Bearer tok-LEAK-99"
    )
    async with app_client(settings) as (_, client):
        fake_gemini.script(*[HttpError(403, echo, on=EMBED_ACTIONS)] * 6)
        await client.post("/api/chat", json={"message": QUESTION})
    lines = [r.getMessage() for r in caplog.records if "query embedding failed" in r.getMessage()]
    assert lines
    for leaked in ("sk-OTHER-4410", '"owner"', "10.20.30.40", "/srv/owner", "tok-LEAK-99"):
        assert all(leaked not in line for line in lines), lines
    assert all("suspended" in line for line in lines)  # the cause is still there
