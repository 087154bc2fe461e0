"""Which embedders built a collection, and the point ids that make ingestion idempotent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

METADATA_KEY = "bookchat_index"  # collection metadata entry holding the IndexIdentity
# Collection layout version: bump when point ids, payload or vector names change.
LAYOUT = 1
DENSE = "dense"  # named vectors of every point
SPARSE = "bm25"
POINT_NAMESPACE = uuid.UUID("6f1c44a4-4f52-4a43-9a59-3b8f6d0e6c1d")


def point_id(file: str, content_hash: str, title: str = "") -> str:
    """Deterministic id: the same chunk of the same page is always the same point.

    The title is part of it because it is part of what gets embedded.
    """
    return str(uuid.uuid5(POINT_NAMESPACE, f"{file}\n{title}\n{content_hash}"))


class SparseVector(Protocol):
    """A sparse vector as the lexical encoder makes it (providers/local_sparse.SparseVec)."""

    @property
    def indices(self) -> list[int]: ...

    @property
    def values(self) -> list[float]: ...


class Embedder(Protocol):
    """What a collection records of an embedder (providers' DenseEmbedder and Bm25Encoder)."""

    @property
    def name(self) -> str: ...


class DenseEmbedder(Embedder, Protocol):
    @property
    def dimensions(self) -> int: ...


@dataclass(frozen=True, slots=True)
class IndexIdentity:
    """Which embedders built a collection; queries must use the same ones."""

    dense: str | None  # e.g. "gemini:gemini-embedding-001", None for lexical only
    dense_dims: int | None
    sparse: str  # e.g. "bm25:v1"
    layout: int = LAYOUT

    @classmethod
    def of(cls, dense: DenseEmbedder | None, sparse: Embedder) -> IndexIdentity:
        """The identity a collection built by these embedders records."""
        return cls(
            dense=dense.name if dense else None,
            dense_dims=dense.dimensions if dense else None,
            sparse=sparse.name,
        )

    def label(self) -> str:
        """Human wording, e.g. "gemini:gemini-embedding-001 (768 dims) + bm25:v1"."""
        dense = (
            f"{self.dense} ({self.dense_dims} dims) + " if self.dense else "no dense embedder + "
        )
        return dense + self.sparse

    def as_metadata(self) -> dict[str, Any]:
        return {
            "dense": self.dense,
            "dense_dims": self.dense_dims,
            "sparse": self.sparse,
            "layout": self.layout,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> IndexIdentity:
        return cls(
            dense=meta.get("dense"),
            dense_dims=meta.get("dense_dims"),
            sparse=meta["sparse"],
            layout=meta.get("layout", 0),
        )


def mismatch_message(built: IndexIdentity, using: IndexIdentity, collection: str) -> str:
    """The one clear sentence for a collection built by other embedders."""
    if built.dense is None:
        fix = "BOOKCHAT_EMBEDDER=local without the static embedder installed"
    elif built.dense.startswith("gemini:"):
        fix = (
            f"BOOKCHAT_EMBEDDER=gemini with GEMINI_API_KEY, "
            f"GEMINI_EMBEDDING_MODEL={built.dense.removeprefix('gemini:')} and "
            f"BOOKCHAT_EMBEDDING_DIMENSIONS={built.dense_dims}"
        )
    else:
        fix = "BOOKCHAT_EMBEDDER=local"
    if built.layout != using.layout:
        return (
            f"Qdrant collection {collection!r} was built by another version of bookchat "
            f"(layout {built.layout}, this one writes {using.layout}): re-ingest into a new "
            "QDRANT_COLLECTION."
        )
    local = "local:"
    if (built.dense or "").startswith(local) and (using.dense or "").startswith(local):
        # Both are the offline embedder: its table changed (the name carries a fingerprint of
        # the files), typically with a bookchat upgrade. No setting brings the old vectors back.
        return (
            f"Qdrant collection {collection!r} was built with {built.label()}, an earlier table "
            f"of the offline embedder; this bookchat ships {using.dense}. Re-ingest the book "
            "into a new QDRANT_COLLECTION (or, for the embedded index, delete its folder and "
            "ingest again)."
        )
    return (
        f"Qdrant collection {collection!r} was built with {built.label()}; you are using "
        f"{using.label()}. Re-ingest into a new QDRANT_COLLECTION, or set {fix}."
    )
