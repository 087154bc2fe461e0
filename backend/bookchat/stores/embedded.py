"""The book's collection in embedded Qdrant: a folder this process locks, read without
qdrant-client and written through its local mode.

Reads come from the folder's read snapshot (stores/snapshot.py) and searches run on an in-memory
copy of its vectors (stores/memory_index.py), rebuilt after this process's own writes. Local
mode (stores/local_mode.py, the one module that imports qdrant-client) is opened only to write,
or to read a collection that has no snapshot yet. Every write removes the snapshot before it
starts, and closing the store after writes leaves a fresh one behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookchat.stores.connection import (
    LOCK_FILE,
    FolderLock,
    Location,
    cannot_open,
    folder_in_use,
)
from bookchat.stores.errors import StoreUnavailable, VectorStoreError
from bookchat.stores.identity import DENSE, SPARSE
from bookchat.stores.vectors import Hit, ScrolledPoint, VectorStore

if TYPE_CHECKING:
    from bookchat.stores.identity import IndexIdentity, SparseVector
    from bookchat.stores.local_mode import LocalMode
    from bookchat.stores.memory_index import MemoryIndex
    from bookchat.stores.snapshot import Snapshot
    from bookchat.stores.vectors import NewPoint

log = logging.getLogger(__name__)


class EmbeddedVectorStore(VectorStore):
    """One collection in the embedded folder `path` (see the module's description)."""

    def __init__(self, *, collection: str, path: Path, shared: bool = False) -> None:
        super().__init__(
            collection=collection, location=Location(backend="embedded", path=str(path))
        )
        self._path = path
        self._local: LocalMode | None = None  # opened to write, or to read with no snapshot
        # Search the in-memory copy (off: local mode's own search, for tests).
        self.memory_index = True
        self._memory: MemoryIndex | None = None
        self._loading: asyncio.Lock | None = None
        self._opening: asyncio.Lock | None = None
        # Every point as of the last write, and the folder lock held while local mode is not
        # open; `_dirty`: written since the snapshot on disk was made.
        self._snapshot: Snapshot | None = None
        self._folder_lock: FolderLock | None = None
        self._dirty = False
        # Read by several processes at once (`bookchat serve`'s workers): each holds the
        # folder's lock shared and none writes (bookchat serve wrote what was needed first).
        self._shared = shared

    @classmethod
    def open(
        cls,
        *,
        collection: str,
        path: Path,
        shared: bool = False,
        loaded: tuple[Snapshot, MemoryIndex] | None = None,
    ) -> EmbeddedVectorStore:
        """Embedded Qdrant in the folder `path`, made when missing.

        shared: the folder is read by several processes: its lock is taken shared, its read
        snapshot must be fresh, and every write is refused (StoreUnavailable); loaded: that
        snapshot and its search index as the serving process read them under its own shared
        lock (its forked workers use them instead of reading their own copies).
        Blocking (making a missing or stale snapshot reads every point): call it in a thread.
        """
        store = cls(collection=collection, path=path, shared=shared)
        try:
            path.mkdir(parents=True, exist_ok=True)
            store._open(loaded if shared else None)
        except OSError as exc:
            raise cannot_open(path, exc) from None
        return store

    def _read_only(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"The embedded Qdrant in {self._path} is read by several `bookchat serve` "
            "worker processes, which never write it. Stop the server to change the index "
            "(`bookchat ingest`), or serve one process (BOOKCHAT_WORKERS=1)."
        )

    def _open(self, loaded: tuple[Snapshot, MemoryIndex] | None = None) -> None:
        """Lock the folder and read its snapshot (made again from local mode's files when it
        is missing or stale), or take the one `loaded` under a lock held since. A folder
        nothing may write (the image's baked index) takes no lock: nothing can change it.
        Blocking."""
        from bookchat.stores.snapshot import Snapshot, SnapshotUnusable, writable

        path = self._path
        if writable(path):
            lock = FolderLock(path / LOCK_FILE, shared=self._shared)
            if not lock.acquire():
                raise folder_in_use(path)
            self._folder_lock = lock
        if loaded is not None:
            self._snapshot, self._memory = loaded
            return
        try:
            self._snapshot = Snapshot.read(path, self.collection)
        except SnapshotUnusable as why:
            if self._shared:
                # bookchat serve made it fresh before its workers started, and their shared
                # locks keep every writer out: this is a bug or a hand-edited folder.
                self._release_lock()
                raise StoreUnavailable(
                    f"The embedded Qdrant in {path} has no fresh read snapshot ({why}), and the "
                    "worker processes that share it never write it: restart `bookchat serve`."
                ) from None
            # Missing or stale (an older bookchat wrote the folder): made again from local
            # mode's files, which the lock keeps still meanwhile. No collection yet: local
            # mode opens when something asks for it.
            log.info("making the read snapshot in %s (%s)", path, why)
            self._save_snapshot(self._generation)

    def _open_local(self) -> None:
        """Open local mode in the folder (it reads and unpickles every point). Blocking."""
        from bookchat.stores.local_mode import LocalMode

        # Local mode takes the same lock; an flock is per open file, even in one process.
        self._release_lock()
        self._local = LocalMode.open(self._path, self.collection)

    async def _local_mode(self) -> LocalMode:
        """Local mode, opened (in a thread) on first need: a write, or a collection with no
        snapshot yet."""
        if self._shared:
            raise self._read_only()
        if self._local is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            # One opening: a health check and start-up's ingest may both ask at once.
            async with self._opening:
                if self._local is None:
                    await asyncio.to_thread(self._open_local)
        assert self._local is not None
        return self._local

    def _wrote(self) -> None:
        """A write changes what the in-memory copy must hold: it is rebuilt on next use."""
        if self._shared:
            raise self._read_only()  # before the snapshot below is removed
        self._memory = None
        self._snapshot = None
        super()._wrote()
        if not self._dirty:
            from bookchat.stores.snapshot import remove_snapshot

            # Gone before the write: a snapshot must never describe a half-written collection.
            remove_snapshot(self._path, self.collection)
            self._dirty = True

    # Reads: the snapshot when there is one, else local mode.

    async def _metadata(self) -> dict[str, Any] | None:
        if (snapshot := self._snapshot) is not None:
            return snapshot.metadata
        return await (await self._local_mode()).metadata()

    async def count(self, *, exact: bool = False, timeout: float | None = None) -> int:
        # No time limit: local mode does its work in-process.
        if (snapshot := self._snapshot) is not None:
            return len(snapshot)
        return await (await self._local_mode()).count(exact=exact)

    async def _scroll(
        self, fields: list[str], vectors: list[str] | None = None
    ) -> AsyncIterator[ScrolledPoint]:
        if (snapshot := self._snapshot) is None:
            async for point in (await self._local_mode()).scroll(fields, vectors):
                yield point
            return
        # What outlines ask for: payload fields, the dense vector and the BM25 weights.
        assert not set(vectors or ()) - {DENSE, SPARSE}, vectors
        wanted = set(vectors or ())
        for row, (pid, payload) in enumerate(zip(snapshot.ids, snapshot.payloads, strict=True)):
            named: dict[str, Any] = {}
            if DENSE in wanted and (dense := snapshot.dense_view(row)) is not None:
                named[DENSE] = dense
            if SPARSE in wanted:
                named[SPARSE] = snapshot.sparse_view(row)
            yield pid, {k: payload[k] for k in fields if k in payload}, named

    # Writes: through local mode.

    async def _create(self, using: IndexIdentity) -> None:
        await (await self._local_mode()).create(using)
        self._wrote()

    async def _upsert(self, points: Sequence[NewPoint]) -> None:
        await (await self._local_mode()).upsert(points)

    async def _delete(self, ids: Sequence[str]) -> None:
        await (await self._local_mode()).delete(ids)

    async def _set_positions(self, by_position: dict[int, list[str]]) -> None:
        local = await self._local_mode()
        for position, ids in by_position.items():
            await local.set_payload({"position": position}, ids)

    # Search: the in-memory copy, with qdrant-client's RRF written out (stores/memory_index.py):
    # the same results as local mode's query API, which is kept to compare with.

    async def _search(
        self, *, sparse: SparseVector, dense: list[float] | None, limit: int, candidates: int
    ) -> list[Hit]:
        if not self.memory_index:
            return await (await self._local_mode()).query(
                sparse=sparse, dense=dense, limit=limit, candidates=candidates
            )
        from bookchat.stores.memory_index import reciprocal_rank_fusion

        snapshot, memory = await self._memory_index()
        found: list[list[tuple[str, float]]] = []
        if sparse.indices:
            found.append(memory.lexical(sparse.indices, sparse.values, candidates))
        if dense is not None and memory.has_dense:
            found.append(memory.dense(dense, candidates))
        if not found:
            return []
        ranked = (
            [pid for pid, _ in found[0][:limit]]
            if len(found) == 1
            else reciprocal_rank_fusion(found, limit=limit)
        )
        rows = memory.rows
        hits = []
        for pid in ranked:
            row = rows[pid]
            hit = Hit(payload=snapshot.payloads[row])
            if dense is not None:
                hit.dense = snapshot.dense_of(row)
            else:
                hit.sparse = snapshot.sparse_of(row)
            hits.append(hit)
        return hits

    async def warm(self) -> None:
        """Build the in-memory copy now."""
        if self.memory_index:
            await self._memory_index()

    async def _memory_index(self) -> tuple[Snapshot, MemoryIndex]:
        """The collection's points and vectors in memory, loaded on first use after each write
        (from the read snapshot, made again from local mode's files after a write)."""
        if self._memory is not None and self._snapshot is not None:
            return self._snapshot, self._memory
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:  # one load at a time; the others wait and share it
            while self._memory is None or self._snapshot is None:
                generation = self._generation
                # Reading 10,000 points takes seconds: in a thread, so that streams and health
                # checks go on meanwhile.
                snapshot = self._snapshot
                if snapshot is None:
                    snapshot = await asyncio.to_thread(self._save_snapshot, generation)
                if snapshot is None:
                    raise VectorStoreError(
                        f"Qdrant collection {self.collection!r} does not exist in "
                        f"{self._path}: run `bookchat ingest` first."
                    )
                loaded = await asyncio.to_thread(_build_memory_index, snapshot)
                if generation == self._generation:
                    self._snapshot, self._memory = snapshot, loaded
        return self._snapshot, self._memory

    def _save_snapshot(self, generation: int) -> Snapshot | None:
        """The collection as local mode's files hold it, written as the read snapshot unless
        a write came since `generation`; None when the collection does not exist. Blocking."""
        from bookchat.stores.snapshot import Snapshot, SnapshotUnusable, writable

        path = self._path
        try:
            snapshot = Snapshot.from_storage(path, self.collection)
        except SnapshotUnusable:
            return None
        if generation != self._generation:
            return snapshot
        if writable(path) and snapshot.write(path):
            self._dirty = False
        if self._local is None:
            self._snapshot = snapshot
        return snapshot

    async def close(self) -> None:
        """Release local mode and the folder's lock, leaving a fresh read snapshot behind when
        this process wrote to the collection."""
        try:
            if self._local is not None and self._dirty:
                await asyncio.to_thread(self._save_snapshot, self._generation)
        except Exception as exc:  # the next start makes it from local mode's files
            log.warning("no read snapshot written for %s: %s", self._path, exc)
        finally:
            if self._local is not None:
                await self._local.close()
            self._release_lock()

    def _release_lock(self) -> None:
        """Let go of the folder's lock, if this store holds it."""
        if self._folder_lock is not None:
            self._folder_lock.release()
            self._folder_lock = None


def _build_memory_index(snapshot: Snapshot) -> MemoryIndex:
    # numpy (~0.1 s), only for an embedded collection once it is searched.
    from bookchat.stores.memory_index import MemoryIndex

    return MemoryIndex.from_snapshot(snapshot)
