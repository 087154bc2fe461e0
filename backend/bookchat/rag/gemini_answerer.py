"""The Gemini-backed answerer: the grounded prompt in, the reply out, failures in plain words."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from bookchat.providers.gemini_responses import LLMError
from bookchat.rag.answerer import AnswerError, AnswerRequest
from bookchat.rag.prompt import build_prompt

if TYPE_CHECKING:
    from bookchat.providers.gemini_llm import GeminiLLM

# One fixed sentence per error code: an upstream error's own text never reaches a reader.
MESSAGES = {
    "llm_rate_limited": "The language model is receiving too many requests; please try again "
    "in a minute.",
    "llm_unavailable": "The language model is unavailable right now; please try again shortly.",
    "llm_timeout": "The language model took too long to answer; please try again.",
    "llm_stream_interrupted": "The answer was interrupted; please ask again.",
    "llm_blocked": "The language model declined to answer this question.",
    "llm_empty": "The language model returned an empty answer; please rephrase the question.",
    "llm_rejected": "The language model could not process this question.",
    "llm_misconfigured": "The language model is not configured correctly (key or model name); "
    "the site's operator has to fix it.",
}


class GeminiAnswerer:
    """Answers with a Gemini model: the prompt from rag/prompt.py, the reply from GeminiLLM."""

    def __init__(self, llm: GeminiLLM) -> None:
        self.llm = llm

    def describe(self) -> dict[str, str]:
        """Backend and model, for metadata and /api/health."""
        return self.llm.describe()

    async def check(self, timeout: float) -> dict[str, Any]:
        """The LLM's health entry (configured, and how the latest answer went)."""
        return await self.llm.check(timeout)

    async def aclose(self) -> None:
        """Close the LLM's clients."""
        await self.llm.aclose()

    async def stream(self, request: AnswerRequest) -> AsyncIterator[str]:
        """The answer's text as Gemini streams it; an AnswerError with a fixed sentence if not."""
        prompt = build_prompt(request)
        failure: LLMError | None = None
        try:
            texts = self.llm.stream(prompt.system_instruction, prompt.contents)
            async with contextlib.aclosing(texts) as pieces:
                async for text in pieces:
                    yield text
        except LLMError as exc:
            failure = exc
        if failure is not None:
            # Raised outside the except block so the SDK's traceback is not kept as __context__.
            raise AnswerError(failure.code, MESSAGES[failure.code], started=failure.started)
