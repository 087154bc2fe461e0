"""stores.vectors: what every VectorStore does the same, against both adapters: the embedded
folder (stores/embedded.py) and a Qdrant server over REST (stores/qdrant_http.py, the fake)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bookchat.stores.embedded import EmbeddedVectorStore
from bookchat.stores.errors import EmbedderMismatch
from bookchat.stores.identity import IndexIdentity, point_id
from bookchat.stores.qdrant_http import ServerVectorStore
from bookchat.stores.vectors import NewPoint, VectorStore
from tests.fakes.qdrant import FakeQdrant


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


@pytest.fixture(params=["embedded", "server"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    if request.param == "embedded":
        opened: VectorStore = EmbeddedVectorStore.open(collection="book", path=tmp_path / "qdrant")
    else:
        fake: FakeQdrant = request.getfixturevalue("fake_qdrant")
        opened = ServerVectorStore.open(url=fake.url, collection="book")
    assert opened.embedded is (request.param == "embedded")
    yield opened
    await opened.close()


async def test_chunk_headings_bring_text_and_vectors_only_when_asked(store: VectorStore) -> None:
    await store.ensure_collection(IDENTITY)
    point = new_point("one.md", {7: 1.0}, [0.6, 0.8])
    point.payload.update(title="One", heading="Setup", text="Install it.")
    await store.upsert([point])
    [plain] = await store.chunk_headings()
    assert (plain.file, plain.title, plain.heading) == ("one.md", "One", "Setup")
    assert (plain.text, plain.dense, plain.sparse) == ("", None, None)
    [full] = await store.chunk_headings(text=True, dense=True)
    assert full.text == "Install it."
    assert list(full.dense or []) == pytest.approx([0.6, 0.8])
    assert full.sparse is None
    [weights] = await store.chunk_headings(sparse=True)
    assert weights.sparse == ([7], [1.0])
    assert weights.dense is None


async def test_identity_comes_from_the_collection_and_another_is_a_mismatch(
    store: VectorStore,
) -> None:
    assert await store.identity() is None
    assert await store.check_identity(IDENTITY) is False
    await store.ensure_collection(IDENTITY)
    assert await store.identity() == IDENTITY
    other = IndexIdentity(dense=None, dense_dims=None, sparse="bm25:v1")
    with pytest.raises(EmbedderMismatch):
        await store.ensure_collection(other)
    assert await store.check_identity(IDENTITY) is True


async def test_every_write_bumps_the_generation_and_a_noop_does_not(store: VectorStore) -> None:
    await store.ensure_collection(IDENTITY)
    point = new_point("one.md", {7: 1.0}, [1.0, 0.0])
    start = store.generation
    await store.upsert([point])
    await store.set_position({point.id: 3})
    await store.delete([point.id])
    assert store.generation == start + 3
    await store.delete([])
    await store.set_position({})
    assert store.generation == start + 3
    assert await store.count(exact=True) == 0


async def test_a_search_with_no_leg_finds_nothing(store: VectorStore) -> None:
    await store.ensure_collection(IDENTITY)
    await store.upsert([new_point("one.md", {7: 1.0}, [1.0, 0.0])])
    assert await store.search(sparse=Sparse([], []), dense=None, limit=5, candidates=10) == []
    [hit] = await store.search(sparse=Sparse([7], [1.0]), dense=None, limit=5, candidates=10)
    assert (hit.payload["file"], hit.sparse, hit.dense) == ("one.md", ([7], [1.0]), None)
