"""stores.embedded: the embedded folder's collection, served from its read snapshot and an
in-memory copy, written through local mode; the folder's lock, shared readers, and local mode
opened once and only when needed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bookchat.stores.embedded import EmbeddedVectorStore
from bookchat.stores.errors import StoreUnavailable
from bookchat.stores.snapshot import remove_snapshot, snapshot_is_fresh
from tests.stores.test_snapshot import COLLECTION, written
from tests.stores.test_vectors import IDENTITY, Sparse, new_point


async def test_opened_from_values_searches_what_was_written(tmp_path: Path) -> None:
    store = EmbeddedVectorStore.open(collection="book", path=tmp_path / "qdrant")
    try:
        assert store.embedded
        assert store.location.path == str(tmp_path / "qdrant")
        await store.ensure_collection(IDENTITY)
        await store.upsert([new_point("one.md", {7: 1.0}, [1.0, 0.0])])
        query = Sparse([7], [1.0])
        hits = await store.search(sparse=query, dense=[1.0, 0.0], limit=5, candidates=10)
        assert [h.payload["file"] for h in hits] == ["one.md"]
        # A write drops the in-memory copy: the next search sees the new point.
        await store.upsert([new_point("two.md", {7: 2.0}, [0.9, 0.1])])
        in_memory = await store.search(sparse=query, dense=[1.0, 0.0], limit=5, candidates=10)
        store.memory_index = False  # local mode's own search, for comparison
        local = await store.search(sparse=query, dense=[1.0, 0.0], limit=5, candidates=10)
        assert [h.payload["file"] for h in in_memory] == [h.payload["file"] for h in local]
        assert len(in_memory) == 2
        assert await store.count(exact=True) == 2
    finally:
        await store.close()


async def test_the_folder_stays_locked_while_a_reader_serves_the_snapshot(tmp_path: Path) -> None:
    folder = await written(tmp_path / "qdrant")
    reader = EmbeddedVectorStore.open(collection=COLLECTION, path=folder)
    try:
        assert reader._local is None
        # A writer (`bookchat ingest`) gets the clear sentence, not qdrant-client's.
        with pytest.raises(StoreUnavailable, match="in use by another bookchat process"):
            EmbeddedVectorStore.open(collection=COLLECTION, path=folder)
    finally:
        await reader.close()
    EmbeddedVectorStore.open(collection=COLLECTION, path=folder)._folder_lock.release()  # type: ignore[union-attr]


async def test_shared_readers_coexist_read_only_and_keep_a_writer_out(tmp_path: Path) -> None:
    folder = await written(tmp_path / "qdrant")
    readers = [
        EmbeddedVectorStore.open(collection=COLLECTION, path=folder, shared=True) for _ in "ab"
    ]
    try:
        assert [await reader.count() for reader in readers] == [3, 3]
        # What the page rankings are rebuilt from (rag/pages.py, per process): a read.
        assert len(await readers[1].chunk_headings(text=True, dense=True, sparse=True)) == 3
        with pytest.raises(StoreUnavailable, match="in use by another bookchat process"):
            EmbeddedVectorStore.open(collection=COLLECTION, path=folder)
        with pytest.raises(StoreUnavailable, match="read by several `bookchat serve` worker"):
            await readers[0].upsert([new_point("four.md", {7: 1.0}, [0.0, 1.0])])
        with pytest.raises(StoreUnavailable, match="read by several `bookchat serve` worker"):
            await readers[0].delete(["any"])
        assert snapshot_is_fresh(folder, COLLECTION)  # a refused write removes nothing
        assert [await reader.count() for reader in readers] == [3, 3]
    finally:
        for reader in readers:
            await reader.close()
    remove_snapshot(folder, COLLECTION)
    # A reader never writes, so it cannot make the snapshot again: it says so, locks nothing.
    with pytest.raises(StoreUnavailable, match="no fresh read snapshot"):
        EmbeddedVectorStore.open(collection=COLLECTION, path=folder, shared=True)
    EmbeddedVectorStore.open(collection=COLLECTION, path=folder)._folder_lock.release()  # type: ignore[union-attr]


async def test_callers_at_once_open_local_mode_once(tmp_path: Path) -> None:
    """A health check and start-up's ingest both reach an empty folder at start."""
    store = EmbeddedVectorStore.open(collection=COLLECTION, path=tmp_path / "qdrant")
    try:
        assert store._local is None  # nothing to read yet: local mode waits for a need
        counts = await asyncio.gather(*(store.count() for _ in range(5)), store.identity())
        assert counts == [0, 0, 0, 0, 0, None]
    finally:
        await store.close()
