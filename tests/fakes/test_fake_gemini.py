"""The fake Gemini server, driven through the real google-genai SDK."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import httpx
import httpx2
import pytest
from google.genai import errors

from bookchat.providers.gemini_client import genai_client
from tests.fakes.gemini import (
    DropConnection,
    FakeGemini,
    HttpError,
    Reply,
    Stall,
    embed_text,
    tokens_of,
)

PROMPT = "[1] Intro — Start (https://book/intro)\nROS 2 is middleware.\n\nQuestion: What is ROS?"


@pytest.fixture
async def client(fake_gemini: FakeGemini):
    client = genai_client(api_key="test-key", base_url=fake_gemini.base_url, timeout=5)
    yield client
    await client.aio.aclose()
    client.close()


async def _stream_text(client, contents: str = PROMPT) -> list[str]:
    stream = await client.aio.models.generate_content_stream(
        model="gemini-2.5-flash", contents=contents, config={"system_instruction": "cite"}
    )
    return [chunk.text async for chunk in stream]


async def test_stream_default_reply_reflects_the_prompt(client, fake_gemini: FakeGemini) -> None:
    pieces = await _stream_text(client)
    text = "".join(pieces)
    assert len(pieces) > 1
    assert "What is ROS?" in text
    assert "[1] Intro — Start" in text
    (request,) = fake_gemini.requests
    assert request.action == "streamGenerateContent"
    assert request.model == "gemini-2.5-flash"
    assert request.query == {"alt": "sse"}
    assert request.had_api_key
    assert "x-goog-api-key" not in request.headers
    assert "test-key" not in repr(request)
    assert request.body["systemInstruction"]["parts"][0]["text"] == "cite"
    assert "ROS 2 is middleware." in request.prompt_text()


async def test_stream_last_chunk_has_finish_reason_and_usage(client) -> None:
    stream = await client.aio.models.generate_content_stream(model="m", contents=PROMPT)
    chunks = [chunk async for chunk in stream]
    assert [c.candidates[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].candidates[0].finish_reason == "STOP"
    assert chunks[-1].usage_metadata.candidates_token_count == len(
        tokens_of("".join(c.text for c in chunks))
    )


async def test_generate_content_non_streaming(client) -> None:
    response = await client.aio.models.generate_content(model="m", contents=PROMPT)
    assert "[1] Intro" in response.text


async def test_scripted_reply_is_split_into_tokens(client, fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Reply("Alpha beta gamma [1]."))
    assert "".join(await _stream_text(client)) == "Alpha beta gamma [1]."


async def test_fixed_rate_streams_one_token_per_chunk(client, fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Reply("one two three four", tokens_per_second=200))
    assert await _stream_text(client) == ["one ", "two ", "three ", "four"]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_http_errors_carry_google_error_json(client, fake_gemini, status: int) -> None:
    fake_gemini.script(HttpError(status))
    with pytest.raises(errors.APIError) as caught:
        await _stream_text(client)
    assert caught.value.code == status
    assert caught.value.status in {"RESOURCE_EXHAUSTED", "INTERNAL", "UNAVAILABLE"}
    # The script is used up: the next request succeeds.
    assert "".join(await _stream_text(client))


async def test_behaviours_apply_in_order_to_matching_requests(client, fake_gemini) -> None:
    fake_gemini.script(HttpError(503), HttpError(429, on="batchEmbedContents"))
    # The embed error is not consumed by a generation request.
    with pytest.raises(errors.APIError) as first:
        await _stream_text(client)
    assert first.value.code == 503
    await _stream_text(client)
    with pytest.raises(errors.APIError) as second:
        await client.aio.models.embed_content(model="e", contents=["x"])
    assert second.value.code == 429
    assert fake_gemini.pending == []


async def test_drop_connection_mid_stream(client, fake_gemini: FakeGemini) -> None:
    fake_gemini.script(DropConnection(after_chunks=2))
    received: list[str] = []
    stream = await client.aio.models.generate_content_stream(model="m", contents=PROMPT)
    with pytest.raises(httpx2.RemoteProtocolError) as caught:  # noqa: PT012 - the loop raises
        async for chunk in stream:
            received.append(chunk.text)
    assert len(received) == 2
    assert "closed" in str(caught.value) or "incomplete" in str(caught.value)


async def test_stall_before_first_chunk_and_mid_stream(client, fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Stall(0.3), Stall(0.3, after_chunks=1))
    began = time.monotonic()
    await _stream_text(client)
    # A lower bound with slack for timer granularity: slowness can only make this larger.
    assert time.monotonic() - began >= 0.25
    stream = await client.aio.models.generate_content_stream(model="m", contents=PROMPT)
    gaps = []
    last = time.monotonic()
    async for _ in stream:
        now = time.monotonic()
        gaps.append(now - last)
        last = now
    assert gaps[1] >= 0.25


async def test_embeddings_are_deterministic_similar_and_sized(client, fake_gemini) -> None:
    texts = ["robots use sensors to see", "robots use sensors to hear", "bake bread with flour"]
    response = await client.aio.models.embed_content(
        model="gemini-embedding-001",
        contents=texts,
        config={"task_type": "RETRIEVAL_DOCUMENT", "output_dimensionality": 64},
    )
    vectors = [e.values for e in response.embeddings]
    assert [len(v) for v in vectors] == [64, 64, 64]
    assert vectors[0] == embed_text(texts[0], 64)

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert math.isclose(cosine(vectors[0], vectors[0]), 1.0)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    query = await client.aio.models.embed_content(
        model="gemini-embedding-001", contents="sensors", config={"task_type": "RETRIEVAL_QUERY"}
    )
    assert len(query.embeddings[0].values) == 3072
    assert fake_gemini.task_types == ["RETRIEVAL_DOCUMENT"] * 3 + ["RETRIEVAL_QUERY"]


def test_missing_api_key_is_rejected(fake_gemini: FakeGemini) -> None:
    response = httpx.post(
        f"{fake_gemini.base_url}/v1beta/models/m:generateContent", json={"contents": []}
    )
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_reset_forgets_requests_and_script(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(HttpError(500))
    httpx.post(f"{fake_gemini.base_url}/v1beta/models/m:nothing", json={})
    assert fake_gemini.requests
    fake_gemini.reset()
    assert fake_gemini.requests == []
    assert fake_gemini.pending == []


def test_runs_standalone_with_a_token_rate() -> None:
    command = [sys.executable, "-m", "tests.fakes.gemini", "--port", "0"]
    command += ["--tokens-per-second", "500"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            line = process.stdout.readline()
            base_url = line.strip().rsplit(" ", 1)[-1]
            assert base_url.startswith("http://127.0.0.1:")
            response = httpx.post(
                f"{base_url}/v1beta/models/m:streamGenerateContent?alt=sse",
                headers={"x-goog-api-key": "k"},
                json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                timeout=10,
            )
            events = [line for line in response.text.splitlines() if line.startswith("data: ")]
            # Paced replies send one whitespace token per event.
            expected = tokens_of('The fake model saw no numbered sources for "hi".')
            assert len(events) == len(expected)
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert process.returncode == 0
