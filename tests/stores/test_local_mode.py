"""stores.local_mode: qdrant-client's local mode on the embedded folder, used directly: the
calls the embedded store makes to write, and to read a collection with no read snapshot."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bookchat.stores.connection import LOCK_FILE, FolderLock
from bookchat.stores.errors import StoreUnavailable
from bookchat.stores.identity import METADATA_KEY
from bookchat.stores.local_mode import LocalMode
from tests.stores.test_vectors import IDENTITY, Sparse, new_point


async def test_writes_and_reads_one_collection_page_by_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bookchat.stores.local_mode.SCROLL_PAGE", 2)
    local = await asyncio.to_thread(LocalMode.open, tmp_path, "book")
    try:
        assert await local.metadata() is None
        assert await local.count(exact=True) == 0
        await local.create(IDENTITY)
        assert await local.metadata() == {METADATA_KEY: IDENTITY.as_metadata()}
        points = [new_point(f"p{i}.md", {i: 1.0, 9: 0.5}, [1.0, float(i)]) for i in range(5)]
        await local.upsert(points)
        await local.set_payload({"position": 7}, [points[0].id])
        await local.delete([points[4].id])
        assert await local.count(exact=True) == 4
        scrolled = [p async for p in local.scroll(["file", "position"], ["bm25"])]
        assert sorted(p["file"] for _, p, _ in scrolled) == ["p0.md", "p1.md", "p2.md", "p3.md"]
        by_id = {pid: (payload, named) for pid, payload, named in scrolled}
        payload, named = by_id[points[0].id]
        assert payload == {"file": "p0.md", "position": 7}
        assert named == {"bm25": ([0, 9], [1.0, 0.5])}  # a pair, as every backend gives it
        [hit] = await local.query(sparse=Sparse([2], [1.0]), dense=None, limit=3, candidates=5)
        assert (hit.payload["file"], hit.sparse, hit.dense) == ("p2.md", ([2, 9], [1.0, 0.5]), None)
        fused = await local.query(
            sparse=Sparse([3], [1.0]), dense=[0.0, 1.0], limit=2, candidates=5
        )
        assert fused[0].payload["file"] == "p3.md"
        assert fused[0].dense is not None
        assert fused[0].sparse is None
    finally:
        await local.close()
    # The storage was tuned when the collection was made: WAL, kept in the file itself.
    storage = sqlite3.connect(tmp_path / "collection" / "book" / "storage.sqlite")
    try:
        assert storage.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        storage.close()


def test_a_folder_another_process_holds_is_in_use(tmp_path: Path) -> None:
    holder = FolderLock(tmp_path / LOCK_FILE)  # as a reader's store holds it
    assert holder.acquire()
    try:
        with pytest.raises(StoreUnavailable, match="in use by another bookchat process"):
            LocalMode.open(tmp_path, "book")
    finally:
        holder.release()
    asyncio.run(LocalMode.open(tmp_path, "book").close())
