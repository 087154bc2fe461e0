"""Ingestion's reads and writes of points: list what is stored, upsert, delete, move."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bookchat.stores.identity import DENSE, SPARSE

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

    from bookchat.stores.errors import Call
    from bookchat.stores.identity import SparseVector


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
    sparse: SparseVector
    dense: list[float] | None = None


async def stored_chunks(
    *, client: AsyncQdrantClient, collection: str, call: Call
) -> dict[str, StoredChunk]:
    """Every point id in the collection with its page and position."""
    out: dict[str, StoredChunk] = {}
    offset = None
    while True:
        points, offset = await call(
            lambda offset=offset: client.scroll(
                collection,
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


async def upsert_points(
    *,
    client: AsyncQdrantClient,
    collection: str,
    call: Call,
    points: Sequence[NewPoint],
    timeout: float,
) -> None:
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
    await call(
        lambda: client.upsert(collection, points=structs, wait=True),
        timeout=timeout,
    )


async def delete_points(
    *, client: AsyncQdrantClient, collection: str, call: Call, ids: Sequence[str], timeout: float
) -> None:
    """Remove points by id."""
    from qdrant_client import models

    await call(
        lambda: client.delete(
            collection, points_selector=models.PointIdsList(points=list(ids)), wait=True
        ),
        timeout=timeout,
    )


async def set_positions(
    *, client: AsyncQdrantClient, collection: str, call: Call, ids_positions: dict[str, int]
) -> None:
    """Update the stored position of chunks whose text did not change but moved."""
    by_position: dict[int, list[str]] = {}
    for pid, position in ids_positions.items():
        by_position.setdefault(position, []).append(pid)
    for position, ids in by_position.items():
        await call(
            lambda ids=ids, position=position: client.set_payload(
                collection, payload={"position": position}, points=ids, wait=True
            )
        )
