"""Gemini embeddings through the real google-genai SDK against the fake Gemini server."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import pytest

from bookchat.providers.gemini_client import genai_client
from bookchat.providers.gemini_embedder import EmbeddingError, GeminiEmbedder
from tests.fakes.gemini import FakeGemini, HttpError
from tests.network import free_port

EMBED = "batchEmbedContents"


@pytest.fixture
async def embedder(fake_gemini: FakeGemini):
    """Builds GeminiEmbedders on the fake server; closes their HTTP clients afterwards."""
    made: list[GeminiEmbedder] = []

    def build(**kwargs: object) -> GeminiEmbedder:
        made.append(_embedder(fake_gemini, **kwargs))
        return made[-1]

    yield build
    for emb in made:
        await emb.aclose()


def _embedder(fake: FakeGemini, **kwargs: object) -> GeminiEmbedder:
    client = genai_client(api_key="test-secret-key", base_url=fake.base_url, timeout=30.0)
    options = {"model": "gemini-embedding-001", "dimensions": 768, "initial_delay": 0.01}
    options.update(kwargs)
    return GeminiEmbedder(client=client, **options)  # type: ignore[arg-type]


async def test_documents_are_batched_by_at_most_100(fake_gemini: FakeGemini, embedder) -> None:
    texts = [f"passage number {i} about motors" for i in range(250)]
    vectors = await embedder().embed_documents(texts)
    requests = fake_gemini.embed_requests()
    assert [r.action for r in requests] == [EMBED] * 3
    assert [len(r.body["requests"]) for r in requests] == [100, 100, 50]
    assert len(vectors) == 250
    assert all(len(v) == 768 for v in vectors)
    assert vectors[0] != vectors[1]


async def test_task_types_and_dimensionality(fake_gemini: FakeGemini, embedder) -> None:
    emb = embedder(dimensions=256)
    docs = await emb.embed_documents(["wheel encoders count ticks"])
    query = await emb.embed_query("how does odometry work?")
    assert fake_gemini.task_types == ["RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY"]
    dims = {
        item["outputDimensionality"]
        for r in fake_gemini.embed_requests()
        for item in r.body["requests"]
    }
    assert dims == {256}
    assert len(docs[0]) == len(query) == 256
    assert {r.model for r in fake_gemini.embed_requests()} == {"gemini-embedding-001"}
    assert emb.name == "gemini:gemini-embedding-001"
    assert emb.dimensions == 256


async def test_429_then_success(fake_gemini: FakeGemini, embedder) -> None:
    fake_gemini.script(HttpError(429, on=EMBED))
    vectors = await embedder().embed_documents(["a passage"])
    assert len(vectors) == 1
    assert len(fake_gemini.embed_requests()) == 2
    assert fake_gemini.pending == []


async def test_500_retried_then_error(fake_gemini: FakeGemini, embedder) -> None:
    fake_gemini.script(*[HttpError(500, on=EMBED)] * 3)
    with pytest.raises(EmbeddingError, match="500") as caught:
        await embedder(attempts=3).embed_documents(["a passage"])
    assert len(fake_gemini.embed_requests()) == 3
    assert "test-secret-key" not in str(caught.value)


async def test_client_errors_are_not_retried(fake_gemini: FakeGemini, embedder) -> None:
    fake_gemini.script(HttpError(400, message="bad dimensionality", on=EMBED))
    with pytest.raises(EmbeddingError, match="400"):
        await embedder().embed_documents(["a passage"])
    assert len(fake_gemini.embed_requests()) == 1


async def test_queries_retry_once_only(fake_gemini: FakeGemini, embedder) -> None:
    fake_gemini.script(*[HttpError(503, on=EMBED)] * 5)
    with pytest.raises(EmbeddingError):
        await embedder().embed_query("a question")
    assert len(fake_gemini.embed_requests()) == 2


class _StubModels:
    """Returns a fixed, non-unit vector: the real API's truncated vectors are not unit length."""

    def __init__(self, values: list[float]) -> None:
        self.values = values

    async def embed_content(self, *, model: str, contents: list[str], config: object):
        return SimpleNamespace(embeddings=[SimpleNamespace(values=self.values) for _ in contents])


def _stub_client(values: list[float]) -> object:
    return SimpleNamespace(aio=SimpleNamespace(models=_StubModels(values)))


async def test_truncated_vectors_are_normalised() -> None:
    emb = GeminiEmbedder(client=_stub_client([3.0, 4.0]), dimensions=2)  # type: ignore[arg-type]
    [vector] = await emb.embed_documents(["x"])
    assert vector == pytest.approx([0.6, 0.8])
    assert math.isclose(math.hypot(*await emb.embed_query("y")), 1.0)


async def test_full_size_vectors_are_left_alone() -> None:
    values = [2.0] * 3072
    emb = GeminiEmbedder(client=_stub_client(values), dimensions=3072)  # type: ignore[arg-type]
    assert (await emb.embed_documents(["x"]))[0] == values


async def test_wrong_dimensions_are_an_error() -> None:
    emb = GeminiEmbedder(client=_stub_client([1.0, 0.0]), dimensions=768)  # type: ignore[arg-type]
    with pytest.raises(EmbeddingError, match="BOOKCHAT_EMBEDDING_DIMENSIONS"):
        await emb.embed_documents(["x"])


async def test_a_closed_port_is_retried_then_names_gemini(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # google-genai's default HTTP stack is httpx2, whose errors are not httpx's: both count.
    caplog.set_level(logging.INFO, logger="bookchat.providers.gemini_embedder")
    client = genai_client(
        api_key="test-secret-key", base_url=f"http://127.0.0.1:{free_port()}", timeout=5.0
    )
    emb = GeminiEmbedder(client=client, attempts=3, initial_delay=0.01, max_delay=0.02)
    try:
        with pytest.raises(EmbeddingError, match="Gemini embeddings could not be reached"):
            await emb.embed_documents(["a passage"])
    finally:
        await emb.aclose()
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2  # three attempts
