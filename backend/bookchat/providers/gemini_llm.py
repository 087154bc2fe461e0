"""The Gemini LLM adapter: streams a built prompt, retrying until the first token arrives.

Transport: Gemini's documented REST stream (`streamGenerateContent?alt=sse`) through
providers/gemini_stream.py, not google-genai: the SDK's per-chunk pydantic validation was most
of the event loop's time under load (see that module and backend/docs/answers.md).

Retries (bookchat/retry.py): 429 and 502/503/504 responses and connection failures are retried
with exponential backoff and jitter, but only until the first token arrives and only within
the time-out; one HTTP request per attempt. After the first token nothing is retried (the
reader has seen part of the answer): a failure is an LLMError with started=True. A finish for
safety, recitation and the like ends the reply as "llm_blocked" even when its chunk carried
text (the only chunk included): the text so far was shown, but the reply is not complete. The
prompt is built above this adapter (rag/prompt.py); the reader-facing wording of each error
code lives there too (rag/gemini_answerer.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from bookchat.providers.gemini_responses import (
    BLOCKED_FINISH_REASONS,
    LLMError,
    code_for_status,
    describe_error,
    retry_delay,
)
from bookchat.providers.gemini_stream import (
    GeminiHTTPError,
    GeminiStreamClient,
    block_reason,
    finish_reason,
    request_body,
    text_of,
)
from bookchat.retry import is_transport_error, retrying

if TYPE_CHECKING:
    from tenacity import RetryCallState

log = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
RECENT_FAILURE_SECONDS = 300.0  # how long /api/health mentions a failed answer


def _worth_retrying(exc: BaseException) -> bool:
    # The time-out is the reader's whole wait (TimeoutError is an OSError, so it comes first).
    if isinstance(exc, (LLMError, TimeoutError)):
        return False
    if isinstance(exc, GeminiHTTPError):
        return exc.code in RETRIED_STATUSES
    return is_transport_error(exc)


def _code_for(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "llm_timeout"
    if isinstance(exc, GeminiHTTPError):
        return code_for_status(exc.code)
    return "llm_unavailable"


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "gemini attempt %d failed: %s; retrying in %.2f s",
        state.attempt_number,
        describe_error(error) if error is not None else "?",
        state.upcoming_sleep,
    )


class GeminiLLM:
    """Streams a Gemini model's reply to a prompt; see the module docstring for failures."""

    def __init__(
        self,
        client: GeminiStreamClient,
        *,
        model: str,
        timeout: float,
        max_attempts: int = 3,
        initial_backoff: float = 0.5,
        max_backoff: float = 4.0,
        max_duration: float | None = None,
        temperature: float = 0.2,
        max_output_tokens: int = 2048,
        owns_client: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self.model = model
        # The budget for the first token (all attempts and waits) and for each later gap.
        self.timeout = timeout
        # The whole answer's limit: a model that trickles forever still ends.
        self.max_duration = max_duration if max_duration is not None else max(120.0, 4 * timeout)
        self.max_attempts = max(1, max_attempts)
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self._owns_client = owns_client
        self._sleep = sleep
        self._last_outcome: tuple[float, str | None] | None = None  # (monotonic time, error code)

    def describe(self) -> dict[str, str]:
        """Backend and model, for metadata and /api/health."""
        return {"backend": "gemini", "model": self.model}

    async def check(self, timeout: float) -> dict[str, Any]:
        """Configured, plus the outcome of the latest answer; the API is not called per probe.

        Only a recent configuration error (bad key, unknown model) makes it "down": a rate
        limit or an outage passes, and is reported in `last_answer` without failing health.
        """
        entry: dict[str, Any] = {"status": "ok", **self.describe(), "detail": "configured"}
        if self._last_outcome is not None:
            at, code = self._last_outcome
            ago = time.monotonic() - at
            entry["last_answer"] = {"ok": code is None, "seconds_ago": round(ago, 1)}
            if code is not None:
                entry["last_answer"]["code"] = code
                if ago < RECENT_FAILURE_SECONDS:
                    entry["detail"] = f"configured; the latest answer failed: {code}"
                    if code == "llm_misconfigured":
                        entry["status"] = "down"
        return entry

    async def aclose(self) -> None:
        """Close the HTTP client when this adapter owns it."""
        if self._owns_client:
            await self._client.aclose()

    async def stream(
        self, system_instruction: str, contents: list[dict[str, Any]]
    ) -> AsyncIterator[str]:
        """The reply's text as Gemini streams it; raises LLMError when it cannot be had."""
        try:
            async with contextlib.aclosing(self._stream(system_instruction, contents)) as texts:
                async for text in texts:
                    yield text
        except LLMError as exc:
            self._last_outcome = (time.monotonic(), exc.code)
            raise
        self._last_outcome = (time.monotonic(), None)

    async def _stream(
        self, system_instruction: str, contents: list[dict[str, Any]]
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        chunks, first = await self._first_chunk(
            system_instruction, contents, deadline=started_at + self.timeout
        )
        end = started_at + self.max_duration
        try:
            chunk: dict[str, Any] | None = first
            while chunk is not None:
                text = text_of(chunk)
                if text:
                    yield text
                if finish_reason(chunk) in BLOCKED_FINISH_REASONS:
                    raise LLMError("llm_blocked", started=True)
                if loop.time() >= end:
                    raise LLMError("llm_timeout", started=True)
                # A gap longer than the time-out is the stream's read time-out (set when it
                # was opened), not an asyncio timer per chunk: entering and leaving one was a
                # tenth of the CPU spent reading an answer (backend/docs/benchmarks.md).
                failure = None
                try:
                    chunk = await anext(chunks, None)
                except httpx.TimeoutException:
                    failure = "llm_timeout"
                except Exception as exc:
                    log.warning("gemini stream interrupted: %s", describe_error(exc))
                    failure = "llm_stream_interrupted"
                if failure is not None:
                    # Raised outside the except block so the traceback (and the HTTP
                    # generators its frames hold) is not kept alive as __context__.
                    raise LLMError(failure, started=True)
        finally:
            await _close(chunks)

    async def _first_chunk(
        self, system_instruction: str, contents: list[dict[str, Any]], *, deadline: float
    ) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any]]:
        """Open the stream and read up to its first chunk with text, retrying what is worth it."""
        body = self._body(system_instruction, contents)
        loop = asyncio.get_running_loop()
        try:
            async for attempt in retrying(
                retry_on=_worth_retrying,
                attempts=self.max_attempts,
                initial=self.initial_backoff,
                maximum=self.max_backoff,
                # A wait that would use up the time-out is not taken: better to say so now.
                within=max(0.0, deadline - loop.time()),
                hint=retry_delay,
                sleep=self._sleep,
                before_sleep=_log_retry,
            ):
                with attempt:
                    return await self._open(body, deadline=deadline)
        except LLMError:
            raise
        except Exception as exc:
            log.warning("gemini request failed: %s", describe_error(exc))
            code = _code_for(exc)
        # Raised here, outside the except block, so the traceback (and the HTTP generators
        # its frames hold) does not live on as __context__.
        raise LLMError(code)

    async def _open(
        self, body: dict[str, Any], *, deadline: float
    ) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any]]:
        """One attempt: the stream and its first chunk with text; closed if it fails."""
        chunks: AsyncIterator[dict[str, Any]] | None = None
        try:
            async with asyncio.timeout_at(deadline):
                chunks = self._client.stream(self.model, body, read_timeout=self.timeout)
                async for chunk in chunks:
                    if text_of(chunk):
                        return chunks, chunk
                    if finish_reason(chunk) in BLOCKED_FINISH_REASONS or block_reason(chunk):
                        raise LLMError("llm_blocked")
            raise LLMError("llm_empty")
        except BaseException:
            await _close(chunks)
            raise

    def _body(self, system_instruction: str, contents: list[dict[str, Any]]) -> dict[str, Any]:
        # Thinking delays the first token by seconds; grounded answers do not need it.
        thinking = 0 if self.model.startswith("gemini-2.5-flash") else None
        return request_body(
            system_instruction=system_instruction,
            contents=contents,
            temperature=self.temperature,
            max_output_tokens=self.max_output_tokens,
            thinking_budget=thinking,
        )


async def _close(chunks: AsyncIterator[Any] | None) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception as exc:  # the stream is being abandoned anyway
            log.debug("closing the gemini stream failed: %s", describe_error(exc))
