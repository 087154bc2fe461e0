"""The dense-embedder interface that Gemini and the offline static model both implement."""

from __future__ import annotations

from typing import Protocol


class DenseEmbedder(Protocol):
    """Turns text into fixed-size vectors; documents and queries may be embedded differently."""

    @property
    def name(self) -> str:
        """Stable identity recorded in the collection, e.g. "gemini:gemini-embedding-001"."""
        ...

    @property
    def dimensions(self) -> int: ...

    async def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    async def embed_query(self, text: str) -> list[float]: ...
