"""VectorStore from values (no Settings), and its in-memory copy against local mode's search."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from bookchat.stores.identity import IndexIdentity, point_id
from bookchat.stores.memory_index import MemoryIndex
from bookchat.stores.vectors import NewPoint, VectorStore


@dataclass
class Sparse:
    indices: list[int]
    values: list[float]


IDENTITY = IndexIdentity(dense="test:2d", dense_dims=2, sparse="bm25:v1")


def new_point(name: str, terms: dict[int, float], dense: list[float] | None) -> NewPoint:
    return NewPoint(
        id=point_id(name, "hash"),
        payload={"file": name, "position": 0},
        sparse=Sparse(list(terms), list(terms.values())),
        dense=dense,
    )


def test_lexical_scores_are_qdrants_bm25_and_only_shared_terms_match() -> None:
    index = MemoryIndex(
        ["a", "b", "c"],
        [([1, 2], [1.0, 2.0]), ([2], [3.0]), ([], [])],
        [None, None, None],
        None,
    )
    n = 2  # "c" has an empty sparse vector: it does not count as having one
    idf1 = math.log((n - 1 + 0.5) / (1 + 0.5) + 1)
    idf2 = math.log((n - 2 + 0.5) / (2 + 0.5) + 1)
    found = dict(index.lexical([1, 2], [1.0, 1.0], 10))
    assert set(found) == {"a", "b"}
    assert found["a"] == pytest.approx(1.0 * idf1 + 2.0 * idf2)
    assert found["b"] == pytest.approx(3.0 * idf2)
    assert index.lexical([9], [1.0], 10) == []
    assert not index.has_dense


def test_dense_is_cosine_over_the_points_that_have_a_vector() -> None:
    index = MemoryIndex(
        ["a", "b", "c"],
        [([1], [1.0])] * 3,
        [[2.0, 0.0], None, [1.0, 1.0]],
        2,
    )
    found = index.dense([0.0, 3.0], 10)
    assert [i for i, _ in found] == ["c", "a"]
    assert found[0][1] == pytest.approx(1 / math.sqrt(2))
    assert found[1][1] == pytest.approx(0.0)


async def test_opened_from_values_searches_what_was_written(tmp_path: Path) -> None:
    store = VectorStore.open(collection="book", path=tmp_path / "qdrant")
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


async def test_a_server_url_is_a_server_location_without_its_key(tmp_path: Path) -> None:
    store = VectorStore.open(
        collection="book",
        path=tmp_path / "unused",
        url="https://user:secret@qdrant.example:443",
        api_key="key-123",
    )
    try:
        assert not store.embedded
        assert store.location.host_port == "qdrant.example:443"
        assert "secret" not in (store.location.url or "")
        assert not (tmp_path / "unused").exists()
    finally:
        await store.close()


async def test_chunk_headings_bring_text_and_vectors_only_when_asked(tmp_path: Path) -> None:
    store = VectorStore.open(collection="book", path=tmp_path / "qdrant")
    try:
        await store.ensure_collection(IDENTITY)
        point = new_point("one.md", {7: 1.0}, [0.6, 0.8])
        point.payload.update(title="One", heading="Setup", text="Install it.")
        await store.upsert([point])
        [plain] = await store.chunk_headings()
        assert (plain.file, plain.title, plain.heading) == ("one.md", "One", "Setup")
        assert (plain.text, plain.dense) == ("", None)
        [full] = await store.chunk_headings(text=True, dense=True)
        assert full.text == "Install it."
        assert full.dense == pytest.approx([0.6, 0.8])
        assert full.sparse is None
        [weights] = await store.chunk_headings(sparse=True)
        assert weights.sparse == ([7], [1.0])
    finally:
        await store.close()
