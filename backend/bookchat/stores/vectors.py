"""The book's Qdrant collection: embedded (local mode) or a server, with clear failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bookchat.redact import redact_url
from bookchat.stores.connection import (
    FolderLock,
    Location,
    host_port,
    locked,
    tune_embedded_storage,
)
from bookchat.stores.errors import EmbedderMismatch, StoreUnavailable, VectorStoreError, guarded
from bookchat.stores.identity import (
    DENSE,
    METADATA_KEY,
    SPARSE,
    IndexIdentity,
    mismatch_message,
)

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

    from bookchat.stores.identity import SparseVector
    from bookchat.stores.memory_index import MemoryIndex
    from bookchat.stores.qdrant_http import QdrantServer
    from bookchat.stores.snapshot import Snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")
LOCK_FILE = ".lock"  # local mode's lock file in the embedded folder
SCROLL_PAGE = 1000  # points per scroll call when reading what a collection holds


@dataclass(slots=True)
class Hit:
    """One retrieved point with its payload and the vectors needed to score it for a reader."""

    payload: dict[str, Any]
    dense: list[float] | None = None
    sparse: tuple[list[int], list[float]] | None = None


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """What ingestion needs to know about a point already in the collection."""

    file: str
    position: int


@dataclass(frozen=True, slots=True)
class ChunkHeading:
    """Where a stored chunk sits in the book: its page, the page's title and its heading path;
    its text, dense vector and BM25 weights when asked for (the page rankings of rag/pages.py)."""

    file: str
    title: str
    heading: str
    version: str | None
    plugin: str | None
    text: str = ""
    # Lists (server, local mode) or numpy views (of the read snapshot's arrays, not copied).
    dense: Sequence[float] | None = None
    sparse: tuple[Sequence[int], Sequence[float]] | None = None


@dataclass(slots=True)
class NewPoint:
    """A chunk ready to write: id, vectors and the payload a citation needs."""

    id: str
    payload: dict[str, Any]
    sparse: SparseVector
    dense: list[float] | None = None


@dataclass(frozen=True, slots=True)
class _Query:
    """One hybrid search: either leg may be absent (no known term, no dense embedder)."""

    sparse: SparseVector
    dense: list[float] | None
    limit: int
    candidates: int

    @property
    def with_vectors(self) -> list[str]:
        # The vectors come back so the reader-facing score can be a similarity, not a rank.
        return [DENSE] if self.dense is not None else [SPARSE]


class VectorStore:
    """One Qdrant collection of book chunks, named vectors "dense" and "bm25".

    Every client call goes through `_call`, which bounds its time and turns failures into one
    sentence naming the host and what to do. Embedded, searches run on an in-memory copy of
    the vectors (stores/memory_index.py), rebuilt after this process's own writes, and reads
    come from a read snapshot (stores/snapshot.py): local mode is opened only to write. A
    server is reached over its REST API (stores/qdrant_http.py). Neither imports qdrant-client
    to serve.
    """

    def __init__(
        self,
        *,
        collection: str,
        location: Location,
        client: AsyncQdrantClient | None = None,
        server: QdrantServer | None = None,
        timeout: float = 3.0,
        shared: bool = False,
    ) -> None:
        self._client = client  # embedded: qdrant-client's local mode, opened to write
        self._server = server  # a Qdrant server: its REST API (every method has its branch)
        self.collection = collection
        self.location = location
        self._timeout = timeout
        # Embedded only: search the in-memory copy (off: local mode's own search, for tests).
        self.memory_index = True
        self._memory: MemoryIndex | None = None
        self._memory_generation = 0  # bumped by every write, so a load begun before it is stale
        self._loading: asyncio.Lock | None = None
        self._opening: asyncio.Lock | None = None
        # Embedded: every point as of the last write, and the folder lock held while local
        # mode is not open; `_dirty`: written since the snapshot on disk was made.
        self._snapshot: Snapshot | None = None
        self._folder_lock: FolderLock | None = None
        self._dirty = False
        # Embedded, read by several processes at once (`bookchat serve`'s workers): each holds
        # the folder's lock shared and none writes (bookchat serve wrote what was needed first).
        self._shared = shared

    @classmethod
    def open(
        cls,
        *,
        collection: str,
        path: Path,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float = 3.0,
        shared: bool = False,
        loaded: tuple[Snapshot, MemoryIndex] | None = None,
    ) -> VectorStore:
        """The server at `url` when given, else embedded Qdrant in the folder `path`.

        shared: the embedded folder is read by several processes: its lock is taken shared,
        its read snapshot must be fresh, and every write is refused (StoreUnavailable);
        loaded: that snapshot and its search index as the serving process read them under its
        own shared lock (its forked workers use them instead of reading their own copies).
        Blocking (embedded local mode reads every point when it opens): call it in a thread.
        """
        if url is not None:
            from bookchat.stores.qdrant_http import QdrantServer

            server = QdrantServer(url=url, collection=collection, api_key=api_key, timeout=timeout)
            location = Location(backend="server", url=redact_url(url), host_port=host_port(url))
            return cls(server=server, collection=collection, location=location, timeout=timeout)
        location = Location(backend="embedded", path=str(path))
        store = cls(collection=collection, location=location, timeout=timeout, shared=shared)
        try:
            path.mkdir(parents=True, exist_ok=True)
            store._open_embedded(loaded if shared else None)
        except OSError as exc:
            raise StoreUnavailable(
                f"The embedded Qdrant in {path} cannot be opened: {exc.strerror or exc}"
            ) from None
        return store

    def _in_use(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"The embedded Qdrant in {self.location.path} is in use by another bookchat process "
            "(for example `bookchat serve`). Stop that process first, or run a Qdrant "
            "server and set QDRANT_URL so that several processes can share it."
        )

    def _read_only(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"The embedded Qdrant in {self.location.path} is read by several `bookchat serve` "
            "worker processes, which never write it. Stop the server to change the index "
            "(`bookchat ingest`), or serve one process (BOOKCHAT_WORKERS=1)."
        )

    def _open_embedded(self, loaded: tuple[Snapshot, MemoryIndex] | None = None) -> None:
        """Lock the folder and read its snapshot (made again from local mode's files when it
        is missing or stale), or take the one `loaded` under a lock held since. A folder
        nothing may write (the image's baked index) takes no lock: nothing can change it.
        Blocking."""
        from bookchat.stores.snapshot import Snapshot, SnapshotUnusable, writable

        assert self.location.path is not None
        path = Path(self.location.path)
        if writable(path):
            lock = FolderLock(path / LOCK_FILE, shared=self._shared)
            if not lock.acquire():
                raise self._in_use()
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
            self._save_snapshot(self._memory_generation)

    def _open_local(self) -> None:
        """Open local mode in the folder (it reads and unpickles every point). Blocking."""
        from qdrant_client import AsyncQdrantClient

        assert self.location.path is not None
        path = Path(self.location.path)
        # Local mode takes the same lock; an flock is per open file, even in one process.
        self._release_lock()
        try:
            # Probe the lock first: when qdrant-client finds it taken, it leaks the file.
            if locked(path / LOCK_FILE):
                raise self._in_use()
            # Opened in a worker thread (it reads every point) and used from the event loop
            # afterwards, never from two threads at once: where SQLite is built to refuse
            # a connection another thread opened (macOS), that check has to be off.
            client = AsyncQdrantClient(path=str(path), force_disable_check_same_thread=True)
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            raise self._in_use() from None
        except OSError as exc:
            raise StoreUnavailable(
                f"The embedded Qdrant in {path} cannot be opened: {exc.strerror or exc}"
            ) from None
        tune_embedded_storage(client, self.collection)
        self._client = client

    @property
    def embedded(self) -> bool:
        return self.location.backend == "embedded"

    async def _local_mode(self) -> AsyncQdrantClient:
        """The embedded collection's local-mode client, opened (in a thread) on first need: a
        write, or a collection with no snapshot yet (every server call has its own branch)."""
        assert self.embedded, "a server collection has no local-mode client"
        if self._shared:
            raise self._read_only()
        if self._client is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            # One opening: a health check and start-up's ingest may both ask at once.
            async with self._opening:
                if self._client is None:
                    await asyncio.to_thread(self._open_local)
        assert self._client is not None
        return self._client

    def _limit(self, timeout: float | None, at_least: float = 0.0) -> float:
        """Seconds one call may take: `timeout` or the store's, and never under `at_least`."""
        return max(timeout if timeout is not None else self._timeout, at_least)

    async def _call(self, make: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run one client call with a bounded time and errors that name host and cause."""
        return await guarded(
            make,
            where=f"Qdrant at {self.location.host_port}",
            limit=timeout if timeout is not None else self._timeout,
            embedded=self.embedded,
        )

    def _wrote(self) -> None:
        """A write changes what the in-memory copy must hold: it is rebuilt on next use."""
        if self._shared:
            raise self._read_only()  # before the snapshot below is removed
        self._memory = None
        self._snapshot = None
        self._memory_generation += 1
        if self.embedded and not self._dirty:
            from bookchat.stores.snapshot import remove_snapshot

            # Gone before the write: a snapshot must never describe a half-written collection.
            assert self.location.path is not None
            remove_snapshot(Path(self.location.path), self.collection)
            self._dirty = True

    # The collection and which embedders built it.

    async def identity(self) -> IndexIdentity | None:
        """Which embedders built the collection; None when it does not exist yet."""
        meta = await self._metadata()
        if meta is None:
            return None
        meta = meta.get(METADATA_KEY)
        if not meta:
            raise VectorStoreError(
                f"Qdrant collection {self.collection!r} was not created by bookchat (it has no "
                f"{METADATA_KEY!r} metadata): choose another QDRANT_COLLECTION."
            )
        return IndexIdentity.from_metadata(meta)

    async def _metadata(self) -> dict[str, Any] | None:
        """The collection's metadata ({} when it has none); None when it does not exist."""
        if (server := self._server) is not None:
            limit = self._limit(None)
            if not await self._call(lambda: server.exists(timeout=limit)):
                return None
            return await self._call(lambda: server.metadata(timeout=limit))
        if (snapshot := self._snapshot) is not None:
            return snapshot.metadata
        client, collection = await self._local_mode(), self.collection
        if not await self._call(lambda: client.collection_exists(collection)):
            return None
        info = await self._call(lambda: client.get_collection(collection))
        return info.config.metadata or {}

    async def check_identity(self, using: IndexIdentity) -> bool:
        """Raise EmbedderMismatch if the collection was built otherwise; False if it is absent."""
        built = await self.identity()
        if built is None:
            return False
        if built != using:
            raise EmbedderMismatch(mismatch_message(built, using, self.collection))
        return True

    async def ensure_collection(self, using: IndexIdentity) -> None:
        """Create the collection for these embedders, or check that it was built with them."""
        if await self.check_identity(using):
            return
        if (server := self._server) is not None:
            limit = self._limit(None, 10.0)
            await self._call(
                lambda: server.create(
                    dense_dims=using.dense_dims if using.dense is not None else None,
                    metadata={METADATA_KEY: using.as_metadata()},
                    timeout=limit,
                ),
                timeout=limit,
            )
            return
        from qdrant_client import models

        client = await self._local_mode()
        vectors = {}
        if using.dense is not None:
            assert using.dense_dims is not None
            vectors[DENSE] = models.VectorParams(
                size=using.dense_dims, distance=models.Distance.COSINE
            )
        await self._call(
            lambda: client.create_collection(
                self.collection,
                vectors_config=vectors,
                # BM25's IDF comes from the collection, so weights stay valid as it grows.
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                metadata={METADATA_KEY: using.as_metadata()},
            ),
            timeout=max(self._timeout, 10.0),
        )
        self._wrote()
        tune_embedded_storage(client, self.collection)

    async def count(self, *, exact: bool = False, timeout: float | None = None) -> int:
        """Number of points (0 when the collection does not exist)."""
        if (server := self._server) is not None:
            limit = self._limit(timeout)
            if not await self._call(lambda: server.exists(timeout=limit), timeout=limit):
                return 0
            return await self._call(lambda: server.count(exact=exact, timeout=limit), timeout=limit)
        if (snapshot := self._snapshot) is not None:
            return len(snapshot)
        client, collection = await self._local_mode(), self.collection
        if not await self._call(lambda: client.collection_exists(collection), timeout=timeout):
            return 0
        result = await self._call(lambda: client.count(collection, exact=exact), timeout=timeout)
        return result.count

    # Ingestion's reads and writes.

    @property
    def generation(self) -> int:
        """Bumped by every write through this store: what was derived from the points is stale."""
        return self._memory_generation

    async def _scroll(
        self, fields: list[str], vectors: list[str] | None = None
    ) -> AsyncIterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(id, payload with `fields`, named `vectors`) of every point, SCROLL_PAGE per trip."""
        if (server := self._server) is not None:
            limit = self._limit(None)
            page: str | None = None
            while True:
                found, page = await self._call(
                    lambda page=page: server.scroll(
                        fields=fields,
                        vectors=vectors,
                        limit=SCROLL_PAGE,
                        offset=page,
                        timeout=limit,
                    )
                )
                for pid, payload, named in found:
                    yield pid, payload, named
                if page is None:
                    return
        if (snapshot := self._snapshot) is not None:
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
            return
        client = await self._local_mode()
        offset = None
        while True:
            points, offset = await self._call(
                lambda offset=offset: client.scroll(
                    self.collection,
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=fields,
                    with_vectors=vectors or False,
                )
            )
            for p in points:
                named = p.vector if isinstance(p.vector, dict) else {}
                yield str(p.id), p.payload or {}, named
            if offset is None:
                return

    async def stored_chunks(self) -> dict[str, StoredChunk]:
        """Every point id in the collection with its page and position."""
        return {
            pid: StoredChunk(file=str(p.get("file", "")), position=int(p.get("position", 0)))
            async for pid, p, _ in self._scroll(["file", "position"])
        }

    async def chunk_headings(
        self, *, text: bool = False, dense: bool = False, sparse: bool = False
    ) -> list[ChunkHeading]:
        """The page, title and heading path of every point (what page outlines are built from),
        with its text, its dense vector and its BM25 weights when asked."""

        def optional(value: Any) -> str | None:
            return None if value is None else str(value)

        fields = ["file", "title", "heading", "version", "plugin", *(["text"] if text else [])]
        vectors = [*([DENSE] if dense else []), *([SPARSE] if sparse else [])]
        return [
            ChunkHeading(
                file=str(p.get("file", "")),
                title=str(p.get("title", "")),
                heading=str(p.get("heading", "")),
                version=optional(p.get("version")),
                plugin=optional(p.get("plugin")),
                text=str(p.get("text", "")),
                dense=v.get(DENSE),
                sparse=_sparse_pair(v.get(SPARSE)),
            )
            async for _, p, v in self._scroll(fields, vectors or None)
        ]

    async def upsert(self, points: Sequence[NewPoint]) -> None:
        """Write points (same id: replaced)."""
        self._wrote()
        if (server := self._server) is not None:
            limit = self._limit(None, 30.0)
            await self._call(lambda: server.upsert(points, timeout=limit), timeout=limit)
            return
        from qdrant_client import models

        client = await self._local_mode()
        structs = []
        for p in points:
            vector: dict[str, Any] = {
                SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values)
            }
            if p.dense is not None:
                vector[DENSE] = p.dense
            structs.append(models.PointStruct(id=p.id, vector=vector, payload=p.payload))
        await self._call(
            lambda: client.upsert(self.collection, points=structs, wait=True),
            timeout=max(self._timeout, 30.0),
        )

    async def delete(self, ids: Sequence[str]) -> None:
        """Remove points by id."""
        if not ids:
            return
        self._wrote()
        if (server := self._server) is not None:
            limit = self._limit(None, 30.0)
            await self._call(lambda: server.delete(ids, timeout=limit), timeout=limit)
            return
        from qdrant_client import models

        client = await self._local_mode()
        selector = models.PointIdsList(points=list(ids))
        await self._call(
            lambda: client.delete(self.collection, points_selector=selector, wait=True),
            timeout=max(self._timeout, 30.0),
        )

    async def set_position(self, ids_positions: dict[str, int]) -> None:
        """Update the stored position of chunks whose text did not change but moved."""
        by_position: dict[int, list[str]] = {}
        for pid, position in ids_positions.items():
            by_position.setdefault(position, []).append(pid)
        if not by_position:
            return
        server, limit = self._server, self._limit(None)
        # The positions are in the snapshot's payloads: it goes before the write too.
        self._wrote()
        client = await self._local_mode() if server is None else None
        for position, ids in by_position.items():
            if server is not None:
                await self._call(
                    lambda ids=ids, position=position: server.set_payload(
                        {"position": position}, ids, timeout=limit
                    )
                )
                continue
            assert client is not None
            await self._call(
                lambda ids=ids, position=position: client.set_payload(
                    self.collection, payload={"position": position}, points=ids, wait=True
                )
            )

    # Search.

    async def search(
        self,
        *,
        sparse: SparseVector,
        dense: list[float] | None,
        limit: int,
        candidates: int,
    ) -> list[Hit]:
        """Hybrid search: BM25 and dense legs fused by reciprocal rank, or the one leg there is.

        Against a server, Qdrant's query API runs both legs and the fusion (prefetch + RRF).
        Embedded, the legs run on the in-memory copy and the fusion is qdrant-client's RRF
        function written out (stores/memory_index.py), with the same results.
        """
        if not sparse.indices and dense is None:
            return []
        if (server := self._server) is not None:
            timeout = self._limit(None)
            return await self._call(
                lambda: server.query(
                    sparse=sparse, dense=dense, limit=limit, candidates=candidates, timeout=timeout
                )
            )
        q = _Query(sparse, dense, limit, candidates)
        if self.memory_index:
            return await self._search_in_memory(q)
        return [_hit(point) for point in await self._search_query_api(q)]

    async def _search_query_api(self, q: _Query) -> list[Any]:
        from qdrant_client import models

        legs: list[models.Prefetch] = []
        if q.sparse.indices:
            query = models.SparseVector(indices=q.sparse.indices, values=q.sparse.values)
            legs.append(models.Prefetch(query=query, using=SPARSE, limit=q.candidates))
        if q.dense is not None:
            legs.append(models.Prefetch(query=q.dense, using=DENSE, limit=q.candidates))
        # One leg is queried directly; two are fused by the server.
        shape: dict[str, Any] = (
            {"query": legs[0].query, "using": legs[0].using}
            if len(legs) == 1
            else {"prefetch": legs, "query": models.FusionQuery(fusion=models.Fusion.RRF)}
        )
        client = await self._local_mode()
        result = await self._call(
            lambda: client.query_points(
                self.collection,
                limit=q.limit,
                with_payload=True,
                with_vectors=q.with_vectors,
                **shape,
            )
        )
        return result.points

    async def _search_in_memory(self, q: _Query) -> list[Hit]:
        from bookchat.stores.memory_index import reciprocal_rank_fusion

        snapshot, memory = await self._memory_index()
        found: list[list[tuple[str, float]]] = []
        if q.sparse.indices:
            found.append(memory.lexical(q.sparse.indices, q.sparse.values, q.candidates))
        if q.dense is not None and memory.has_dense:
            found.append(memory.dense(q.dense, q.candidates))
        if not found:
            return []
        ranked = (
            [pid for pid, _ in found[0][: q.limit]]
            if len(found) == 1
            else reciprocal_rank_fusion(found, limit=q.limit)
        )
        rows = memory.rows
        hits = []
        for pid in ranked:
            row = rows[pid]
            hit = Hit(payload=snapshot.payloads[row])
            if q.dense is not None:
                hit.dense = snapshot.dense_of(row)
            else:
                hit.sparse = snapshot.sparse_of(row)
            hits.append(hit)
        return hits

    async def warm(self) -> None:
        """Build the in-memory copy of an embedded collection now."""
        if self.embedded and self.memory_index:
            await self._memory_index()

    async def _memory_index(self) -> tuple[Snapshot, MemoryIndex]:
        """The embedded collection's points and vectors in memory, loaded on first use after
        each write (from the read snapshot, made again from local mode's files after a write)."""
        if self._memory is not None and self._snapshot is not None:
            return self._snapshot, self._memory
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:  # one load at a time; the others wait and share it
            while self._memory is None or self._snapshot is None:
                generation = self._memory_generation
                # Reading 10,000 points takes seconds: in a thread, so that streams and health
                # checks go on meanwhile.
                snapshot = self._snapshot
                if snapshot is None:
                    snapshot = await asyncio.to_thread(self._save_snapshot, generation)
                if snapshot is None:
                    raise VectorStoreError(
                        f"Qdrant collection {self.collection!r} does not exist in "
                        f"{self.location.path}: run `bookchat ingest` first."
                    )
                loaded = await asyncio.to_thread(_build_memory_index, snapshot)
                if generation == self._memory_generation:
                    self._snapshot, self._memory = snapshot, loaded
        return self._snapshot, self._memory

    def _save_snapshot(self, generation: int) -> Snapshot | None:
        """The collection as local mode's files hold it, written as the read snapshot unless
        a write came since `generation`; None when the collection does not exist. Blocking."""
        from bookchat.stores.snapshot import Snapshot, SnapshotUnusable, writable

        assert self.location.path is not None
        path = Path(self.location.path)
        try:
            snapshot = Snapshot.from_storage(path, self.collection)
        except SnapshotUnusable:
            return None
        if generation != self._memory_generation:
            return snapshot
        if writable(path) and snapshot.write(path):
            self._dirty = False
        if self._client is None:
            self._snapshot = snapshot
        return snapshot

    async def close(self) -> None:
        """Release the client (and the embedded folder's lock), leaving a fresh read snapshot
        behind when this process wrote to an embedded collection."""
        if self._server is not None:
            await self._server.aclose()
            return
        try:
            if self._client is not None and self._dirty:
                await asyncio.to_thread(self._save_snapshot, self._memory_generation)
        except Exception as exc:  # the next start makes it from local mode's files
            log.warning("no read snapshot written for %s: %s", self.location.path, exc)
        finally:
            if self._client is not None:
                await self._client.close()
            self._release_lock()

    def _release_lock(self) -> None:
        """Let go of the embedded folder's lock, if this store holds it."""
        if self._folder_lock is not None:
            self._folder_lock.release()
            self._folder_lock = None


def _build_memory_index(snapshot: Snapshot) -> MemoryIndex:
    # numpy (~0.1 s), only for an embedded collection once it is searched.
    from bookchat.stores.memory_index import MemoryIndex

    return MemoryIndex.from_snapshot(snapshot)


def _sparse_pair(vector: Any) -> tuple[list[int], list[float]] | None:
    """(indices, values) of a sparse vector as the snapshot (a pair), local mode (a
    SparseVector) or the REST API (a JSON object) gives it."""
    if vector is None:
        return None
    if isinstance(vector, tuple):
        return vector
    if isinstance(vector, dict):
        return list(vector["indices"]), list(vector["values"])
    return list(vector.indices), list(vector.values)


def _hit(point: Any) -> Hit:
    """A Hit from a ScoredPoint or Record with its named vectors."""
    vectors = point.vector if isinstance(point.vector, dict) else {}
    dense_vec = vectors.get(DENSE)
    sparse_vec = vectors.get(SPARSE)
    return Hit(
        payload=point.payload or {},
        dense=list(dense_vec) if dense_vec is not None else None,
        sparse=(list(sparse_vec.indices), list(sparse_vec.values))
        if sparse_vec is not None and hasattr(sparse_vec, "indices")
        else None,
    )
