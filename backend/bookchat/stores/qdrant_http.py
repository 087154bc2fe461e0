"""The book's collection on a Qdrant server, over Qdrant's REST API with httpx (no qdrant-client).

Why not qdrant-client here: a process that imports it pays for its REST models (31 MiB; pydantic
schema building was 37 % of start-up CPU) and gRPC/protobuf (8.5 MiB), once per worker process,
to send nine kinds of small JSON request. The bodies below are the ones qdrant-client 1.20 sends
for the same calls (its OpenAPI-generated http/api/*.py and http/models/models.py), and
tests/fakes/qdrant.py validates each against those models. Every answer comes in Qdrant's
envelope `{"result": ..., "status": "ok", "time": ...}`; an error status is raised as
QdrantHTTPError, which stores/errors.py guarded() words. JSON goes through pydantic-core's
parser and encoder (installed with FastAPI; neither orjson nor msgspec is): a 30-hit answer
with 256-dimension vectors parses in 0.6 ms against 4.1 ms with the stdlib's json (its float
parsing), and 64 points encode in 2.2 ms against 21 ms.

ServerVectorStore is the VectorStore (stores/vectors.py) over QdrantServer: it bounds the time of
every call and turns its failures into one sentence naming the host and what to do
(stores/errors.py guarded).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic_core import from_json, to_json

from bookchat.redact import redact_url
from bookchat.stores.connection import Location, host_port
from bookchat.stores.errors import DEFAULT_PORT, QdrantHTTPError, guarded
from bookchat.stores.identity import DENSE, METADATA_KEY, SPARSE
from bookchat.stores.vectors import SCROLL_PAGE, Hit, ScrolledPoint, VectorStore

if TYPE_CHECKING:
    from bookchat.stores.identity import IndexIdentity, SparseVector
    from bookchat.stores.vectors import NewPoint

log = logging.getLogger(__name__)
T = TypeVar("T")


def _as_is(result: Any) -> Any:
    return result


def rest_base(url: str) -> str:
    """The REST root qdrant-client derives from QDRANT_URL: port 6333 when none is named, and
    the URL's path kept as a prefix (a proxy in front of Qdrant)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    return f"{parts.scheme}://{host}:{parts.port or DEFAULT_PORT}{parts.path.rstrip('/')}"


def _on_this_machine(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class QdrantServer:
    """One collection on a Qdrant server: the calls ServerVectorStore makes, over one pooled
    client.

    Every method takes the seconds its request may last (connect, and each read); the caller
    (ServerVectorStore._call) bounds the whole call and words the failures.
    """

    def __init__(
        self,
        *,
        url: str,
        collection: str,
        api_key: str | None,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"content-type": "application/json"}
        if api_key:
            headers["api-key"] = api_key  # Qdrant Cloud's header (qdrant-client sends the same)
            parts = urlsplit(url)
            if parts.scheme == "http" and not _on_this_machine((parts.hostname or "").lower()):
                # qdrant-client warned of this too; the key would cross the network in clear.
                log.warning(
                    "QDRANT_API_KEY is sent to %s over plain http, readable on the way: "
                    "use https://",
                    redact_url(url),
                )
        self._client = httpx.AsyncClient(
            base_url=rest_base(url),
            headers=headers,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )
        self._path = f"/collections/{quote(collection, safe='')}"

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        timeout: float,
        body: dict[str, Any] | None = None,
        wait: bool = False,
        read: Callable[[Any], T] = _as_is,
    ) -> T:
        """`read` of the `result` of one request; QdrantHTTPError for any status but 200, and
        for an answer not shaped as Qdrant's (so it never surfaces as a KeyError)."""
        response = await self._client.request(
            method,
            self._path + path,
            content=None if body is None else to_json(body),
            # Writes return once applied, so the next read (or the next process) sees them.
            params={"wait": "true"} if wait else None,
            timeout=timeout,
        )
        if response.status_code != 200:
            raise QdrantHTTPError(response.status_code, response.reason_phrase)
        try:
            return read(from_json(response.content)["result"])
        except (ValueError, KeyError, TypeError, AttributeError):
            # A 200 that is not Qdrant's envelope: a proxy's page, or not Qdrant at all.
            raise QdrantHTTPError(200, "with a body that is not Qdrant's JSON") from None

    async def exists(self, *, timeout: float) -> bool:
        """Whether the collection exists (GET /collections/{name}/exists)."""
        return await self._call(
            "GET", "/exists", timeout=timeout, read=lambda r: r["exists"] is True
        )

    async def metadata(self, *, timeout: float) -> dict[str, Any]:
        """The collection's metadata, {} when it has none (GET /collections/{name})."""
        return await self._call(
            "GET", "", timeout=timeout, read=lambda info: dict(info["config"].get("metadata") or {})
        )

    async def create(
        self, *, dense_dims: int | None, metadata: dict[str, Any], timeout: float
    ) -> None:
        """Create the collection: "dense" (cosine) when dims are given, and "bm25" with IDF."""
        vectors = {} if dense_dims is None else {DENSE: {"size": dense_dims, "distance": "Cosine"}}
        body = {
            "vectors": vectors,
            # BM25's IDF comes from the collection, so weights stay valid as it grows.
            "sparse_vectors": {SPARSE: {"modifier": "idf"}},
            "metadata": metadata,
        }
        await self._call("PUT", "", body=body, timeout=timeout)

    async def count(self, *, exact: bool, timeout: float) -> int:
        """Number of points (POST /points/count)."""
        body = {"exact": exact}
        return await self._call(
            "POST", "/points/count", body=body, timeout=timeout, read=lambda r: int(r["count"])
        )

    async def scroll(
        self,
        *,
        fields: list[str],
        limit: int,
        offset: str | None,
        timeout: float,
        vectors: list[str] | None = None,
    ) -> tuple[list[ScrolledPoint], str | None]:
        """One page of (id, payload with `fields`, named `vectors`) and the offset of the next
        (None: done)."""
        body: dict[str, Any] = {
            "limit": limit,
            "with_payload": fields,
            "with_vector": vectors or False,
        }
        if offset is not None:
            body["offset"] = offset

        def read(result: Any) -> tuple[list[ScrolledPoint], str | None]:
            points = []
            for p in result["points"]:
                named = p.get("vector") or {}
                if (weights := named.get(SPARSE)) is not None:
                    named[SPARSE] = (list(weights["indices"]), list(weights["values"]))
                points.append((str(p["id"]), p.get("payload") or {}, named))
            following = result.get("next_page_offset")
            return points, None if following is None else str(following)

        return await self._call("POST", "/points/scroll", body=body, timeout=timeout, read=read)

    async def upsert(self, points: Sequence[NewPoint], *, timeout: float) -> None:
        """Write points (same id: replaced), PUT /points?wait=true."""
        structs = []
        for p in points:
            vector: dict[str, Any] = {
                SPARSE: {"indices": list(p.sparse.indices), "values": list(p.sparse.values)}
            }
            if p.dense is not None:
                vector[DENSE] = list(p.dense)
            structs.append({"id": p.id, "vector": vector, "payload": p.payload})
        await self._call("PUT", "/points", body={"points": structs}, wait=True, timeout=timeout)

    async def delete(self, ids: Sequence[str], *, timeout: float) -> None:
        """Remove points by id (POST /points/delete?wait=true)."""
        body = {"points": list(ids)}
        await self._call("POST", "/points/delete", body=body, wait=True, timeout=timeout)

    async def set_payload(
        self, payload: dict[str, Any], ids: Sequence[str], *, timeout: float
    ) -> None:
        """Merge `payload` into these points' payloads (POST /points/payload?wait=true)."""
        body = {"payload": payload, "points": list(ids)}
        await self._call("POST", "/points/payload", body=body, wait=True, timeout=timeout)

    async def query(
        self,
        *,
        sparse: SparseVector,
        dense: list[float] | None,
        limit: int,
        candidates: int,
        timeout: float,
    ) -> list[Hit]:
        """Hybrid search on the server (POST /points/query): one leg queried directly, two
        prefetched and fused by reciprocal rank. The vectors come back so the reader-facing
        score can be a similarity, not a rank."""
        legs: list[dict[str, Any]] = []
        if sparse.indices:
            terms = {"indices": list(sparse.indices), "values": list(sparse.values)}
            legs.append({"query": {"nearest": terms}, "using": SPARSE, "limit": candidates})
        if dense is not None:
            legs.append({"query": {"nearest": list(dense)}, "using": DENSE, "limit": candidates})
        if not legs:
            return []
        body: dict[str, Any] = (
            {"query": legs[0]["query"], "using": legs[0]["using"]}
            if len(legs) == 1
            else {"prefetch": legs, "query": {"fusion": "rrf"}}
        )
        body.update(
            limit=limit, with_payload=True, with_vector=[DENSE] if dense is not None else [SPARSE]
        )
        return await self._call(
            "POST",
            "/points/query",
            body=body,
            timeout=timeout,
            read=lambda result: [_hit(point) for point in result["points"]],
        )


def _hit(point: dict[str, Any]) -> Hit:
    """A Hit from a ScoredPoint's JSON: payload and its named vectors."""
    vectors = point.get("vector")
    vectors = vectors if isinstance(vectors, dict) else {}
    dense = vectors.get(DENSE)
    sparse = vectors.get(SPARSE)
    return Hit(
        payload=point.get("payload") or {},
        dense=list(dense) if isinstance(dense, list) else None,
        sparse=(list(sparse["indices"]), list(sparse["values"]))
        if isinstance(sparse, dict)
        else None,
    )


class ServerVectorStore(VectorStore):
    """The book's collection on a Qdrant server (QDRANT_URL), reached over its REST API."""

    def __init__(
        self, *, server: QdrantServer, collection: str, location: Location, timeout: float = 3.0
    ) -> None:
        super().__init__(collection=collection, location=location)
        self._server = server
        self._timeout = timeout

    @classmethod
    def open(
        cls, *, url: str, collection: str, api_key: str | None = None, timeout: float = 3.0
    ) -> ServerVectorStore:
        """The collection on the server at `url`; nothing is sent until a method is called."""
        server = QdrantServer(url=url, collection=collection, api_key=api_key, timeout=timeout)
        location = Location(backend="server", url=redact_url(url), host_port=host_port(url))
        return cls(server=server, collection=collection, location=location, timeout=timeout)

    async def _call(
        self,
        make: Callable[[float], Awaitable[T]],
        *,
        timeout: float | None = None,
        at_least: float = 0.0,
    ) -> T:
        """Run one request, `make(seconds)`, bounded to `timeout` (else the store's) and never
        under `at_least`, with errors that name host and cause."""
        limit = max(timeout if timeout is not None else self._timeout, at_least)
        return await guarded(
            lambda: make(limit), where=f"Qdrant at {self.location.host_port}", limit=limit
        )

    async def _metadata(self) -> dict[str, Any] | None:
        server = self._server
        if not await self._call(lambda limit: server.exists(timeout=limit)):
            return None
        return await self._call(lambda limit: server.metadata(timeout=limit))

    async def _create(self, using: IndexIdentity) -> None:
        await self._call(
            lambda limit: self._server.create(
                dense_dims=using.dense_dims if using.dense is not None else None,
                metadata={METADATA_KEY: using.as_metadata()},
                timeout=limit,
            ),
            at_least=10.0,
        )

    async def count(self, *, exact: bool = False, timeout: float | None = None) -> int:
        server = self._server
        if not await self._call(lambda limit: server.exists(timeout=limit), timeout=timeout):
            return 0
        return await self._call(
            lambda limit: server.count(exact=exact, timeout=limit), timeout=timeout
        )

    async def _scroll(
        self, fields: list[str], vectors: list[str] | None = None
    ) -> AsyncIterator[ScrolledPoint]:
        page: str | None = None
        while True:
            found, page = await self._call(
                lambda limit, page=page: self._server.scroll(
                    fields=fields, vectors=vectors, limit=SCROLL_PAGE, offset=page, timeout=limit
                )
            )
            for point in found:
                yield point
            if page is None:
                return

    async def _upsert(self, points: Sequence[NewPoint]) -> None:
        await self._call(lambda limit: self._server.upsert(points, timeout=limit), at_least=30.0)

    async def _delete(self, ids: Sequence[str]) -> None:
        await self._call(lambda limit: self._server.delete(ids, timeout=limit), at_least=30.0)

    async def _set_positions(self, by_position: dict[int, list[str]]) -> None:
        for position, ids in by_position.items():
            await self._call(
                lambda limit, ids=ids, position=position: self._server.set_payload(
                    {"position": position}, ids, timeout=limit
                )
            )

    async def _search(
        self, *, sparse: SparseVector, dense: list[float] | None, limit: int, candidates: int
    ) -> list[Hit]:
        # Qdrant's query API runs both legs and the fusion (prefetch + RRF).
        return await self._call(
            lambda seconds: self._server.query(
                sparse=sparse, dense=dense, limit=limit, candidates=candidates, timeout=seconds
            )
        )

    async def close(self) -> None:
        await self._server.aclose()
