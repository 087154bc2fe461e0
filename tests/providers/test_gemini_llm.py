"""The Gemini LLM adapter on its own: a built prompt in, text or an LLMError out."""

from __future__ import annotations

import pytest

from bookchat.providers.gemini_llm import GeminiLLM
from bookchat.providers.gemini_responses import LLMError
from bookchat.providers.gemini_stream import GeminiStreamClient
from tests.fakes.gemini import FakeGemini, HttpError, Reply
from tests.network import free_port

CONTENTS = [{"role": "user", "parts": [{"text": "Question: What is a node?"}]}]


def _llm(base_url: str, waits: list[float], **options: object) -> GeminiLLM:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = GeminiStreamClient(api_key="test-key", base_url=base_url, timeout=5.0)
    return GeminiLLM(
        client,
        model="gemini-2.5-flash",
        timeout=5.0,
        initial_backoff=0.01,
        max_backoff=0.02,
        sleep=sleep,
        **options,  # type: ignore[arg-type]
    )


async def test_the_prompt_is_sent_as_built_and_streamed_back(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Reply("A node is a process [1]."))
    llm = _llm(fake_gemini.base_url, [])
    try:
        text = "".join([piece async for piece in llm.stream("cite", CONTENTS)])
    finally:
        await llm.aclose()
    assert text == "A node is a process [1]."
    (request,) = fake_gemini.generate_requests()
    assert "What is a node?" in str(request.body)


async def test_a_closed_port_is_retried_then_unavailable() -> None:
    waits: list[float] = []
    llm = _llm(f"http://127.0.0.1:{free_port()}", waits, max_attempts=3)
    try:
        with pytest.raises(LLMError) as caught:
            async for _ in llm.stream("cite", CONTENTS):
                pass
    finally:
        await llm.aclose()
    assert (caught.value.code, caught.value.started) == ("llm_unavailable", False)
    assert len(waits) == 2  # three attempts, two waits
    assert all(0 <= wait <= 0.02 for wait in waits)  # full jitter below the cap


async def test_a_server_retry_delay_is_honoured(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(HttpError(429, retry_delay=1), Reply("Later [1]."))
    waits: list[float] = []
    llm = _llm(fake_gemini.base_url, waits)
    try:
        text = "".join([piece async for piece in llm.stream("cite", CONTENTS)])
    finally:
        await llm.aclose()
    assert text == "Later [1]."
    assert waits == [1.0]
