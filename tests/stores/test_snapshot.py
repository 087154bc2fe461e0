"""stores.snapshot: the read snapshot an embedded collection's writer leaves behind, and when a
reader must not trust it (missing, stale, corrupt, another format, another collection)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import stat
from pathlib import Path

import pytest

from bookchat.stores import snapshot as snapshot_module
from bookchat.stores.embedded import EmbeddedVectorStore
from bookchat.stores.snapshot import (
    Snapshot,
    SnapshotUnusable,
    snapshot_is_fresh,
    snapshot_path,
    storage_token,
)
from tests.stores.test_vectors import IDENTITY, Sparse, new_point

COLLECTION = "book"
QUERY = {"sparse": Sparse([7], [1.0]), "dense": [1.0, 0.0], "limit": 5, "candidates": 10}


async def written(folder: Path) -> Path:
    """An embedded collection of three points, written (and closed) through EmbeddedVectorStore."""
    store = EmbeddedVectorStore.open(collection=COLLECTION, path=folder)
    try:
        await store.ensure_collection(IDENTITY)
        await store.upsert(
            [
                new_point("one.md", {7: 1.0, 8: 0.5}, [1.0, 0.0]),
                new_point("two.md", {7: 2.0}, [0.6, 0.8]),
                new_point("three.md", {9: 1.0}, None),
            ]
        )
    finally:
        await store.close()
    return folder


def files(hits) -> list[str]:
    return [h.payload["file"] for h in hits]


async def test_a_writer_leaves_a_snapshot_and_a_reader_serves_it_without_local_mode(
    tmp_path: Path,
) -> None:
    folder = await written(tmp_path / "qdrant")
    assert snapshot_path(folder, COLLECTION).is_file()
    store = EmbeddedVectorStore.open(collection=COLLECTION, path=folder)
    try:
        assert store._local is None  # local mode was not opened
        assert await store.identity() == IDENTITY
        assert await store.count() == 3
        assert {c.file for c in (await store.stored_chunks()).values()} == {
            "one.md",
            "two.md",
            "three.md",
        }
        fast = await store.search(**QUERY)
        lexical = await store.search(**{**QUERY, "dense": None})
        headings = await store.chunk_headings(text=True, dense=True, sparse=True)
        assert store._local is None
        # The same hits, payloads and vectors as local mode's own search and scroll.
        store.memory_index = False
        slow = await store.search(**QUERY)
        slow_lexical = await store.search(**{**QUERY, "dense": None})
        store._snapshot = None  # reads go to local mode (open now) from here
        # The snapshot's vectors are views of its arrays: compared as Python numbers.
        assert await store.chunk_headings(text=True, dense=True, sparse=True) == [
            dataclasses.replace(
                h,
                dense=None if h.dense is None else [float(x) for x in h.dense],
                sparse=None
                if h.sparse is None
                else ([int(i) for i in h.sparse[0]], [float(v) for v in h.sparse[1]]),
            )
            for h in headings
        ]
        assert all(h.sparse is not None and len(h.sparse[0]) for h in headings)
        [two] = [h.dense for h in headings if h.file == "two.md"]
        assert two is not None
        assert list(two) == [0.6, 0.8]
    finally:
        await store.close()
    assert sorted(files(fast)) == ["one.md", "two.md"]
    assert [(h.payload, h.dense, h.sparse) for h in fast] == [
        (h.payload, h.dense, h.sparse) for h in slow
    ]
    assert [(h.payload, h.sparse) for h in lexical] == [(h.payload, h.sparse) for h in slow_lexical]


async def test_a_write_removes_the_snapshot_first_and_closing_writes_a_fresh_one(
    tmp_path: Path,
) -> None:
    folder = await written(tmp_path / "qdrant")
    store = EmbeddedVectorStore.open(collection=COLLECTION, path=folder)
    try:
        await store.upsert([new_point("four.md", {7: 3.0}, [0.0, 1.0])])
        assert not snapshot_path(folder, COLLECTION).exists()
        await store.set_position({next(iter(await store.stored_chunks())): 5})
    finally:
        await store.close()
    reread = Snapshot.read(folder, COLLECTION)
    assert len(reread) == 4
    assert sorted(p["position"] for p in reread.payloads) == [0, 0, 0, 5]


async def test_a_write_that_bypasses_bookchat_makes_the_snapshot_stale(tmp_path: Path) -> None:
    from qdrant_client import AsyncQdrantClient

    folder = await written(tmp_path / "qdrant")
    before = Snapshot.read(folder, COLLECTION)
    # Another writer (qdrant-client itself, an older bookchat) changes one payload in place.
    client = AsyncQdrantClient(path=str(folder))
    try:
        await client.set_payload(COLLECTION, payload={"position": 1}, points=[before.ids[0]])
    finally:
        await client.close()
    with pytest.raises(SnapshotUnusable, match="stale"):
        Snapshot.read(folder, COLLECTION)
    assert not snapshot_is_fresh(folder, COLLECTION)
    store = EmbeddedVectorStore.open(collection=COLLECTION, path=folder)
    try:
        # Made again from local mode's files, without opening local mode.
        assert snapshot_is_fresh(folder, COLLECTION)
        assert store._local is None
        hits = await store.search(**QUERY)
        assert {h.payload["position"] for h in hits} == {0, 1}
    finally:
        await store.close()
    assert Snapshot.read(folder, COLLECTION).token != before.token


def claim_a_huge_payload(path: Path) -> None:
    """The description says the payloads are a terabyte long: refused before any read."""
    data = path.read_bytes()
    start = len(snapshot_module.MAGIC) + snapshot_module._HEAD.size
    length = snapshot_module._HEAD.unpack_from(data, len(snapshot_module.MAGIC))[1]
    description = json.loads(data[start : start + length])
    description["arrays"]["payloads"]["size"] = 2**40
    head = json.dumps(description).encode()
    path.write_bytes(
        snapshot_module.MAGIC
        + snapshot_module._HEAD.pack(snapshot_module.FORMAT, len(head))
        + head
        + data[start + length :]
    )


def corrupt_in_the_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 :] = b"\x00" * (len(data) - len(data) // 2)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.unlink(), "no snapshot"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "corrupt"),
        (lambda p: p.write_bytes(b"garbage"), "corrupt"),
        (corrupt_in_the_middle, "corrupt"),
        (claim_a_huge_payload, "payloads is cut short"),
        (
            lambda p: p.write_bytes(
                p.read_bytes().replace(
                    snapshot_module.MAGIC + b"\x01\x00\x00\x00",
                    snapshot_module.MAGIC + b"\x63\x00\x00\x00",
                    1,
                )
            ),
            "format 99",
        ),
    ],
    ids=["missing", "cut short", "garbage", "zeroed", "huge size", "another format"],
)
async def test_an_unusable_snapshot_is_made_again_from_local_modes_files(
    tmp_path: Path, damage, reason: str
) -> None:
    folder = await written(tmp_path / "qdrant")
    path = snapshot_path(folder, COLLECTION)
    damage(path)
    with pytest.raises(SnapshotUnusable, match=reason):
        Snapshot.read(folder, COLLECTION)
    store = EmbeddedVectorStore.open(collection=COLLECTION, path=folder)
    try:
        assert len(Snapshot.read(folder, COLLECTION)) == 3  # written again at once
        assert store._local is None
        assert sorted(files(await store.search(**QUERY))) == ["one.md", "two.md"]
    finally:
        await store.close()


async def test_a_snapshot_names_its_collection(tmp_path: Path) -> None:
    folder = await written(tmp_path / "qdrant")
    # Another collection's snapshot under this one's name is not this one's.
    (folder / "collection" / "other").mkdir()
    shutil.copy(
        folder / "collection" / COLLECTION / "storage.sqlite", folder / "collection" / "other"
    )
    shutil.copy(snapshot_path(folder, COLLECTION), snapshot_path(folder, "other"))
    with pytest.raises(SnapshotUnusable, match="corrupt"):
        Snapshot.read(folder, "other")
    with pytest.raises(SnapshotUnusable, match="no storage"):
        storage_token(folder, "absent")


async def test_a_read_only_folder_is_read_in_place_and_left_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = await written(tmp_path / "qdrant")
    reads: list[Path] = []
    read_storage = snapshot_module._read_storage

    def counted(where: Path, collection: str, **options: bool):  # type: ignore[no-untyped-def]
        reads.append(where)
        return read_storage(where, collection, **options)

    monkeypatch.setattr(snapshot_module, "_read_storage", counted)
    (folder / ".lock").unlink()  # as the image build leaves it
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        assert snapshot_is_fresh(folder, COLLECTION)
        store = EmbeddedVectorStore.open(collection=COLLECTION, path=folder)
        try:
            assert store._local is None
            assert store._folder_lock is None
            assert sorted(files(await store.search(**QUERY))) == ["one.md", "two.md"]
        finally:
            await store.close()
        # Judged servable and then opened: a storage nothing can change is hashed once.
        assert len(reads) == 1
        after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    finally:
        for p in [folder, *folder.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    assert after == before


async def test_the_same_points_give_the_same_bytes(tmp_path: Path) -> None:
    first = snapshot_path(await written(tmp_path / "a"), COLLECTION).read_bytes()
    second = snapshot_path(await written(tmp_path / "b"), COLLECTION).read_bytes()
    assert first == second
