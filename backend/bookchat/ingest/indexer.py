"""Idempotent ingestion: embed and write only new chunks, remove the ones that went away."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bookchat.stores.identity import IndexIdentity, point_id
from bookchat.stores.vectors import NewPoint

if TYPE_CHECKING:
    from bookchat.ingest.model import Chunk, ChunkedBook
    from bookchat.providers.embedding import DenseEmbedder
    from bookchat.providers.local_sparse import Bm25Encoder
    from bookchat.stores.vectors import VectorStore

# Chunks embedded and written per round trip: Gemini's batch limit, and small enough for the
# progress bar to move.
BATCH = 100

Progress = Callable[[int, int], None]  # (chunks done, chunks to do)

# Beside an embedded index: what the last ingestion through bookchat left in it, so a re-run on
# an unchanged book can say so without opening Qdrant (importing qdrant-client alone is most of
# such a run's time).
FINGERPRINT_FILE = "bookchat-ingest.sha256"


@dataclass(slots=True)
class IngestReport:
    """What one ingestion did (or, for a dry run, would do)."""

    files: int = 0
    chunks: int = 0
    embedded: int = 0
    unchanged: int = 0
    deleted: int = 0
    seconds: float = 0.0
    problems: list[tuple[str, str]] = field(default_factory=list)
    dry_run: bool = False
    # Which points went (or would go): lets a caller say whose chunks they were.
    deleted_ids: list[str] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        """One line for a terminal or a log."""
        verb = "would embed" if self.dry_run else "embedded"
        gone = "would delete" if self.dry_run else "deleted"
        skipped = f", {len(self.problems)} skipped" if self.problems else ""
        return (
            f"{self.files} files, {self.chunks} chunks: {verb} {self.embedded}, "
            f"{self.unchanged} unchanged, {gone} {self.deleted}{skipped} "
            f"in {self.seconds:.1f} s"
        )


@dataclass(slots=True)
class _Plan:
    new: list[tuple[str, Chunk]]
    stale: list[str]
    moved: dict[str, int]
    unchanged: int


def embedding_text(chunk: Chunk) -> str:
    """What gets embedded: the title and heading path help retrieval; the reader sees text."""
    return f"{chunk.title}\n{chunk.heading}\n{chunk.text}"


def _wanted(book: ChunkedBook) -> dict[str, Chunk]:
    wanted: dict[str, Chunk] = {}
    for chunk in book.chunks:
        # Two identical chunks on one page are one point; the first position wins.
        wanted.setdefault(point_id(chunk.file, chunk.content_hash, chunk.title), chunk)
    return wanted


def fingerprint(book: ChunkedBook, identity: IndexIdentity, collection: str) -> str:
    """What an index holds after ingesting `book`: every point id and position, the embedders
    and the collection (the payload's own fields are in the point id's content hash)."""
    digest = hashlib.sha256(f"{collection}\x1f{identity}".encode())
    for pid, chunk in sorted(_wanted(book).items()):
        extra = f"{chunk.version or ''}\x1f{chunk.plugin or ''}"
        digest.update(f"\x1e{pid}\x1f{chunk.position}\x1f{extra}".encode())
    return digest.hexdigest()


def unchanged_since_last_ingest(folder: Path, mark: str) -> bool:
    """True when the embedded index in `folder` was last written with this fingerprint."""
    try:
        return (folder / FINGERPRINT_FILE).read_text(encoding="ascii").strip() == mark
    except (OSError, UnicodeDecodeError):
        return False


def _forget_fingerprint(store: VectorStore) -> Path | None:
    folder = Path(store.location.path) if store.embedded and store.location.path else None
    if folder is not None:
        # Removed before writing: a run that dies half-way must not look finished.
        (folder / FINGERPRINT_FILE).unlink(missing_ok=True)
    return folder


def _plan(book: ChunkedBook, stored: dict[str, object]) -> _Plan:
    wanted = _wanted(book)
    # A page that failed to parse this time keeps its old chunks rather than vanishing.
    failed = {file for file, _ in book.problems}
    new = [(pid, c) for pid, c in wanted.items() if pid not in stored]
    stale = [
        pid
        for pid, s in stored.items()
        if pid not in wanted and getattr(s, "file", None) not in failed
    ]
    moved = {
        pid: c.position
        for pid, c in wanted.items()
        if pid in stored and getattr(stored[pid], "position", c.position) != c.position
    }
    return _Plan(new=new, stale=stale, moved=moved, unchanged=len(wanted) - len(new))


async def ingest(
    *,
    chunked_book: ChunkedBook,
    store: VectorStore,
    dense: DenseEmbedder | None,
    sparse: Bm25Encoder,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> IngestReport:
    """Bring the collection in line with the book; unchanged chunks cost nothing."""
    started = time.perf_counter()
    using = IndexIdentity.of(dense, sparse)
    if dry_run:
        exists = await store.check_identity(using)
        stored = await store.stored_chunks() if exists else {}
    else:
        await store.ensure_collection(using)
        stored = await store.stored_chunks()
    plan = _plan(chunked_book, stored)
    report = IngestReport(
        files=chunked_book.pages,
        chunks=len(chunked_book.chunks),
        embedded=len(plan.new),
        unchanged=plan.unchanged,
        deleted=len(plan.stale),
        deleted_ids=list(plan.stale),
        problems=list(chunked_book.problems),
        dry_run=dry_run,
    )
    if not dry_run:
        folder = _forget_fingerprint(store)
        await _write(plan, store=store, dense=dense, sparse=sparse, progress=progress)
        if folder is not None and not chunked_book.problems:
            # With skipped files the index keeps their old chunks: not this book's exact state.
            mark = fingerprint(chunked_book, using, store.collection)
            (folder / FINGERPRINT_FILE).write_text(mark + "\n", encoding="ascii")
    report.seconds = time.perf_counter() - started
    return report


async def _write(
    plan: _Plan,
    *,
    store: VectorStore,
    dense: DenseEmbedder | None,
    sparse: Bm25Encoder,
    progress: Progress | None,
) -> None:
    total = len(plan.new)
    if progress:
        progress(0, total)
    for start in range(0, total, BATCH):
        batch = plan.new[start : start + BATCH]
        texts = [embedding_text(c) for _, c in batch]
        dense_vectors = await dense.embed_documents(texts) if dense else [None] * len(batch)
        sparse_vectors = sparse.encode_documents(texts)
        await store.upsert(
            [
                NewPoint(
                    id=pid,
                    payload={
                        "file": c.file,
                        "title": c.title,
                        "heading": c.heading,
                        "url": c.url,
                        "text": c.text,
                        "content_hash": c.content_hash,
                        "position": c.position,
                        # Only when known, so an unversioned book's points stay as they were.
                        **({"version": c.version} if c.version is not None else {}),
                        **({"plugin": c.plugin} if c.plugin is not None else {}),
                    },
                    sparse=sv,
                    dense=dv,
                )
                for (pid, c), sv, dv in zip(batch, sparse_vectors, dense_vectors, strict=True)
            ]
        )
        if progress:
            progress(start + len(batch), total)
    # Old chunks go only after their replacements are in, so a reader never finds a hole.
    await store.delete(plan.stale)
    if plan.moved:
        await store.set_position(plan.moved)
