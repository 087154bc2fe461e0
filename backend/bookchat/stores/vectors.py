"""The book's Qdrant collection as rag/ and ingest/ use it: VectorStore and what it returns.

Two adapters implement it, each with its own module: a Qdrant server over its REST API
(stores/qdrant_http.py, ServerVectorStore) and embedded Qdrant in a folder (stores/embedded.py,
EmbeddedVectorStore: a read snapshot and an in-memory copy to serve, qdrant-client's local mode
to write). backends.open_vector_store chooses between them; nothing else does. Failures are the
errors of stores/errors.py (StoreUnavailable, VectorStoreError, EmbedderMismatch), each one
sentence naming where and what to do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bookchat.stores.errors import EmbedderMismatch, VectorStoreError
from bookchat.stores.identity import (
    DENSE,
    METADATA_KEY,
    SPARSE,
    IndexIdentity,
    mismatch_message,
)

if TYPE_CHECKING:
    from bookchat.stores.connection import Location
    from bookchat.stores.identity import SparseVector

SCROLL_PAGE = 1000  # points per scroll call when reading what a collection holds

# What a scroll yields for a point: its id, its payload (the fields asked for) and its named
# vectors asked for: DENSE as a sequence of floats, SPARSE as (indices, values).
ScrolledPoint = tuple[str, dict[str, Any], dict[str, Any]]


@dataclass(slots=True)
class Hit:
    """One retrieved point with its payload and the vectors needed to score it for a reader."""

    payload: dict[str, Any]
    dense: list[float] | None = None
    sparse: tuple[list[int], list[float]] | None = None


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """What ingestion needs to know about a point already in the collection."""

    file: str
    position: int


@dataclass(frozen=True, slots=True)
class ChunkHeading:
    """Where a stored chunk sits in the book: its page, the page's title and its heading path;
    its text, dense vector and BM25 weights when asked for (the page rankings of rag/pages.py)."""

    file: str
    title: str
    heading: str
    version: str | None
    plugin: str | None
    text: str = ""
    # Lists (server, local mode) or numpy views (of the read snapshot's arrays, not copied).
    dense: Sequence[float] | None = None
    sparse: tuple[Sequence[int], Sequence[float]] | None = None


@dataclass(slots=True)
class NewPoint:
    """A chunk ready to write: id, vectors and the payload a citation needs."""

    id: str
    payload: dict[str, Any]
    sparse: SparseVector
    dense: list[float] | None = None


class VectorStore(ABC):
    """One Qdrant collection of book chunks, named vectors "dense" and "bm25".

    What every backend shares lives here: reading the embedders' identity from the collection's
    metadata, turning scrolled points into StoredChunk and ChunkHeading, marking each write
    before it starts (`_wrote`), and refusing a search with no leg. An adapter supplies the
    collection's metadata, a scroll, the writes and the search.
    """

    def __init__(self, *, collection: str, location: Location) -> None:
        self.collection = collection
        self.location = location
        self._generation = 0  # bumped by every write

    @property
    def embedded(self) -> bool:
        return self.location.backend == "embedded"

    @property
    def generation(self) -> int:
        """Bumped by every write through this store: what was derived from the points is stale."""
        return self._generation

    def _wrote(self) -> None:
        """Called before every write starts: what was derived from the points is stale."""
        self._generation += 1

    # The collection and which embedders built it.

    @abstractmethod
    async def _metadata(self) -> dict[str, Any] | None:
        """The collection's metadata ({} when it has none); None when it does not exist."""

    async def identity(self) -> IndexIdentity | None:
        """Which embedders built the collection; None when it does not exist yet."""
        meta = await self._metadata()
        if meta is None:
            return None
        meta = meta.get(METADATA_KEY)
        if not meta:
            raise VectorStoreError(
                f"Qdrant collection {self.collection!r} was not created by bookchat (it has no "
                f"{METADATA_KEY!r} metadata): choose another QDRANT_COLLECTION."
            )
        return IndexIdentity.from_metadata(meta)

    async def check_identity(self, using: IndexIdentity) -> bool:
        """Raise EmbedderMismatch if the collection was built otherwise; False if it is absent."""
        built = await self.identity()
        if built is None:
            return False
        if built != using:
            raise EmbedderMismatch(mismatch_message(built, using, self.collection))
        return True

    async def ensure_collection(self, using: IndexIdentity) -> None:
        """Create the collection for these embedders, or check that it was built with them."""
        if await self.check_identity(using):
            return
        await self._create(using)

    @abstractmethod
    async def _create(self, using: IndexIdentity) -> None:
        """Create the collection: "dense" (cosine) when `using` has a dense embedder, "bm25"
        with IDF (so BM25 weights stay valid as the collection grows), `using` as metadata."""

    @abstractmethod
    async def count(self, *, exact: bool = False, timeout: float | None = None) -> int:
        """Number of points (0 when the collection does not exist)."""

    # Ingestion's reads and writes.

    @abstractmethod
    def _scroll(
        self, fields: list[str], vectors: list[str] | None = None
    ) -> AsyncIterator[ScrolledPoint]:
        """Every point with its payload `fields` and named `vectors` (see ScrolledPoint)."""

    async def stored_chunks(self) -> dict[str, StoredChunk]:
        """Every point id in the collection with its page and position."""
        return {
            pid: StoredChunk(file=str(p.get("file", "")), position=int(p.get("position", 0)))
            async for pid, p, _ in self._scroll(["file", "position"])
        }

    async def chunk_headings(
        self, *, text: bool = False, dense: bool = False, sparse: bool = False
    ) -> list[ChunkHeading]:
        """The page, title and heading path of every point (what page outlines are built from),
        with its text, its dense vector and its BM25 weights when asked."""

        def optional(value: Any) -> str | None:
            return None if value is None else str(value)

        fields = ["file", "title", "heading", "version", "plugin", *(["text"] if text else [])]
        vectors = [*([DENSE] if dense else []), *([SPARSE] if sparse else [])]
        return [
            ChunkHeading(
                file=str(p.get("file", "")),
                title=str(p.get("title", "")),
                heading=str(p.get("heading", "")),
                version=optional(p.get("version")),
                plugin=optional(p.get("plugin")),
                text=str(p.get("text", "")),
                dense=v.get(DENSE),
                sparse=v.get(SPARSE),
            )
            async for _, p, v in self._scroll(fields, vectors or None)
        ]

    async def upsert(self, points: Sequence[NewPoint]) -> None:
        """Write points (same id: replaced)."""
        self._wrote()
        await self._upsert(points)

    async def delete(self, ids: Sequence[str]) -> None:
        """Remove points by id."""
        if not ids:
            return
        self._wrote()
        await self._delete(ids)

    async def set_position(self, ids_positions: dict[str, int]) -> None:
        """Update the stored position of chunks whose text did not change but moved."""
        by_position: dict[int, list[str]] = {}
        for pid, position in ids_positions.items():
            by_position.setdefault(position, []).append(pid)
        if not by_position:
            return
        self._wrote()
        await self._set_positions(by_position)

    @abstractmethod
    async def _upsert(self, points: Sequence[NewPoint]) -> None: ...

    @abstractmethod
    async def _delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    async def _set_positions(self, by_position: dict[int, list[str]]) -> None:
        """Set the payload field "position" to each key on the points listed under it."""

    # Search.

    async def search(
        self,
        *,
        sparse: SparseVector,
        dense: list[float] | None,
        limit: int,
        candidates: int,
    ) -> list[Hit]:
        """Hybrid search: BM25 and dense legs (`candidates` each) fused by reciprocal rank, or
        the one leg there is. A hit carries the dense vector when there is a dense leg, else
        the BM25 weights: the reader-facing score is a similarity, not a rank."""
        if not sparse.indices and dense is None:
            return []
        return await self._search(sparse=sparse, dense=dense, limit=limit, candidates=candidates)

    @abstractmethod
    async def _search(
        self, *, sparse: SparseVector, dense: list[float] | None, limit: int, candidates: int
    ) -> list[Hit]: ...

    async def warm(self) -> None:
        """Load now what the first search would (embedded: its in-memory copy)."""
        return  # a server has nothing to load

    @abstractmethod
    async def close(self) -> None:
        """Release the client and whatever the store holds."""
