"""Idempotent ingestion into embedded Qdrant: unchanged, changed, deleted pages; mismatches."""

from __future__ import annotations

import pytest

from bookchat.ingest.indexer import ingest
from bookchat.ingest.model import ChunkedBook
from bookchat.providers.local_sparse import Bm25Encoder
from bookchat.stores.errors import EmbedderMismatch
from bookchat.stores.identity import point_id
from bookchat.stores.vectors import VectorStore
from tests.books import CountingEmbedder, make_chunk

PAGES = {
    "motors.md": ["Brushed motors are cheap.", "Stepper motors hold position."],
    "odometry.md": ["Encoders count wheel ticks.", "Odometry drifts over time."],
    "planning.md": ["A* searches the occupancy grid."],
}


def book(pages: dict[str, list[str]]) -> ChunkedBook:
    chunks = [
        make_chunk(file, text, title=file.removesuffix(".md").title(), position=i)
        for file, texts in pages.items()
        for i, text in enumerate(texts)
    ]
    return ChunkedBook(chunks=chunks, pages=len(pages))


class WriteSpy:
    """Counts the store's write calls."""

    def __init__(self, store: VectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("upsert", "delete", "set_position", "ensure_collection"):
            original = getattr(store, name)

            async def spy(*args, _name=name, _original=original, **kwargs):
                if _name != "ensure_collection" and (args and not args[0]):
                    return await _original(*args, **kwargs)  # an empty delete writes nothing
                self.calls.append(_name)
                return await _original(*args, **kwargs)

            monkeypatch.setattr(store, name, spy)

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if c != "ensure_collection"]


async def stored_files(store: VectorStore) -> dict[str, int]:
    counts: dict[str, int] = {}
    for chunk in (await store.stored_chunks()).values():
        counts[chunk.file] = counts.get(chunk.file, 0) + 1
    return counts


async def test_first_ingest_then_no_change(store: VectorStore, monkeypatch: pytest.MonkeyPatch):
    dense = CountingEmbedder()
    first = await ingest(chunked_book=book(PAGES), store=store, dense=dense, sparse=Bm25Encoder())
    assert (first.files, first.chunks, first.embedded, first.unchanged, first.deleted) == (
        3,
        5,
        5,
        0,
        0,
    )
    assert len(dense.documents) == 5
    # What gets embedded carries the title and heading; the payload keeps the text alone.
    assert dense.documents[0].startswith("Motors\n")

    spy = WriteSpy(store, monkeypatch)
    again = await ingest(chunked_book=book(PAGES), store=store, dense=dense, sparse=Bm25Encoder())
    assert (again.embedded, again.unchanged, again.deleted) == (0, 5, 0)
    assert len(dense.documents) == 5  # nothing re-embedded
    assert spy.writes == []  # nothing re-written
    assert await stored_files(store) == {"motors.md": 2, "odometry.md": 2, "planning.md": 1}


async def test_changed_page_replaces_its_chunks(store: VectorStore):
    dense = CountingEmbedder()
    await ingest(chunked_book=book(PAGES), store=store, dense=dense, sparse=Bm25Encoder())
    changed = dict(PAGES, **{"odometry.md": ["Encoders count wheel ticks.", "IMU fusion helps."]})
    report = await ingest(
        chunked_book=book(changed), store=store, dense=dense, sparse=Bm25Encoder()
    )
    assert (report.embedded, report.unchanged, report.deleted) == (1, 4, 1)
    assert dense.documents[-1].endswith("IMU fusion helps.")
    stored = await store.stored_chunks()
    old = make_chunk("odometry.md", "Odometry drifts over time.", title="Odometry", position=1)
    new = make_chunk("odometry.md", "IMU fusion helps.", title="Odometry", position=1)
    assert point_id(old.file, old.content_hash, old.title) not in stored
    assert point_id(new.file, new.content_hash, new.title) in stored
    assert len(stored) == 5


async def test_deleted_page_is_removed(store: VectorStore):
    await ingest(chunked_book=book(PAGES), store=store, dense=None, sparse=Bm25Encoder())
    remaining = {k: v for k, v in PAGES.items() if k != "motors.md"}
    report = await ingest(
        chunked_book=book(remaining), store=store, dense=None, sparse=Bm25Encoder()
    )
    assert (report.embedded, report.deleted) == (0, 2)
    assert await stored_files(store) == {"odometry.md": 2, "planning.md": 1}


async def test_page_that_fails_to_parse_keeps_its_old_chunks(store: VectorStore):
    await ingest(chunked_book=book(PAGES), store=store, dense=None, sparse=Bm25Encoder())
    broken = book({k: v for k, v in PAGES.items() if k != "planning.md"})
    broken.problems.append(("planning.md", "invalid YAML front matter"))
    report = await ingest(chunked_book=broken, store=store, dense=None, sparse=Bm25Encoder())
    assert report.deleted == 0
    assert report.problems == [("planning.md", "invalid YAML front matter")]
    assert "planning.md" in await stored_files(store)


async def test_moved_chunk_keeps_its_point_and_gets_its_new_position(store: VectorStore):
    dense = CountingEmbedder()
    await ingest(chunked_book=book(PAGES), store=store, dense=dense, sparse=Bm25Encoder())
    moved = dict(PAGES, **{"motors.md": ["Gearboxes trade speed for torque.", *PAGES["motors.md"]]})
    report = await ingest(chunked_book=book(moved), store=store, dense=dense, sparse=Bm25Encoder())
    assert (report.embedded, report.unchanged) == (1, 5)
    positions = sorted(
        c.position for c in (await store.stored_chunks()).values() if c.file == "motors.md"
    )
    assert positions == [0, 1, 2]


async def test_dry_run_writes_nothing(store: VectorStore, monkeypatch: pytest.MonkeyPatch):
    await ingest(chunked_book=book(PAGES), store=store, dense=None, sparse=Bm25Encoder())
    spy = WriteSpy(store, monkeypatch)
    changed = dict(PAGES, **{"planning.md": ["Dijkstra is A* without a heuristic."]})
    report = await ingest(
        chunked_book=book(changed), store=store, dense=None, sparse=Bm25Encoder(), dry_run=True
    )
    assert (report.embedded, report.deleted, report.dry_run) == (1, 1, True)
    assert "would embed 1" in report.summary()
    assert spy.calls == []
    assert await stored_files(store) == {"motors.md": 2, "odometry.md": 2, "planning.md": 1}


async def test_progress_reports_every_batch(store: VectorStore):
    seen: list[tuple[int, int]] = []
    many = {f"page{i}.md": [f"text number {i}-{j}" for j in range(30)] for i in range(5)}
    await ingest(
        chunked_book=book(many),
        store=store,
        dense=None,
        sparse=Bm25Encoder(),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(0, 150), (100, 150), (150, 150)]


async def test_ingest_with_another_dense_embedder_is_refused(store: VectorStore):
    await ingest(
        chunked_book=book(PAGES),
        store=store,
        dense=CountingEmbedder("test:a"),
        sparse=Bm25Encoder(),
    )
    other = CountingEmbedder("test:b")
    with pytest.raises(EmbedderMismatch) as caught:
        await ingest(chunked_book=book(PAGES), store=store, dense=other, sparse=Bm25Encoder())
    message = str(caught.value)
    assert "test:a (64 dims)" in message
    assert "test:b (64 dims)" in message
    assert "QDRANT_COLLECTION" in message
    assert other.documents == []


async def test_other_dimensions_or_no_dense_leg_are_refused(store: VectorStore):
    await ingest(
        chunked_book=book(PAGES), store=store, dense=CountingEmbedder(), sparse=Bm25Encoder()
    )
    with pytest.raises(EmbedderMismatch, match="32 dims"):
        await ingest(
            chunked_book=book(PAGES),
            store=store,
            dense=CountingEmbedder(dimensions=32),
            sparse=Bm25Encoder(),
        )
    with pytest.raises(EmbedderMismatch, match="no dense embedder"):
        await ingest(chunked_book=book(PAGES), store=store, dense=None, sparse=Bm25Encoder())


async def test_gemini_built_collection_says_which_settings_to_use(store: VectorStore):
    gemini_like = CountingEmbedder("gemini:gemini-embedding-001", dimensions=768)
    await ingest(chunked_book=book(PAGES), store=store, dense=gemini_like, sparse=Bm25Encoder())
    with pytest.raises(EmbedderMismatch) as caught:
        await ingest(chunked_book=book(PAGES), store=store, dense=None, sparse=Bm25Encoder())
    assert "BOOKCHAT_EMBEDDER=gemini" in str(caught.value)
    assert "BOOKCHAT_EMBEDDING_DIMENSIONS=768" in str(caught.value)


def test_a_collection_from_another_layout_is_refused_with_its_own_words() -> None:
    from bookchat.stores.identity import IndexIdentity, mismatch_message

    old = IndexIdentity(dense=None, dense_dims=None, sparse="bm25:v1", layout=0)
    new = IndexIdentity(dense=None, dense_dims=None, sparse="bm25:v1")
    assert old != new
    assert "another version of bookchat" in mismatch_message(old, new, "book")
