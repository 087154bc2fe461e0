"""Hybrid search: Qdrant's query API against a server, the in-memory copies when embedded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bookchat.stores.identity import DENSE, SPARSE

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

    from bookchat.stores.errors import Call
    from bookchat.stores.identity import SparseVector
    from bookchat.stores.memory_index import DenseIndex, LexicalIndex

    MemoryIndex = Callable[[], Awaitable[tuple[LexicalIndex, DenseIndex | None]]]


@dataclass(slots=True)
class Hit:
    """One retrieved point with its payload and the vectors needed to score it for a reader."""

    payload: dict[str, Any]
    dense: list[float] | None = None
    sparse: tuple[list[int], list[float]] | None = None


async def hybrid_search(
    *,
    client: AsyncQdrantClient,
    collection: str,
    call: Call,
    memory: MemoryIndex | None,
    sparse: SparseVector,
    dense: list[float] | None,
    limit: int,
    candidates: int,
) -> list[Hit]:
    """BM25 and dense legs fused by reciprocal rank, or the one leg there is.

    With `memory` (the in-memory copies' loader), the legs run in memory; else Qdrant's
    query API runs them.
    """
    if not sparse.indices and dense is None:
        return []
    # The vectors come back so the reader-facing score can be a similarity, not a rank.
    with_vectors = [DENSE] if dense is not None else [SPARSE]
    if memory is not None:
        points = await _search_embedded(
            client, collection, await memory(), sparse, dense, limit, candidates, with_vectors
        )
    else:
        points = await _search_query_api(
            client, collection, call, sparse, dense, limit, candidates, with_vectors
        )
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
    client: AsyncQdrantClient,
    collection: str,
    call: Call,
    sparse: SparseVector,
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
        run = lambda: client.query_points(  # noqa: E731
            collection,
            query=leg.query,
            using=leg.using,
            limit=limit,
            with_payload=True,
            with_vectors=with_vectors,
        )
    else:
        run = lambda: client.query_points(  # noqa: E731
            collection,
            prefetch=legs,
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=limit,
            with_payload=True,
            with_vectors=with_vectors,
        )
    return (await call(run)).points


async def _search_embedded(
    client: AsyncQdrantClient,
    collection: str,
    indexes: tuple[LexicalIndex, DenseIndex | None],
    sparse: SparseVector,
    dense: list[float] | None,
    limit: int,
    candidates: int,
    with_vectors: list[str],
) -> list[Any]:
    from qdrant_client import models
    from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

    lexical, dense_index = indexes
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
    fetched = await client.retrieve(
        collection,
        ids=[p.id for p in ranked],
        with_payload=True,
        with_vectors=with_vectors,
    )
    by_id = {str(p.id): p for p in fetched}
    return [by_id[str(p.id)] for p in ranked if str(p.id) in by_id]
