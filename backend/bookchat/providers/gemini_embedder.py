"""Gemini embeddings through google-genai: batched, task-typed, truncated and re-normalised."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bookchat.retry import is_transport_error, retrying

if TYPE_CHECKING:
    from google import genai
    from google.genai import types
    from tenacity import RetryCallState

log = logging.getLogger(__name__)

# batchEmbedContents takes at most 100 requests per call.
MAX_BATCH = 100
# gemini-embedding-001 returns unit vectors only at its full size; truncations must be
# normalised again (Google's embeddings guide, "Controlling embedding size").
FULL_DIMENSIONS = 3072
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class EmbeddingError(Exception):
    """The embedding service failed for good; the message names the cause, never the key."""


def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else vector


class GeminiEmbedder:
    """DenseEmbedder backed by the Gemini API (RETRIEVAL_DOCUMENT vs RETRIEVAL_QUERY)."""

    def __init__(
        self,
        *,
        client: genai.Client,
        model: str = "gemini-embedding-001",
        dimensions: int = 768,
        batch_size: int = MAX_BATCH,
        attempts: int = 5,
        query_attempts: int = 2,
        initial_delay: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        self._client = client
        self._model = model
        self._dimensions = dimensions
        self._batch_size = batch_size
        self._attempts = max(1, attempts)
        # A reader is waiting on a query: one quick retry, then say the service is unavailable.
        self._query_attempts = max(1, query_attempts)
        self._initial_delay = initial_delay
        self._max_delay = max_delay

    @property
    def name(self) -> str:
        return f"gemini:{self._model}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages for storage, at most 100 per request."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = texts[start : start + self._batch_size]
            vectors.extend(await self._embed(batch, "RETRIEVAL_DOCUMENT", self._attempts))
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        """Embed a reader's question."""
        return (await self._embed([text], "RETRIEVAL_QUERY", self._query_attempts))[0]

    async def aclose(self) -> None:
        """Close the SDK's HTTP clients."""
        await self._client.aio.aclose()
        self._client.close()

    async def _embed(self, texts: list[str], task_type: str, attempts: int) -> list[list[float]]:
        from google.genai import types

        config = types.EmbedContentConfig(
            task_type=task_type, output_dimensionality=self._dimensions
        )
        response = await self._with_retries(
            lambda: self._client.aio.models.embed_content(
                model=self._model, contents=texts, config=config
            ),
            attempts,
        )
        embeddings = response.embeddings or []
        if len(embeddings) != len(texts):
            raise EmbeddingError(
                f"Gemini returned {len(embeddings)} embeddings for {len(texts)} texts"
            )
        vectors = []
        for embedding in embeddings:
            values = list(embedding.values or [])
            if len(values) != self._dimensions:
                raise EmbeddingError(
                    f"Gemini returned {len(values)} dimensions, expected {self._dimensions} "
                    f"(BOOKCHAT_EMBEDDING_DIMENSIONS): does {self._model} support that size?"
                )
            vectors.append(_normalise(values) if self._dimensions < FULL_DIMENSIONS else values)
        return vectors

    async def _with_retries(
        self, call: Callable[[], Awaitable[types.EmbedContentResponse]], attempts: int
    ) -> types.EmbedContentResponse:
        try:
            async for attempt in retrying(
                retry_on=_worth_retrying,
                attempts=attempts,
                initial=self._initial_delay,
                maximum=self._max_delay,
                before_sleep=_log_retry,
            ):
                with attempt:
                    return await call()
        except Exception as exc:
            raise _embedding_error(exc) from exc
        raise AssertionError("unreachable: tenacity returns or raises")


def _worth_retrying(exc: BaseException) -> bool:
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        return exc.code in RETRYABLE_STATUS
    return is_transport_error(exc)


def _embedding_error(exc: BaseException) -> BaseException:
    """The error a caller sees: EmbeddingError naming Gemini, or the unexpected error itself."""
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        return EmbeddingError(
            f"Gemini embeddings failed: HTTP {exc.code} {exc.status or ''} "
            f"{(exc.message or '')[:200]}".strip()
        )
    if is_transport_error(exc):
        return EmbeddingError(f"Gemini embeddings could not be reached: {type(exc).__name__}")
    return exc


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    code = getattr(error, "code", None)
    reason = f"HTTP {code}" if isinstance(code, int) else type(error).__name__
    log.info(
        "Gemini embeddings: %s, retry %d in %.1fs",
        reason,
        state.attempt_number,
        state.upcoming_sleep,
    )
