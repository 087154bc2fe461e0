"""The book's Qdrant collection: embedded (local mode) or a server, with clear failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from bookchat.stores.connection import Location, tune_embedded_storage
from bookchat.stores.errors import (
    EmbedderMismatch,
    StoreUnavailable,
    VectorStoreError,
    timed_out,
    transport_error,
)
from bookchat.stores.identity import METADATA_KEY, IndexIdentity, mismatch_message, point_id

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
    from bookchat.providers.local_sparse import SparseVec
    from bookchat.stores.memory_index import DenseIndex, LexicalIndex

T = TypeVar("T")

DENSE = "dense"
SPARSE = "bm25"


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """What ingestion needs to know about a point already in the collection."""

    file: str
    position: int


@dataclass(slots=True)
class NewPoint:
    """A chunk ready to write: id, vectors and the payload a citation needs."""

    id: str
    payload: dict[str, Any]
    sparse: SparseVec
    dense: list[float] | None = None


@dataclass(slots=True)
class Hit:
    """One retrieved point with its payload and the vectors needed to score it for a reader."""

    payload: dict[str, Any]
    dense: list[float] | None = None
    sparse: tuple[list[int], list[float]] | None = None


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
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        limit = timeout if timeout is not None else self._timeout
        where = f"Qdrant at {self.location.host_port}"
        try:
            if self.embedded:
                # Local mode does its work in-process; a time limit would only abandon it.
                return await make()
            return await asyncio.wait_for(make(), timeout=limit + 1.0)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise timed_out(where, limit) from exc
        except ResponseHandlingException as exc:
            raise transport_error(exc.source, where, limit) from exc
        except httpx.TransportError as exc:
            raise transport_error(exc, where, limit) from exc
        except UnexpectedResponse as exc:
            if exc.status_code in (401, 403):
                raise StoreUnavailable(
                    f"{where} refused access (HTTP {exc.status_code}): check QDRANT_API_KEY"
                ) from exc
            raise VectorStoreError(
                f"{where} answered HTTP {exc.status_code} {exc.reason_phrase}".strip()
            ) from exc

    async def identity(self) -> IndexIdentity | None:
        """Which embedders built the collection; None when it does not exist yet."""
        exists = await self._call(lambda: self._client.collection_exists(self.collection))
        if not exists:
            return None
        info = await self._call(lambda: self._client.get_collection(self.collection))
        meta = (info.config.metadata or {}).get(METADATA_KEY)
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
        from qdrant_client import models

        if await self.check_identity(using):
            return
        vectors = {}
        if using.dense is not None:
            assert using.dense_dims is not None
            vectors[DENSE] = models.VectorParams(
                size=using.dense_dims, distance=models.Distance.COSINE
            )
        await self._call(
            lambda: self._client.create_collection(
                self.collection,
                vectors_config=vectors,
                # BM25's IDF comes from the collection, so weights stay valid as it grows.
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                metadata={METADATA_KEY: using.as_metadata()},
            ),
            timeout=max(self._timeout, 10.0),
        )
        if self.embedded:
            tune_embedded_storage(self._client, self.collection)

    async def stored_chunks(self) -> dict[str, StoredChunk]:
        """Every point id in the collection with its page and position."""
        out: dict[str, StoredChunk] = {}
        offset = None
        while True:
            points, offset = await self._call(
                lambda offset=offset: self._client.scroll(
                    self.collection,
                    limit=1000,
                    offset=offset,
                    with_payload=["file", "position"],
                    with_vectors=False,
                )
            )
            for p in points:
                payload = p.payload or {}
                out[str(p.id)] = StoredChunk(
                    file=str(payload.get("file", "")), position=int(payload.get("position", 0))
                )
            if offset is None:
                return out

    async def upsert(self, points: Sequence[NewPoint]) -> None:
        """Write points (same id: replaced)."""
        from qdrant_client import models

        structs = []
        for p in points:
            vector: dict[str, Any] = {
                SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values)
            }
            if p.dense is not None:
                vector[DENSE] = p.dense
            structs.append(models.PointStruct(id=p.id, vector=vector, payload=p.payload))
        self._memory = None
        await self._call(
            lambda: self._client.upsert(self.collection, points=structs, wait=True),
            timeout=max(self._timeout, 30.0),
        )

    async def delete(self, ids: Sequence[str]) -> None:
        """Remove points by id."""
        from qdrant_client import models

        if not ids:
            return
        self._memory = None
        await self._call(
            lambda: self._client.delete(
                self.collection, points_selector=models.PointIdsList(points=list(ids)), wait=True
            ),
            timeout=max(self._timeout, 30.0),
        )

    async def set_position(self, ids_positions: dict[str, int]) -> None:
        """Update the stored position of chunks whose text did not change but moved."""
        by_position: dict[int, list[str]] = {}
        for pid, position in ids_positions.items():
            by_position.setdefault(position, []).append(pid)
        for position, ids in by_position.items():
            await self._call(
                lambda ids=ids, position=position: self._client.set_payload(
                    self.collection, payload={"position": position}, points=ids, wait=True
                )
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
        sparse: SparseVec,
        dense: list[float] | None,
        limit: int,
        candidates: int,
    ) -> list[Hit]:
        """Hybrid search: BM25 and dense legs fused by reciprocal rank, or the one leg there is.

        Against a server, Qdrant's query API runs both legs and the fusion (prefetch + RRF).
        Embedded, the lexical leg comes from an in-memory index (see stores/lexical.py) and
        the fusion from qdrant-client's own RRF function, with the same results.
        """
        if not sparse.indices and dense is None:
            return []
        # The vectors come back so the reader-facing score can be a similarity, not a rank.
        with_vectors = [DENSE] if dense is not None else [SPARSE]
        if self.embedded and self.memory_index:
            points = await self._search_embedded(sparse, dense, limit, candidates, with_vectors)
        else:
            points = await self._search_query_api(sparse, dense, limit, candidates, with_vectors)
        hits = []
        for point in points:
            vectors = point.vector if isinstance(point.vector, dict) else {}
            dense_vec = vectors.get(DENSE)
            sparse_vec = vectors.get(SPARSE)
            hits.append(
                Hit(
                    payload=point.payload or {},
                    dense=list(dense_vec) if dense_vec is not None else None,  # type: ignore[arg-type]
                    sparse=(list(sparse_vec.indices), list(sparse_vec.values))
                    if sparse_vec is not None and hasattr(sparse_vec, "indices")
                    else None,
                )
            )
        return hits

    async def _search_query_api(
        self,
        sparse: SparseVec,
        dense: list[float] | None,
        limit: int,
        candidates: int,
        with_vectors: list[str],
    ) -> list[Any]:
        from qdrant_client import models

        legs: list[models.Prefetch] = []
        if sparse.indices:
            legs.append(
                models.Prefetch(
                    query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                    using=SPARSE,
                    limit=candidates,
                )
            )
        if dense is not None:
            legs.append(models.Prefetch(query=dense, using=DENSE, limit=candidates))
        if len(legs) == 1:
            leg = legs[0]
            call = lambda: self._client.query_points(  # noqa: E731
                self.collection,
                query=leg.query,
                using=leg.using,
                limit=limit,
                with_payload=True,
                with_vectors=with_vectors,
            )
        else:
            call = lambda: self._client.query_points(  # noqa: E731
                self.collection,
                prefetch=legs,
                query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=limit,
                with_payload=True,
                with_vectors=with_vectors,
            )
        return (await self._call(call)).points

    async def _search_embedded(
        self,
        sparse: SparseVec,
        dense: list[float] | None,
        limit: int,
        candidates: int,
        with_vectors: list[str],
    ) -> list[Any]:
        from qdrant_client import models
        from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

        lexical, dense_index = await self._memory_index()
        found: list[list[tuple[str, float]]] = []
        if sparse.indices:
            found.append(lexical.search(sparse.indices, sparse.values, candidates))
        if dense is not None and dense_index is not None:
            found.append(dense_index.search(dense, candidates))
        legs = [[models.ScoredPoint(id=i, version=0, score=s) for i, s in leg] for leg in found]
        if not legs:
            return []
        ranked = legs[0][:limit] if len(legs) == 1 else reciprocal_rank_fusion(legs, limit=limit)
        if not ranked:
            return []
        fetched = await self._client.retrieve(
            self.collection,
            ids=[p.id for p in ranked],
            with_payload=True,
            with_vectors=with_vectors,
        )
        by_id = {str(p.id): p for p in fetched}
        return [by_id[str(p.id)] for p in ranked if str(p.id) in by_id]

    async def warm(self) -> None:
        """Build the in-memory copies of an embedded collection now."""
        if self.embedded and self.memory_index:
            await self._memory_index()

    async def _memory_index(self) -> tuple[LexicalIndex, DenseIndex | None]:
        """The embedded collection's vectors in memory, loaded on first use after each write."""
        from bookchat.stores.memory_index import DenseIndex, LexicalIndex

        if self._memory is None:
            info = await self._client.get_collection(self.collection)
            vectors_config = info.config.params.vectors
            dims = (
                vectors_config[DENSE].size
                if isinstance(vectors_config, dict) and DENSE in vectors_config
                else None
            )
            ids: list[str] = []
            sparse: list[tuple[list[int], list[float]]] = []
            dense: list[list[float] | None] = []
            offset = None
            while True:
                points, offset = await self._client.scroll(
                    self.collection,
                    limit=2000,
                    offset=offset,
                    with_payload=False,
                    with_vectors=[SPARSE, DENSE] if dims else [SPARSE],
                )
                for p in points:
                    vectors = p.vector if isinstance(p.vector, dict) else {}
                    sv = vectors.get(SPARSE)
                    ids.append(str(p.id))
                    sparse.append(
                        (list(sv.indices), list(sv.values)) if sv is not None else ([], [])
                    )  # type: ignore[union-attr]
                    dense.append(vectors.get(DENSE))  # type: ignore[arg-type]
                if offset is None:
                    break
            self._memory = (
                LexicalIndex(ids, sparse),
                DenseIndex(ids, dense, dims) if dims else None,
            )
        return self._memory

    async def close(self) -> None:
        """Release the client (and the embedded folder's lock)."""
        await self._client.close()
