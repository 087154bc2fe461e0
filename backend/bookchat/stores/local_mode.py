"""qdrant-client's local mode on the embedded folder: the only module that imports qdrant-client.

Local mode unpickles every point into pydantic models when it opens, and importing qdrant-client
loads its REST models and gRPC (40 MiB, a third of start-up; backend/docs/benchmarks.md), so the
embedded store (stores/embedded.py) imports this module only when it must write, or read a
collection that has no read snapshot yet. Local mode does its work in-process: no call here is
time-limited (a limit would only abandon it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from bookchat.stores.connection import LOCK_FILE, cannot_open, folder_in_use, locked
from bookchat.stores.identity import DENSE, METADATA_KEY, SPARSE, IndexIdentity, SparseVector
from bookchat.stores.vectors import SCROLL_PAGE, Hit, NewPoint, ScrolledPoint


class LocalMode:
    """One collection in the embedded folder, through qdrant-client's local mode."""

    def __init__(self, client: AsyncQdrantClient, collection: str) -> None:
        self._client = client
        self.collection = collection

    @classmethod
    def open(cls, folder: Path, collection: str) -> LocalMode:
        """Open local mode in `folder` (it reads and unpickles every point). Blocking.

        The caller holds no lock on the folder: local mode takes the same one, and an flock is
        per open file, even in one process."""
        try:
            # Probe the lock first: when qdrant-client finds it taken, it leaks the file.
            if locked(folder / LOCK_FILE):
                raise folder_in_use(folder)
            # Opened in a worker thread (it reads every point) and used from the event loop
            # afterwards, never from two threads at once: where SQLite is built to refuse
            # a connection another thread opened (macOS), that check has to be off.
            client = AsyncQdrantClient(path=str(folder), force_disable_check_same_thread=True)
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            raise folder_in_use(folder) from None
        except OSError as exc:
            raise cannot_open(folder, exc) from None
        local = cls(client, collection)
        local._tune_storage()
        return local

    def _tune_storage(self) -> None:
        """WAL journal for local mode's SQLite file: it commits every point on its own, and with
        the default journal each commit waits for the disk (20 of 26 s when ingesting 2,000
        chunks here; 4 s with WAL). With synchronous=NORMAL a power cut can lose the last
        commits but never corrupts the file, and ingestion is idempotent: re-run it.
        Reaches into qdrant-client's local mode; if that changes, ingestion is only slower."""
        local = getattr(self._client, "_client", None)
        entry = getattr(local, "collections", {}).get(self.collection)
        connection = getattr(getattr(entry, "storage", None), "storage", None)
        if isinstance(connection, sqlite3.Connection):
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")

    async def close(self) -> None:
        await self._client.close()

    async def metadata(self) -> dict[str, Any] | None:
        """The collection's metadata ({} when it has none); None when it does not exist."""
        if not await self._client.collection_exists(self.collection):
            return None
        info = await self._client.get_collection(self.collection)
        return info.config.metadata or {}

    async def count(self, *, exact: bool) -> int:
        """Number of points (0 when the collection does not exist)."""
        if not await self._client.collection_exists(self.collection):
            return 0
        return (await self._client.count(self.collection, exact=exact)).count

    async def create(self, using: IndexIdentity) -> None:
        """Create the collection for these embedders (see VectorStore._create)."""
        vectors = {}
        if using.dense is not None:
            assert using.dense_dims is not None
            vectors[DENSE] = models.VectorParams(
                size=using.dense_dims, distance=models.Distance.COSINE
            )
        await self._client.create_collection(
            self.collection,
            vectors_config=vectors,
            # BM25's IDF comes from the collection, so weights stay valid as it grows.
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={METADATA_KEY: using.as_metadata()},
        )
        self._tune_storage()

    async def scroll(
        self, fields: list[str], vectors: list[str] | None = None
    ) -> AsyncIterator[ScrolledPoint]:
        """Every point with its payload `fields` and named `vectors`, SCROLL_PAGE per call."""
        offset = None
        while True:
            points, offset = await self._client.scroll(
                self.collection,
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=fields,
                with_vectors=vectors or False,
            )
            for p in points:
                named = dict(p.vector) if isinstance(p.vector, dict) else {}
                if isinstance(weights := named.get(SPARSE), models.SparseVector):
                    named[SPARSE] = (list(weights.indices), list(weights.values))
                yield str(p.id), p.payload or {}, named
            if offset is None:
                return

    async def upsert(self, points: Sequence[NewPoint]) -> None:
        """Write points (same id: replaced), once applied."""
        structs = []
        for p in points:
            vector: dict[str, Any] = {
                SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values)
            }
            if p.dense is not None:
                vector[DENSE] = p.dense
            structs.append(models.PointStruct(id=p.id, vector=vector, payload=p.payload))
        await self._client.upsert(self.collection, points=structs, wait=True)

    async def delete(self, ids: Sequence[str]) -> None:
        """Remove points by id."""
        selector = models.PointIdsList(points=list(ids))
        await self._client.delete(self.collection, points_selector=selector, wait=True)

    async def set_payload(self, payload: dict[str, Any], ids: Sequence[str]) -> None:
        """Merge `payload` into these points' payloads."""
        await self._client.set_payload(
            self.collection, payload=payload, points=list(ids), wait=True
        )

    async def query(
        self, *, sparse: SparseVector, dense: list[float] | None, limit: int, candidates: int
    ) -> list[Hit]:
        """Hybrid search with local mode's query API (one leg queried directly, two prefetched
        and fused by RRF): what the embedded store's in-memory search is compared with."""
        legs: list[models.Prefetch] = []
        if sparse.indices:
            query = models.SparseVector(indices=sparse.indices, values=sparse.values)
            legs.append(models.Prefetch(query=query, using=SPARSE, limit=candidates))
        if dense is not None:
            legs.append(models.Prefetch(query=dense, using=DENSE, limit=candidates))
        shape: dict[str, Any] = (
            {"query": legs[0].query, "using": legs[0].using}
            if len(legs) == 1
            else {"prefetch": legs, "query": models.FusionQuery(fusion=models.Fusion.RRF)}
        )
        result = await self._client.query_points(
            self.collection,
            limit=limit,
            with_payload=True,
            # The vectors come back so the reader-facing score can be a similarity, not a rank.
            with_vectors=[DENSE] if dense is not None else [SPARSE],
            **shape,
        )
        return [_hit(point) for point in result.points]


def _hit(point: models.ScoredPoint) -> Hit:
    """A Hit from a ScoredPoint with its named vectors."""
    vectors = point.vector if isinstance(point.vector, dict) else {}
    dense_vec = vectors.get(DENSE)
    sparse_vec = vectors.get(SPARSE)
    return Hit(
        payload=point.payload or {},
        dense=list(dense_vec) if dense_vec is not None else None,
        sparse=(list(sparse_vec.indices), list(sparse_vec.values))
        if sparse_vec is not None and hasattr(sparse_vec, "indices")
        else None,
    )
