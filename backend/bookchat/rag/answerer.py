"""The answerer interface: Gemini and the offline extractive answerer both implement it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bookchat.rag.types import Passage

Mode = Literal["general", "selection"]


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    """Everything an answerer needs for one reply; passages[i] is cited as [i + 1]."""

    question: str
    mode: Mode = "general"
    selection: str | None = None  # the highlighted text, in selection mode
    passages: Sequence[Passage] = field(default_factory=list)
    # Earlier turns of the conversation, oldest first, as (role, text) with role "user" or
    # "assistant"; the current question is not among them.
    history: Sequence[tuple[str, str]] = field(default_factory=list)


class AnswerError(Exception):
    """An answer could not be produced (or finished); `message` is safe to show a reader."""

    def __init__(self, code: str, message: str, *, started: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code  # machine-readable, e.g. "llm_rate_limited"
        self.message = message
        self.started = started  # True when some of the answer had already been streamed


class Answerer(Protocol):
    """Streams a cited answer for a request."""

    def describe(self) -> dict[str, str]:
        """Which backend answers, e.g. {"backend": "gemini", "model": "gemini-2.5-flash"}."""
        ...

    def stream(self, request: AnswerRequest) -> AsyncIterator[str]:
        """The answer's text in pieces; raises AnswerError when it cannot be produced."""
        ...

    async def check(self, timeout: float) -> dict[str, Any]:
        """A cheap health entry; never a paid API call per probe."""
        ...

    async def aclose(self) -> None:
        """Release clients and connections."""
        ...
