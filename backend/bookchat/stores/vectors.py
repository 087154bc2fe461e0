"""The book's Qdrant collection: embedded (local mode) or a server, with clear failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from bookchat.stores.collection import check_identity, create_collection, read_identity
from bookchat.stores.connection import Location
from bookchat.stores.errors import EmbedderMismatch, StoreUnavailable, VectorStoreError, guarded
from bookchat.stores.identity import IndexIdentity, point_id
from bookchat.stores.points import (
    NewPoint,
    StoredChunk,
    delete_points,
    set_positions,
    stored_chunks,
    upsert_points,
)
from bookchat.stores.search import Hit, hybrid_search

__all__ = [
    "EmbedderMismatch",
    "Hit",
    "IndexIdentity",
    "NewPoint",
    "StoreUnavailable",
    "StoredChunk",
    "VectorStore",
    "VectorStoreError",
    "point_id",
]

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

    from bookchat.config import Settings
    from bookchat.stores.identity import SparseVector
    from bookchat.stores.memory_index import DenseIndex, LexicalIndex

T = TypeVar("T")


class VectorStore:
    """One Qdrant collection of book chunks, named vectors "dense" and "bm25"."""

    def __init__(
        self,
        *,
        client: AsyncQdrantClient,
        collection: str,
        location: Location,
        timeout: float = 3.0,
    ) -> None:
        self._client = client
        self.collection = collection
        self.location = location
        self._timeout = timeout
        # Embedded only: search in-memory copies of the vectors (stores/memory_index.py).
        self.memory_index = True
        self._memory: tuple[LexicalIndex, DenseIndex | None] | None = None
        self._memory_generation = 0  # bumped by every write, so a load begun before it is stale
        self._loading: asyncio.Lock | None = None

    @classmethod
    def open(cls, settings: Settings, *, timeout: float = 3.0) -> VectorStore:
        """Embedded Qdrant under BOOKCHAT_DATA_DIR, or the server at QDRANT_URL."""
        from bookchat.stores.connection import open_client

        client, location = open_client(settings, timeout=timeout)
        return cls(
            client=client, collection=settings.qdrant_collection, location=location, timeout=timeout
        )

    @property
    def embedded(self) -> bool:
        return self.location.backend == "embedded"

    async def _call(self, make: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run one client call with a bounded time and errors that name host and cause."""
        return await guarded(
            make,
            where=f"Qdrant at {self.location.host_port}",
            limit=timeout if timeout is not None else self._timeout,
            embedded=self.embedded,
        )

    async def identity(self) -> IndexIdentity | None:
        """Which embedders built the collection; None when it does not exist yet."""
        return await read_identity(client=self._client, collection=self.collection, call=self._call)

    async def check_identity(self, using: IndexIdentity) -> bool:
        """Raise EmbedderMismatch if the collection was built otherwise; False if it is absent."""
        return await check_identity(
            client=self._client, collection=self.collection, call=self._call, using=using
        )

    async def ensure_collection(self, using: IndexIdentity) -> None:
        """Create the collection for these embedders, or check that it was built with them."""
        if await self.check_identity(using):
            return
        await create_collection(
            client=self._client,
            collection=self.collection,
            call=self._call,
            using=using,
            timeout=max(self._timeout, 10.0),
            embedded=self.embedded,
        )

    async def stored_chunks(self) -> dict[str, StoredChunk]:
        """Every point id in the collection with its page and position."""
        return await stored_chunks(client=self._client, collection=self.collection, call=self._call)

    async def upsert(self, points: Sequence[NewPoint]) -> None:
        """Write points (same id: replaced)."""
        self._memory = None
        self._memory_generation += 1
        await upsert_points(
            client=self._client,
            collection=self.collection,
            call=self._call,
            points=points,
            timeout=max(self._timeout, 30.0),
        )

    async def delete(self, ids: Sequence[str]) -> None:
        """Remove points by id."""
        if not ids:
            return
        self._memory = None
        self._memory_generation += 1
        await delete_points(
            client=self._client,
            collection=self.collection,
            call=self._call,
            ids=ids,
            timeout=max(self._timeout, 30.0),
        )

    async def set_position(self, ids_positions: dict[str, int]) -> None:
        """Update the stored position of chunks whose text did not change but moved."""
        await set_positions(
            client=self._client,
            collection=self.collection,
            call=self._call,
            ids_positions=ids_positions,
        )

    async def count(self, *, exact: bool = False, timeout: float | None = None) -> int:
        """Number of points (0 when the collection does not exist)."""
        exists = await self._call(
            lambda: self._client.collection_exists(self.collection), timeout=timeout
        )
        if not exists:
            return 0
        result = await self._call(
            lambda: self._client.count(self.collection, exact=exact), timeout=timeout
        )
        return result.count

    async def search(
        self,
        *,
        sparse: SparseVector,
        dense: list[float] | None,
        limit: int,
        candidates: int,
    ) -> list[Hit]:
        """Hybrid search: BM25 and dense legs fused by reciprocal rank, or the one leg there is.

        Against a server, Qdrant's query API runs both legs and the fusion (prefetch + RRF).
        Embedded, the lexical leg comes from an in-memory index (see stores/memory_index.py) and
        the fusion from qdrant-client's own RRF function, with the same results.
        """
        return await hybrid_search(
            client=self._client,
            collection=self.collection,
            call=self._call,
            memory=self._memory_index if self.embedded and self.memory_index else None,
            sparse=sparse,
            dense=dense,
            limit=limit,
            candidates=candidates,
        )

    async def warm(self) -> None:
        """Build the in-memory copies of an embedded collection now."""
        if self.embedded and self.memory_index:
            await self._memory_index()

    async def _memory_index(self) -> tuple[LexicalIndex, DenseIndex | None]:
        """The embedded collection's vectors in memory, loaded on first use after each write."""
        from bookchat.stores.memory_index import load_memory_index

        if self._memory is not None:
            return self._memory
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:  # one load at a time; the others wait and share it
            while self._memory is None:
                generation = self._memory_generation
                # Local mode's coroutines do all their work without ever waiting, so reading
                # 10,000 points (2.5 s) would stall every stream and health check: they run
                # on a private loop in a worker thread instead.
                loaded = await asyncio.to_thread(
                    asyncio.run, load_memory_index(self._client, self.collection)
                )
                if generation == self._memory_generation:
                    self._memory = loaded
        return self._memory

    async def close(self) -> None:
        """Release the client (and the embedded folder's lock)."""
        await self._client.close()
