"""The REST stream client against the fake Gemini server (real HTTP), and the API's odd shapes."""

from __future__ import annotations

import httpx
import pytest

from bookchat.providers.gemini_stream import (
    GeminiHTTPError,
    GeminiStreamClient,
    block_reason,
    finish_reason,
    request_body,
    text_of,
)
from tests.fakes.gemini import DropConnection, FakeGemini, HttpError, Reply, StreamError

TWELVE = "one two three four five six seven eight nine ten eleven twelve"
BODY = request_body(
    system_instruction="Answer from the sources.",
    contents=[{"role": "user", "parts": [{"text": "[1] Nodes\nQuestion: what is a node?"}]}],
    temperature=0.2,
    max_output_tokens=256,
    thinking_budget=0,
)


@pytest.fixture
async def client(fake_gemini: FakeGemini):
    client = GeminiStreamClient(api_key="test-key", base_url=fake_gemini.base_url, timeout=5)
    yield client
    await client.aclose()


async def _chunks(client: GeminiStreamClient, body=BODY) -> list[dict]:
    return [chunk async for chunk in client.stream("gemini-2.5-flash", body)]


async def _texts_until_failure(client: GeminiStreamClient, received: list[str]) -> None:
    async for chunk in client.stream("gemini-2.5-flash", BODY):
        received.append(text_of(chunk))


async def test_streams_the_chunks_the_api_sends(client, fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Reply("Nodes exchange messages [1]."))
    chunks = await _chunks(client)
    assert "".join(text_of(c) for c in chunks) == "Nodes exchange messages [1]."
    assert [finish_reason(c) for c in chunks][-1] == "STOP"
    assert all(finish_reason(c) is None for c in chunks[:-1])
    assert block_reason(chunks[0]) is None


async def test_the_request_is_the_documented_rest_call(client, fake_gemini: FakeGemini) -> None:
    await _chunks(client)
    (request,) = fake_gemini.generate_requests()
    assert request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert request.query == {"alt": "sse"}
    assert request.had_api_key
    assert request.body["systemInstruction"] == {"parts": [{"text": "Answer from the sources."}]}
    assert request.body["contents"] == BODY["contents"]
    assert request.body["generationConfig"] == {
        "temperature": 0.2,
        "maxOutputTokens": 256,
        "thinkingConfig": {"thinkingBudget": 0},
    }


async def test_an_error_status_carries_code_status_and_retry_delay(client, fake_gemini) -> None:
    fake_gemini.script(HttpError(429, retry_delay=31))
    with pytest.raises(GeminiHTTPError) as caught:
        await _chunks(client)
    assert (caught.value.code, caught.value.status) == (429, "RESOURCE_EXHAUSTED")
    (detail,) = caught.value.details["error"]["details"]
    assert detail["retryDelay"] == "31s"


async def test_an_error_text_never_reaches_the_exception_text(client, fake_gemini) -> None:
    fake_gemini.script(HttpError(400, message="bad prompt: Question: what is a node?"))
    with pytest.raises(GeminiHTTPError) as caught:
        await _chunks(client)
    assert caught.value.code == 400
    assert "node" not in str(caught.value)


async def test_an_error_event_inside_the_stream_raises(client, fake_gemini) -> None:
    fake_gemini.script(StreamError(503, after_chunks=2, text=TWELVE))
    received = []
    with pytest.raises(GeminiHTTPError) as caught:
        await _texts_until_failure(client, received)
    assert caught.value.code == 503
    # Unpaced, the fake sends four words per chunk.
    assert received == ["one two three four ", "five six seven eight "]


async def test_a_dropped_connection_is_an_httpx_transport_error(client, fake_gemini) -> None:
    fake_gemini.script(DropConnection(after_chunks=2, text=TWELVE))
    received = []
    with pytest.raises(httpx.TransportError):
        await _texts_until_failure(client, received)
    # Unpaced, the fake sends four words per chunk.
    assert received == ["one two three four ", "five six seven eight "]


async def test_a_blocked_prompt_is_one_chunk_without_candidates(client, fake_gemini) -> None:
    fake_gemini.script(Reply("", block_reason="SAFETY"))
    (chunk,) = await _chunks(client)
    assert block_reason(chunk) == "SAFETY"
    assert (text_of(chunk), finish_reason(chunk)) == ("", None)


async def test_closing_early_frees_the_connection(client, fake_gemini) -> None:
    fake_gemini.script(Reply("one two three four five six", tokens_per_second=50))
    stream = client.stream("gemini-2.5-flash", BODY)
    assert text_of(await anext(stream)) == "one "
    await stream.aclose()
    assert "".join(text_of(c) for c in await _chunks(client))


def _replying(body: bytes, status: int = 200) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handler)


async def _mocked(body: bytes, status: int = 200) -> list[dict]:
    client = GeminiStreamClient(api_key="k", timeout=5, transport=_replying(body, status))
    try:
        return await _chunks(client)
    finally:
        await client.aclose()


async def test_an_error_sent_as_bare_json_lines_raises() -> None:
    # The SDK's reader handles this shape too: an error object not framed as SSE.
    body = (
        b'data: {"candidates": [{"content": {"parts": [{"text": "Hi "}]}}]}\r\n\r\n'
        b'{\n  "error": {\n    "code": 500,\n    "status": "INTERNAL"\n  }\n}\n'
    )
    with pytest.raises(GeminiHTTPError) as caught:
        await _mocked(body)
    assert (caught.value.code, caught.value.status) == (500, "INTERNAL")


async def test_multi_line_data_and_comments() -> None:
    body = (
        b": keep-alive\n\n"
        b'data: {"candidates": [{"content": {"parts":\n'
        b'data: [{"text": "a"}, {"text": "hidden", "thought": true}, {"text": "b"}]}}]}\n\n'
        b'data:{"candidates": [{"finishReason": "RECITATION"}]}\n\n'
    )
    chunks = await _mocked(body)
    assert [text_of(c) for c in chunks] == ["ab", ""]
    assert finish_reason(chunks[1]) == "RECITATION"


async def test_an_error_body_that_is_not_json_still_gives_the_status() -> None:
    with pytest.raises(GeminiHTTPError) as caught:
        await _mocked(b"<html>Bad Gateway</html>", status=502)
    assert (caught.value.code, caught.value.status) == (502, None)


async def test_a_stream_cut_inside_a_json_object_is_an_error() -> None:
    with pytest.raises(ValueError, match="inside a JSON object"):
        await _mocked(b'{\n  "error": {\n')


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r"])
async def test_every_sse_line_ending_splits_events(end: bytes) -> None:
    event = b'data: {"candidates": [{"content": {"parts": [{"text": "%d"}]}}]}'
    events = [event % i for i in (1, 2)]
    body = b"".join(event + end + end for event in events)
    assert [text_of(c) for c in await _mocked(body)] == ["1", "2"]


async def test_a_chunk_split_anywhere_by_the_network_reads_the_same() -> None:
    body = (
        b": comment\r\n\r\n"
        b'data: {"candidates": [{"content": {"parts": [{"text": "caf\xc3\xa9 "}]}}]}\r\n\r\n'
        b'data: {"candidates": [{"content": {"parts": [{"text": "two"}]}, '
        b'"finishReason": "STOP"}]}\r\n\r\n'
    )
    for cut in range(1, len(body)):
        # Every split point, CRLF and a UTF-8 character cut in two included.
        pieces = [body[:cut], body[cut:]]

        def handler(request: httpx.Request, pieces=pieces) -> httpx.Response:
            return httpx.Response(200, content=_Pieces(pieces))

        client = GeminiStreamClient(api_key="k", timeout=5, transport=httpx.MockTransport(handler))
        try:
            chunks = await _chunks(client)
        finally:
            await client.aclose()
        assert [text_of(c) for c in chunks] == ["café ", "two"], cut
        assert finish_reason(chunks[-1]) == "STOP"


async def test_a_last_event_without_its_blank_line_still_counts() -> None:
    body = b'data: {"candidates": [{"content": {"parts": [{"text": "end"}]}}]}'
    assert [text_of(c) for c in await _mocked(body)] == ["end"]


class _Pieces(httpx.AsyncByteStream):
    """A response body that arrives in the given pieces, as reads from a socket would."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self):
        for piece in self.pieces:
            yield piece
