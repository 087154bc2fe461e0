"""GeminiAnswerer against the fake Gemini server, over real HTTP (the REST stream client)."""

from __future__ import annotations

import socket

import pytest

from bookchat.providers.gemini_llm import GeminiLLM
from bookchat.providers.gemini_stream import GeminiStreamClient
from bookchat.rag.answerer import AnswerError, AnswerRequest
from bookchat.rag.gemini_answerer import MESSAGES, GeminiAnswerer
from bookchat.rag.prompt import NO_ANSWER
from bookchat.rag.types import Passage
from tests.fakes.gemini import DropConnection, FakeGemini, HttpError, Reply, Stall, StreamError

PASSAGES = [
    Passage(
        file="module-01/nodes.md",
        title="Nodes",
        heading="What is a node",
        url="https://book.example/docs/module-01/nodes#what-is-a-node",
        text="A node is a process that performs computation.",
        score=0.9,
    ),
    Passage(
        file="module-01/topics.md",
        title="Topics",
        heading="",
        url="https://book.example/docs/module-01/topics",
        text="Topics are named buses over which nodes exchange messages.",
        score=0.7,
    ),
]
REQUEST = AnswerRequest(
    question="How do nodes talk to each other?",
    passages=PASSAGES,
    history=[("user", "What is ROS 2?"), ("assistant", "ROS 2 is robot middleware [1].")],
)


def _answerer(fake: FakeGemini, *, timeout: float = 5.0, **options) -> GeminiAnswerer:
    client = GeminiStreamClient(api_key="test-key", base_url=fake.base_url, timeout=timeout)
    options.setdefault("initial_backoff", 0.01)
    options.setdefault("max_backoff", 0.02)
    llm = GeminiLLM(client, model="gemini-2.5-flash", timeout=timeout, **options)
    return GeminiAnswerer(llm)


@pytest.fixture
async def answerer(fake_gemini: FakeGemini):
    answerer = _answerer(fake_gemini)
    yield answerer
    await answerer.aclose()


async def _collect(answerer: GeminiAnswerer, request: AnswerRequest = REQUEST) -> list[str]:
    return [piece async for piece in answerer.stream(request)]


async def _failure(answerer: GeminiAnswerer, received: list[str]) -> AnswerError:
    try:
        async for piece in answerer.stream(REQUEST):
            received.append(piece)
    except AnswerError as exc:
        return exc
    raise AssertionError("the stream ended without an AnswerError")


async def test_streams_the_answer_in_pieces(answerer, fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Reply("Nodes exchange messages over topics [2]."))
    pieces = await _collect(answerer)
    assert len(pieces) > 1
    assert "".join(pieces) == "Nodes exchange messages over topics [2]."
    assert answerer.describe() == {"backend": "gemini", "model": "gemini-2.5-flash"}


async def test_the_prompt_reaches_the_model(answerer, fake_gemini: FakeGemini) -> None:
    answer = "".join(await _collect(answerer))
    # The fake's default reply lists the numbered sources it was given.
    assert (
        "[1] Nodes — What is a node (https://book.example/docs/module-01/nodes#what-is-a-node)"
        in answer
    )
    assert "[2] Topics (https://book.example/docs/module-01/topics)" in answer
    (request,) = fake_gemini.generate_requests()
    body = request.body
    assert request.action == "streamGenerateContent"
    assert request.model == "gemini-2.5-flash"
    assert NO_ANSWER in body["systemInstruction"]["parts"][0]["text"]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][0]["parts"][0]["text"] == "What is ROS 2?"
    assert body["contents"][1]["parts"][0]["text"] == "ROS 2 is robot middleware [1]."
    last = body["contents"][2]["parts"][0]["text"]
    assert "A node is a process that performs computation." in last
    assert last.rstrip().endswith('Question: "How do nodes talk to each other?"')
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


async def test_rate_limit_then_success_is_one_answer(answerer, fake_gemini) -> None:
    fake_gemini.script(HttpError(429), Reply("Over topics [2]."))
    assert "".join(await _collect(answerer)) == "Over topics [2]."
    assert len(fake_gemini.generate_requests()) == 2


async def test_unavailable_is_retried_up_to_the_attempt_limit(answerer, fake_gemini) -> None:
    fake_gemini.script(HttpError(503), HttpError(503), Reply("Third time [1]."))
    assert "".join(await _collect(answerer)) == "Third time [1]."
    assert len(fake_gemini.generate_requests()) == 3


async def test_persistent_rate_limit_fails_without_multiplying_attempts(
    answerer, fake_gemini
) -> None:
    fake_gemini.script(*[HttpError(429)] * 5)
    error = await _failure(answerer, received := [])
    assert error.code == "llm_rate_limited"
    assert error.started is False
    assert received == []
    # Three attempts, one HTTP request each: nothing retries underneath.
    assert len(fake_gemini.generate_requests()) == 3


async def test_server_error_before_the_first_token(answerer, fake_gemini) -> None:
    fake_gemini.script(HttpError(500))
    error = await _failure(answerer, received := [])
    assert (error.code, error.started) == ("llm_unavailable", False)
    assert error.message == MESSAGES["llm_unavailable"]
    assert received == []
    assert len(fake_gemini.generate_requests()) == 1


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_configuration_errors_are_not_retried(answerer, fake_gemini, status: int) -> None:
    fake_gemini.script(HttpError(status, message="API key not valid. key=test-key"))
    error = await _failure(answerer, [])
    assert error.code == "llm_misconfigured"
    assert "test-key" not in error.message
    assert len(fake_gemini.generate_requests()) == 1


async def test_retry_delay_longer_than_the_time_out_fails_at_once(fake_gemini) -> None:
    answerer = _answerer(fake_gemini, timeout=2.0)
    try:
        fake_gemini.script(HttpError(429, retry_delay=30), Reply("never reached"))
        error = await _failure(answerer, [])
    finally:
        await answerer.aclose()
    assert error.code == "llm_rate_limited"
    assert len(fake_gemini.generate_requests()) == 1


async def test_connection_dropped_before_the_response_is_retried(answerer, fake_gemini) -> None:
    fake_gemini.script(DropConnection(after_chunks=0), Reply("Recovered [1]."))
    assert "".join(await _collect(answerer)) == "Recovered [1]."
    assert len(fake_gemini.generate_requests()) == 2


async def test_connection_dropped_mid_stream(answerer, fake_gemini) -> None:
    fake_gemini.script(DropConnection(after_chunks=2), Reply("not used"))
    error = await _failure(answerer, received := [])
    assert (error.code, error.started) == ("llm_stream_interrupted", True)
    assert len(received) == 2
    assert "peer" not in "".join(received)
    # Nothing is retried once the reader has seen part of the answer.
    assert len(fake_gemini.generate_requests()) == 1
    assert fake_gemini.pending == [Reply("not used")]


async def test_stall_before_the_first_token_times_out(fake_gemini) -> None:
    answerer = _answerer(fake_gemini, timeout=0.3)
    try:
        fake_gemini.script(Stall(5))
        error = await _failure(answerer, received := [])
    finally:
        await answerer.aclose()
    assert (error.code, error.started) == ("llm_timeout", False)
    assert received == []


async def test_stall_mid_stream_times_out(fake_gemini) -> None:
    answerer = _answerer(fake_gemini, timeout=1.0)
    try:
        fake_gemini.script(Stall(10, after_chunks=1, text="one two three four five six seven"))
        error = await _failure(answerer, received := [])
    finally:
        await answerer.aclose()
    assert (error.code, error.started) == ("llm_timeout", True)
    assert received == ["one two three four "]


async def test_whole_answer_has_a_deadline(fake_gemini) -> None:
    answerer = _answerer(fake_gemini, timeout=1.0, max_duration=0.3)
    try:
        # Each token is prompt, but the answer as a whole takes far longer than allowed.
        fake_gemini.script(Reply("a b c d e f g h i j k l m n o p", tokens_per_second=10))
        error = await _failure(answerer, received := [])
    finally:
        await answerer.aclose()
    assert (error.code, error.started) == ("llm_timeout", True)
    assert 0 < len(received) < 16


async def test_blocked_answer(answerer, fake_gemini) -> None:
    fake_gemini.script(Reply("", finish_reason="SAFETY"))
    error = await _failure(answerer, [])
    assert (error.code, error.started) == ("llm_blocked", False)


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION"])
async def test_a_blocking_finish_on_the_only_chunk_is_not_a_complete_answer(
    answerer, fake_gemini, reason: str
) -> None:
    # Unpaced, the fake sends up to four words per chunk: this reply is one chunk, whose
    # text arrives together with the finish reason.
    fake_gemini.script(Reply("Quoting the book verbatim", finish_reason=reason))
    error = await _failure(answerer, received := [])
    assert received == ["Quoting the book verbatim"]
    assert (error.code, error.started) == ("llm_blocked", True)
    assert error.message == MESSAGES["llm_blocked"]


async def test_a_blocking_finish_after_some_text(answerer, fake_gemini) -> None:
    fake_gemini.script(Reply("one two three four five six", finish_reason="SAFETY"))
    error = await _failure(answerer, received := [])
    assert "".join(received) == "one two three four five six"
    assert (error.code, error.started) == ("llm_blocked", True)


async def test_a_blocked_prompt(answerer, fake_gemini) -> None:
    fake_gemini.script(Reply("", block_reason="PROHIBITED_CONTENT"))
    error = await _failure(answerer, received := [])
    assert received == []
    assert (error.code, error.started) == ("llm_blocked", False)
    # A refusal is final: not retried.
    assert len(fake_gemini.generate_requests()) == 1


async def test_an_error_event_before_any_text_is_retried(answerer, fake_gemini) -> None:
    fake_gemini.script(StreamError(503, after_chunks=0), Reply("Second try [1]."))
    assert "".join(await _collect(answerer)) == "Second try [1]."
    assert len(fake_gemini.generate_requests()) == 2


async def test_an_error_event_mid_stream_interrupts(answerer, fake_gemini) -> None:
    fake_gemini.script(StreamError(500, after_chunks=1, text="one two three four five six"))
    error = await _failure(answerer, received := [])
    assert received == ["one two three four "]
    assert (error.code, error.started) == ("llm_stream_interrupted", True)
    assert len(fake_gemini.generate_requests()) == 1


async def test_an_unanswering_server_is_unavailable_not_a_crash(fake_gemini) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = GeminiStreamClient(api_key="k", base_url=f"http://127.0.0.1:{port}", timeout=2)
    llm = GeminiLLM(client, model="gemini-2.5-flash", timeout=2, initial_backoff=0.01)
    answerer = GeminiAnswerer(llm)
    try:
        error = await _failure(answerer, [])
    finally:
        await answerer.aclose()
    assert (error.code, error.started) == ("llm_unavailable", False)


async def test_health_check_does_not_call_the_api(answerer, fake_gemini) -> None:
    entry = await answerer.check(timeout=1)
    assert entry["status"] == "ok"
    assert entry["backend"] == "gemini"
    assert fake_gemini.requests == []
    fake_gemini.script(HttpError(500))
    await _failure(answerer, [])
    entry = await answerer.check(timeout=1)
    # An outage is reported, but does not fail the health check.
    assert entry["status"] == "ok"
    assert entry["last_answer"]["code"] == "llm_unavailable"
    fake_gemini.script(HttpError(403))
    await _failure(answerer, [])
    entry = await answerer.check(timeout=1)
    assert entry["status"] == "down"
    assert entry["last_answer"]["code"] == "llm_misconfigured"
    await _collect(answerer)
    entry = await answerer.check(timeout=1)
    assert entry["status"] == "ok"
    assert entry["last_answer"]["ok"] is True
    assert len(fake_gemini.requests) == 3


async def test_closing_the_stream_early_closes_the_response(answerer, fake_gemini) -> None:
    fake_gemini.script(Reply("one two three four five six", tokens_per_second=50))
    stream = answerer.stream(REQUEST)
    assert await anext(stream) == "one "
    await stream.aclose()
    # The client can go on answering afterwards.
    assert "".join(await _collect(answerer))
