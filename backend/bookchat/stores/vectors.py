"""The book's Qdrant collection: embedded (local mode) or a server, with clear failures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

    from bookchat.config import Settings
    from bookchat.providers.local_sparse import SparseVec
    from bookchat.stores.memory_index import DenseIndex, LexicalIndex

T = TypeVar("T")

DENSE = "dense"
SPARSE = "bm25"
METADATA_KEY = "bookchat_index"
# Collection layout version: bump when point ids, payload or vector names change.
LAYOUT = 1
POINT_NAMESPACE = uuid.UUID("6f1c44a4-4f52-4a43-9a59-3b8f6d0e6c1d")
DEFAULT_PORT = 6333  # what qdrant-client assumes when QDRANT_URL names no port
HF_HINT = (
    "Hugging Face Spaces allow outbound connections only on ports 80, 443 and 8080; "
    "Qdrant Cloud also serves on 443 (use https://…:443)"
)


class VectorStoreError(Exception):
    """Qdrant failed or refused; the message says what happened and what to do."""


class StoreUnavailable(VectorStoreError):
    """Qdrant cannot be reached or opened right now."""


class EmbedderMismatch(VectorStoreError):
    """The collection was built by other embedders than the ones configured."""


def point_id(file: str, content_hash: str, title: str = "") -> str:
    """Deterministic id: the same chunk of the same page is always the same point.

    The title is part of it because it is part of what gets embedded.
    """
    return str(uuid.uuid5(POINT_NAMESPACE, f"{file}\n{title}\n{content_hash}"))


@dataclass(frozen=True, slots=True)
class IndexIdentity:
    """Which embedders built a collection; queries must use the same ones."""

    dense: str | None  # e.g. "gemini:gemini-embedding-001", None for lexical only
    dense_dims: int | None
    sparse: str  # e.g. "bm25:v1"

    def label(self) -> str:
        """Human wording, e.g. "gemini:gemini-embedding-001 (768 dims) + bm25:v1"."""
        dense = (
            f"{self.dense} ({self.dense_dims} dims) + " if self.dense else "no dense embedder + "
        )
        return dense + self.sparse

    def as_metadata(self) -> dict[str, Any]:
        return {
            "dense": self.dense,
            "dense_dims": self.dense_dims,
            "sparse": self.sparse,
            "layout": LAYOUT,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> IndexIdentity:
        return cls(
            dense=meta.get("dense"), dense_dims=meta.get("dense_dims"), sparse=meta["sparse"]
        )


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """What ingestion needs to know about a point already in the collection."""

    file: str
    position: int


@dataclass(slots=True)
class NewPoint:
    """A chunk ready to write: id, vectors and the payload a citation needs."""

    id: str
    payload: dict[str, Any]
    sparse: SparseVec
    dense: list[float] | None = None


@dataclass(slots=True)
class Hit:
    """One retrieved point with its payload and the vectors needed to score it for a reader."""

    payload: dict[str, Any]
    dense: list[float] | None = None
    sparse: tuple[list[int], list[float]] | None = None


@dataclass(slots=True)
class Location:
    """Where the collection lives, safe to show (no key)."""

    backend: Literal["embedded", "server"]
    url: str | None = None  # redacted
    path: str | None = None
    host_port: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or DEFAULT_PORT}"


def _locked(lock_file: Path) -> bool:
    """Whether another process holds the embedded folder's lock (qdrant-client's portalocker)."""
    import portalocker

    if not lock_file.exists():
        return False
    with lock_file.open("r+") as handle:
        try:
            portalocker.lock(
                handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
            )
        except portalocker.exceptions.LockException:
            return True
        portalocker.unlock(handle)
    return False


def _tune_embedded_storage(client: AsyncQdrantClient, collection: str) -> None:
    """WAL journal for local mode's SQLite file: it commits every point on its own, and with
    the default journal each commit waits for the disk (20 of 26 s when ingesting 2,000
    chunks here; 4 s with WAL). With synchronous=NORMAL a power cut can lose the last
    commits but never corrupts the file, and ingestion is idempotent: re-run it.
    Reaches into qdrant-client's local mode; if that changes, ingestion is only slower."""
    import sqlite3

    local = getattr(client, "_client", None)
    entry = getattr(local, "collections", {}).get(collection)
    connection = getattr(getattr(entry, "storage", None), "storage", None)
    if isinstance(connection, sqlite3.Connection):
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")


def mismatch_message(built: IndexIdentity, using: IndexIdentity, collection: str) -> str:
    """The one clear sentence for a collection built by other embedders."""
    if built.dense is None:
        fix = "BOOKCHAT_EMBEDDER=local without the static embedder installed"
    elif built.dense.startswith("gemini:"):
        fix = (
            f"BOOKCHAT_EMBEDDER=gemini with GEMINI_API_KEY, "
            f"GEMINI_EMBEDDING_MODEL={built.dense.removeprefix('gemini:')} and "
            f"BOOKCHAT_EMBEDDING_DIMENSIONS={built.dense_dims}"
        )
    else:
        fix = "BOOKCHAT_EMBEDDER=local"
    return (
        f"Qdrant collection {collection!r} was built with {built.label()}; you are using "
        f"{using.label()}. Re-ingest into a new QDRANT_COLLECTION, or set {fix}."
    )


class VectorStore:
    """One Qdrant collection of book chunks, named vectors "dense" and "bm25"."""

    def __init__(
        self,
        *,
        client: AsyncQdrantClient,
        collection: str,
        location: Location,
        timeout: float = 3.0,
    ) -> None:
        self._client = client
        self.collection = collection
        self.location = location
        self._timeout = timeout
        # Embedded only: search in-memory copies of the vectors (stores/memory_index.py).
        self.memory_index = True
        self._memory: tuple[LexicalIndex, DenseIndex | None] | None = None

    @classmethod
    def open(cls, settings: Settings, *, timeout: float = 3.0) -> VectorStore:
        """Embedded Qdrant under BOOKCHAT_DATA_DIR, or the server at QDRANT_URL."""
        from qdrant_client import AsyncQdrantClient

        from bookchat.config import redact_url

        if settings.qdrant_url is None:
            path = settings.qdrant_path
            in_use = StoreUnavailable(
                f"The embedded Qdrant in {path} is in use by another bookchat process "
                "(for example `bookchat serve`). Stop that process first, or run a Qdrant "
                "server and set QDRANT_URL so that several processes can share it."
            )
            try:
                path.mkdir(parents=True, exist_ok=True)
                # Probe the lock first: when qdrant-client finds it taken, it leaks the file.
                if _locked(path / ".lock"):
                    raise in_use
                client = AsyncQdrantClient(path=str(path))
            except RuntimeError as exc:
                if "already accessed" not in str(exc):
                    raise
                raise in_use from None
            except OSError as exc:
                raise StoreUnavailable(
                    f"The embedded Qdrant in {path} cannot be opened: {exc.strerror or exc}"
                ) from None
            location = Location(backend="embedded", path=str(path))
            _tune_embedded_storage(client, settings.qdrant_collection)
        else:
            api_key = (
                settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            )
            client = AsyncQdrantClient(
                url=settings.qdrant_url,
                api_key=api_key,
                timeout=max(1, round(timeout)),
                # The version probe runs in a thread at construction and only warns.
                check_compatibility=False,
            )
            location = Location(
                backend="server",
                url=redact_url(settings.qdrant_url),
                host_port=_host_port(settings.qdrant_url),
            )
        return cls(
            client=client, collection=settings.qdrant_collection, location=location, timeout=timeout
        )

    @property
    def embedded(self) -> bool:
        return self.location.backend == "embedded"

    async def _call(self, make: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run one client call with a bounded time and errors that name host and cause."""
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        limit = timeout if timeout is not None else self._timeout
        where = f"Qdrant at {self.location.host_port}"
        try:
            if self.embedded:
                # Local mode does its work in-process; a time limit would only abandon it.
                return await make()
            return await asyncio.wait_for(make(), timeout=limit + 1.0)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise StoreUnavailable(
                f"{where} did not answer within {limit:g} s: is the port blocked? {HF_HINT}"
            ) from exc
        except ResponseHandlingException as exc:
            raise self._transport_error(exc.source, where, limit) from exc
        except httpx.TransportError as exc:
            raise self._transport_error(exc, where, limit) from exc
        except UnexpectedResponse as exc:
            if exc.status_code in (401, 403):
                raise StoreUnavailable(
                    f"{where} refused access (HTTP {exc.status_code}): check QDRANT_API_KEY"
                ) from exc
            raise VectorStoreError(
                f"{where} answered HTTP {exc.status_code} {exc.reason_phrase}".strip()
            ) from exc

    @staticmethod
    def _transport_error(exc: BaseException, where: str, limit: float) -> StoreUnavailable:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return StoreUnavailable(
                f"{where} did not answer within {limit:g} s: is the port blocked? {HF_HINT}"
            )
        if isinstance(exc, httpx.ConnectError):
            reason = str(exc) or "connection failed"
            if "refused" in reason.lower() or "errno 111" in reason.lower():
                return StoreUnavailable(
                    f"{where} refused the connection: is Qdrant running, and is QDRANT_URL right?"
                )
            return StoreUnavailable(f"{where} could not be reached ({reason}). {HF_HINT}")
        return StoreUnavailable(f"{where} could not be reached: {type(exc).__name__}")

    async def identity(self) -> IndexIdentity | None:
        """Which embedders built the collection; None when it does not exist yet."""
        exists = await self._call(lambda: self._client.collection_exists(self.collection))
        if not exists:
            return None
        info = await self._call(lambda: self._client.get_collection(self.collection))
        meta = (info.config.metadata or {}).get(METADATA_KEY)
        if not meta:
            raise VectorStoreError(
                f"Qdrant collection {self.collection!r} was not created by bookchat (it has no "
                f"{METADATA_KEY!r} metadata): choose another QDRANT_COLLECTION."
            )
        return IndexIdentity.from_metadata(meta)

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
        from qdrant_client import models

        if await self.check_identity(using):
            return
        vectors = {}
        if using.dense is not None:
            assert using.dense_dims is not None
            vectors[DENSE] = models.VectorParams(
                size=using.dense_dims, distance=models.Distance.COSINE
            )
        await self._call(
            lambda: self._client.create_collection(
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
        if self.embedded:
            _tune_embedded_storage(self._client, self.collection)

    async def stored_chunks(self) -> dict[str, StoredChunk]:
        """Every point id in the collection with its page and position."""
        out: dict[str, StoredChunk] = {}
        offset = None
        while True:
            points, offset = await self._call(
                lambda offset=offset: self._client.scroll(
                    self.collection,
                    limit=1000,
                    offset=offset,
                    with_payload=["file", "position"],
                    with_vectors=False,
                )
            )
            for p in points:
                payload = p.payload or {}
                out[str(p.id)] = StoredChunk(
                    file=str(payload.get("file", "")), position=int(payload.get("position", 0))
                )
            if offset is None:
                return out

    async def upsert(self, points: Sequence[NewPoint]) -> None:
        """Write points (same id: replaced)."""
        from qdrant_client import models

        structs = []
        for p in points:
            vector: dict[str, Any] = {
                SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values)
            }
            if p.dense is not None:
                vector[DENSE] = p.dense
            structs.append(models.PointStruct(id=p.id, vector=vector, payload=p.payload))
        self._memory = None
        await self._call(
            lambda: self._client.upsert(self.collection, points=structs, wait=True),
            timeout=max(self._timeout, 30.0),
        )

    async def delete(self, ids: Sequence[str]) -> None:
        """Remove points by id."""
        from qdrant_client import models

        if not ids:
            return
        self._memory = None
        await self._call(
            lambda: self._client.delete(
                self.collection, points_selector=models.PointIdsList(points=list(ids)), wait=True
            ),
            timeout=max(self._timeout, 30.0),
        )

    async def set_position(self, ids_positions: dict[str, int]) -> None:
        """Update the stored position of chunks whose text did not change but moved."""
        by_position: dict[int, list[str]] = {}
        for pid, position in ids_positions.items():
            by_position.setdefault(position, []).append(pid)
        for position, ids in by_position.items():
            await self._call(
                lambda ids=ids, position=position: self._client.set_payload(
                    self.collection, payload={"position": position}, points=ids, wait=True
                )
            )

    async def count(self, *, exact: bool = False, timeout: float | None = None) -> int:
        """Number of points (0 when the collection does not exist)."""
        exists = await self._call(
            lambda: self._client.collection_exists(self.collection), timeout=timeout
        )
        if not exists:
            return 0
        result = await self._call(
            lambda: self._client.count(self.collection, exact=exact), timeout=timeout
        )
        return result.count

    async def search(
        self,
        *,
        sparse: SparseVec,
        dense: list[float] | None,
        limit: int,
        candidates: int,
    ) -> list[Hit]:
        """Hybrid search: BM25 and dense legs fused by reciprocal rank, or the one leg there is.

        Against a server, Qdrant's query API runs both legs and the fusion (prefetch + RRF).
        Embedded, the lexical leg comes from an in-memory index (see stores/lexical.py) and
        the fusion from qdrant-client's own RRF function, with the same results.
        """
        if not sparse.indices and dense is None:
            return []
        # The vectors come back so the reader-facing score can be a similarity, not a rank.
        with_vectors = [DENSE] if dense is not None else [SPARSE]
        if self.embedded and self.memory_index:
            points = await self._search_embedded(sparse, dense, limit, candidates, with_vectors)
        else:
            points = await self._search_query_api(sparse, dense, limit, candidates, with_vectors)
        hits = []
        for point in points:
            vectors = point.vector if isinstance(point.vector, dict) else {}
            dense_vec = vectors.get(DENSE)
            sparse_vec = vectors.get(SPARSE)
            hits.append(
                Hit(
                    payload=point.payload or {},
                    dense=list(dense_vec) if dense_vec is not None else None,  # type: ignore[arg-type]
                    sparse=(list(sparse_vec.indices), list(sparse_vec.values))
                    if sparse_vec is not None and hasattr(sparse_vec, "indices")
                    else None,
                )
            )
        return hits

    async def _search_query_api(
        self,
        sparse: SparseVec,
        dense: list[float] | None,
        limit: int,
        candidates: int,
        with_vectors: list[str],
    ) -> list[Any]:
        from qdrant_client import models

        legs: list[models.Prefetch] = []
        if sparse.indices:
            legs.append(
                models.Prefetch(
                    query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                    using=SPARSE,
                    limit=candidates,
                )
            )
        if dense is not None:
            legs.append(models.Prefetch(query=dense, using=DENSE, limit=candidates))
        if len(legs) == 1:
            leg = legs[0]
            call = lambda: self._client.query_points(  # noqa: E731
                self.collection,
                query=leg.query,
                using=leg.using,
                limit=limit,
                with_payload=True,
                with_vectors=with_vectors,
            )
        else:
            call = lambda: self._client.query_points(  # noqa: E731
                self.collection,
                prefetch=legs,
                query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=limit,
                with_payload=True,
                with_vectors=with_vectors,
            )
        return (await self._call(call)).points

    async def _search_embedded(
        self,
        sparse: SparseVec,
        dense: list[float] | None,
        limit: int,
        candidates: int,
        with_vectors: list[str],
    ) -> list[Any]:
        from qdrant_client import models
        from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

        lexical, dense_index = await self._memory_index()
        found: list[list[tuple[str, float]]] = []
        if sparse.indices:
            found.append(lexical.search(sparse.indices, sparse.values, candidates))
        if dense is not None and dense_index is not None:
            found.append(dense_index.search(dense, candidates))
        legs = [[models.ScoredPoint(id=i, version=0, score=s) for i, s in leg] for leg in found]
        if not legs:
            return []
        ranked = legs[0][:limit] if len(legs) == 1 else reciprocal_rank_fusion(legs, limit=limit)
        if not ranked:
            return []
        fetched = await self._client.retrieve(
            self.collection,
            ids=[p.id for p in ranked],
            with_payload=True,
            with_vectors=with_vectors,
        )
        by_id = {str(p.id): p for p in fetched}
        return [by_id[str(p.id)] for p in ranked if str(p.id) in by_id]

    async def warm(self) -> None:
        """Build the in-memory copies of an embedded collection now."""
        if self.embedded and self.memory_index:
            await self._memory_index()

    async def _memory_index(self) -> tuple[LexicalIndex, DenseIndex | None]:
        """The embedded collection's vectors in memory, loaded on first use after each write."""
        from bookchat.stores.memory_index import DenseIndex, LexicalIndex

        if self._memory is None:
            info = await self._client.get_collection(self.collection)
            vectors_config = info.config.params.vectors
            dims = (
                vectors_config[DENSE].size
                if isinstance(vectors_config, dict) and DENSE in vectors_config
                else None
            )
            ids: list[str] = []
            sparse: list[tuple[list[int], list[float]]] = []
            dense: list[list[float] | None] = []
            offset = None
            while True:
                points, offset = await self._client.scroll(
                    self.collection,
                    limit=2000,
                    offset=offset,
                    with_payload=False,
                    with_vectors=[SPARSE, DENSE] if dims else [SPARSE],
                )
                for p in points:
                    vectors = p.vector if isinstance(p.vector, dict) else {}
                    sv = vectors.get(SPARSE)
                    ids.append(str(p.id))
                    sparse.append(
                        (list(sv.indices), list(sv.values)) if sv is not None else ([], [])
                    )  # type: ignore[union-attr]
                    dense.append(vectors.get(DENSE))  # type: ignore[arg-type]
                if offset is None:
                    break
            self._memory = (
                LexicalIndex(ids, sparse),
                DenseIndex(ids, dense, dims) if dims else None,
            )
        return self._memory

    async def close(self) -> None:
        """Release the client (and the embedded folder's lock)."""
        await self._client.close()
