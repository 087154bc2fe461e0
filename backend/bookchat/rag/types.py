"""The values that cross from retrieval to the chat service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved piece of the book, with everything a citation needs."""

    file: str  # path relative to the docs root, e.g. "module-01/chapter-01.md"
    title: str  # page title
    heading: str  # heading path, "Section > Subsection" ("" for a page's lead text)
    url: str  # public page URL with #anchor
    text: str
    score: float  # higher is better; the chat's "similarity"
    version: str | None = None  # the docs version, when the book has released versions
    plugin: str | None = None  # the docs plugin instance id, when the book has several


class RetrievalUnavailable(Exception):
    """The vector store or the query embedder could not be reached; the message is for a reader."""


class Retriever(Protocol):
    """What the chat service needs from retrieval."""

    async def retrieve(self, question: str, k: int = 5) -> list[Passage]: ...

    async def check(self, timeout: float) -> dict[str, Any]: ...
