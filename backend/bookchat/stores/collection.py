"""The collection's layout: creating it for a set of embedders and reading which built it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bookchat.stores.connection import tune_embedded_storage
from bookchat.stores.errors import EmbedderMismatch, VectorStoreError
from bookchat.stores.identity import DENSE, METADATA_KEY, SPARSE, IndexIdentity, mismatch_message

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

    from bookchat.stores.errors import Call


async def read_identity(
    *, client: AsyncQdrantClient, collection: str, call: Call
) -> IndexIdentity | None:
    """Which embedders built the collection; None when it does not exist yet."""
    exists = await call(lambda: client.collection_exists(collection))
    if not exists:
        return None
    info = await call(lambda: client.get_collection(collection))
    meta = (info.config.metadata or {}).get(METADATA_KEY)
    if not meta:
        raise VectorStoreError(
            f"Qdrant collection {collection!r} was not created by bookchat (it has no "
            f"{METADATA_KEY!r} metadata): choose another QDRANT_COLLECTION."
        )
    return IndexIdentity.from_metadata(meta)


async def check_identity(
    *, client: AsyncQdrantClient, collection: str, call: Call, using: IndexIdentity
) -> bool:
    """Raise EmbedderMismatch if the collection was built otherwise; False if it is absent."""
    built = await read_identity(client=client, collection=collection, call=call)
    if built is None:
        return False
    if built != using:
        raise EmbedderMismatch(mismatch_message(built, using, collection))
    return True


async def create_collection(
    *,
    client: AsyncQdrantClient,
    collection: str,
    call: Call,
    using: IndexIdentity,
    timeout: float,
    embedded: bool,
) -> None:
    """Create the collection with the named vectors and metadata these embedders need."""
    from qdrant_client import models

    vectors = {}
    if using.dense is not None:
        assert using.dense_dims is not None
        vectors[DENSE] = models.VectorParams(size=using.dense_dims, distance=models.Distance.COSINE)
    await call(
        lambda: client.create_collection(
            collection,
            vectors_config=vectors,
            # BM25's IDF comes from the collection, so weights stay valid as it grows.
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={METADATA_KEY: using.as_metadata()},
        ),
        timeout=timeout,
    )
    if embedded:
        tune_embedded_storage(client, collection)
