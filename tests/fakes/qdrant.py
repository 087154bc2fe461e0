"""A fake Qdrant server speaking Qdrant's REST API, built on qdrant-client's own local mode.

It is a real HTTP server on 127.0.0.1 (uvicorn in a background thread), so bookchat's REST
client (stores/qdrant_http.py), in the test process or in a spawned `bookchat serve`, talks to
it over the wire. Each request body is validated with qdrant-client's OpenAPI-generated models
(the ones a real server's schema produced, `extra="forbid"`): a body the real server would
refuse is answered 400 as Qdrant answers it and kept in `rejected`, so the test fails. The
points live in `QdrantClient(":memory:")`, which searches (prefetch, RRF, IDF) as the server
does. Answers use Qdrant's envelope: {"result": ..., "status": "ok", "time": seconds}.

Endpoints (what bookchat uses):
  GET  /collections/{name}/exists            PUT  /collections/{name}          (CreateCollection)
  GET  /collections/{name}                   POST /collections/{name}/points/count   (CountRequest)
  POST /collections/{name}/points/scroll     (ScrollRequest)
  PUT  /collections/{name}/points?wait=      (PointInsertOperations)
  POST /collections/{name}/points/delete?wait=  (PointsSelector)
  POST /collections/{name}/points/payload?wait= (SetPayload)
  POST /collections/{name}/points/query      (QueryRequest)

With `api_key` set, a request without that `api-key` header gets 401, as Qdrant answers; with
`read_only_key`, that key may read and a write with it gets 403. Per test, queue behaviours
for the next requests with `script(...)`: Fail (an HTTP status), Stall (wait, then answer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from pydantic import TypeAdapter, ValidationError
from qdrant_client import QdrantClient, models
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class Fail:
    """Answer the next matching request with this status and Qdrant's error body."""

    status: int = 503
    on: str | None = None  # a path suffix such as "/points/query"; None: any request


@dataclass(frozen=True)
class Stall:
    """Wait this long before handling the next matching request."""

    seconds: float
    on: str | None = None


Behaviour = Fail | Stall


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (the api-key header is never recorded)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    had_api_key: bool
    received_at: float = field(default_factory=time.monotonic)


class QdrantError(Exception):
    """Answer with this status and {"status": {"error": message}}, as Qdrant does."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_WRITES = {("PUT", ""), ("PUT", "/points"), ("POST", "/points/delete"), ("POST", "/points/payload")}
_INSERT = TypeAdapter(models.PointInsertOperations)
_SELECTOR = TypeAdapter(models.PointsSelector)


def _dump(value: Any) -> Any:
    """JSON of a qdrant-client model as the server sends it (unset optionals left out)."""
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value.model_dump(mode="json", exclude_none=True)


class FakeQdrant:
    """A fake Qdrant server; use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        read_only_key: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.read_only_key = read_only_key
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._rejected: list[str] = []
        self._queue: deque[Behaviour] = deque()
        self._local = QdrantClient(location=":memory:")
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # Public API -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL to give QDRANT_URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since the last reset()."""
        with self._lock:
            return list(self._requests)

    @property
    def rejected(self) -> list[str]:
        """Why each body the real server would refuse was refused (empty when all were valid)."""
        with self._lock:
            return list(self._rejected)

    @property
    def client(self) -> QdrantClient:
        """The local-mode client holding the fake's collections (to look inside in a test)."""
        return self._local

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each is used by the next request it matches (`on`)."""
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        """Drop every collection, the recorded requests, the script and the keys."""
        with self._lock:
            self._requests.clear()
            self._rejected.clear()
            self._queue.clear()
            self.api_key = self.read_only_key = None
            for collection in self._local.get_collections().collections:
                self._local.delete_collection(collection.name)

    def start(self) -> FakeQdrant:
        """Serve in a background thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        app = Starlette(
            routes=[
                Route("/collections/{name}", self._collection, methods=["GET", "PUT"]),
                Route("/collections/{name}/exists", self._exists, methods=["GET"]),
                Route("/collections/{name}/points", self._upsert, methods=["PUT"]),
                Route("/collections/{name}/points/{action}", self._points, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-qdrant", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Qdrant server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeQdrant:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Requests ---------------------------------------------------------------------------------

    async def _handle(
        self, request: Request, action: str, run: Callable[[Any], Any], *, write: bool = False
    ) -> Response:
        """Record, authorise, play the script, validate and run one request, in the envelope."""
        started = time.monotonic()
        raw = await request.body()
        key = request.headers.get("api-key")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=dict(request.query_params),
                    body=body,
                    had_api_key=key is not None,
                )
            )
        behaviour = self._next_behaviour(request.url.path)
        if isinstance(behaviour, Stall):
            await asyncio.sleep(behaviour.seconds)
        try:
            if isinstance(behaviour, Fail):
                raise QdrantError(behaviour.status, "scripted failure")
            if self.api_key is not None and key not in (self.api_key, self.read_only_key):
                raise QdrantError(401, "Must provide an API key or an Authorization bearer token")
            if write and self.read_only_key is not None and key == self.read_only_key:
                raise QdrantError(403, "Forbidden: Write access is required")
            wait = request.query_params.get("wait")
            if wait is not None and wait not in ("true", "false"):
                self._reject(f"{action}: wait={wait!r} is not a boolean")
                raise QdrantError(400, f"Query deserialize error: wait={wait}")
            try:
                result = run(body)
            except ValidationError as exc:
                self._reject(f"{action}: {exc}")
                raise QdrantError(
                    400, f"Json deserialize error: {exc.errors()[0]['msg']}"
                ) from None
            except ValueError as exc:
                # What local mode refuses past the schema (duplicate sparse indices, a wrong
                # dimension) the server refuses too.
                self._reject(f"{action}: {exc}")
                raise QdrantError(400, f"Wrong input: {exc}") from None
        except QdrantError as exc:
            return self._reply({"status": {"error": str(exc)}}, exc.status, started)
        return self._reply({"result": result, "status": "ok"}, 200, started)

    def _reply(self, envelope: dict[str, Any], status: int, started: float) -> Response:
        envelope["time"] = time.monotonic() - started
        return Response(json.dumps(envelope), status, media_type="application/json")

    def _reject(self, why: str) -> None:
        with self._lock:
            self._rejected.append(why)

    def _next_behaviour(self, path: str) -> Behaviour | None:
        with self._lock:
            for index, behaviour in enumerate(self._queue):
                if behaviour.on is None or path.endswith(behaviour.on):
                    del self._queue[index]
                    return behaviour
        return None

    def _existing(self, name: str) -> str:
        if not self._local.collection_exists(name):
            raise QdrantError(404, f"Not found: Collection `{name}` doesn't exist!")
        return name

    async def _exists(self, request: Request) -> Response:
        name = request.path_params["name"]
        return await self._handle(
            request, "exists", lambda _: {"exists": self._local.collection_exists(name)}
        )

    async def _collection(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            return await self._handle(
                request, "get", lambda _: _dump(self._local.get_collection(self._existing(name)))
            )

        def create(body: Any) -> bool:
            spec = models.CreateCollection.model_validate(body)
            if self._local.collection_exists(name):
                raise QdrantError(400, f"Wrong input: Collection `{name}` already exists!")
            return self._local.create_collection(
                name,
                vectors_config=spec.vectors if spec.vectors is not None else {},
                sparse_vectors_config=spec.sparse_vectors,
                metadata=spec.metadata,
            )

        return await self._handle(request, "create", create, write=True)

    async def _upsert(self, request: Request) -> Response:
        name = request.path_params["name"]

        def upsert(body: Any) -> Any:
            operation = _INSERT.validate_python(body)
            if not isinstance(operation, models.PointsList):
                raise QdrantError(400, "the fake takes a list of points only")
            return _dump(self._local.upsert(self._existing(name), points=operation.points))

        return await self._handle(request, "upsert", upsert, write=True)

    async def _points(self, request: Request) -> Response:
        name = request.path_params["name"]
        action = request.path_params["action"]
        runs: dict[str, Callable[[Any], Any]] = {
            "count": lambda body: self._count(name, body),
            "scroll": lambda body: self._scroll(name, body),
            "query": lambda body: self._query(name, body),
            "delete": lambda body: self._delete(name, body),
            "payload": lambda body: self._set_payload(name, body),
        }
        run = runs.get(action)
        if run is None:
            return self._reply(
                {"status": {"error": f"no fake for {action}"}}, 404, time.monotonic()
            )
        return await self._handle(request, action, run, write=action in ("delete", "payload"))

    def _count(self, name: str, body: Any) -> Any:
        spec = models.CountRequest.model_validate(body or {})
        return _dump(self._local.count(self._existing(name), exact=bool(spec.exact)))

    def _scroll(self, name: str, body: Any) -> Any:
        spec = models.ScrollRequest.model_validate(body or {})
        points, following = self._local.scroll(
            self._existing(name),
            limit=spec.limit or 10,
            offset=spec.offset,
            with_payload=spec.with_payload if spec.with_payload is not None else True,
            with_vectors=spec.with_vector if spec.with_vector is not None else False,
        )
        return {"points": _dump(list(points)), "next_page_offset": following}

    def _query(self, name: str, body: Any) -> Any:
        spec = models.QueryRequest.model_validate(body or {})
        found = self._local.query_points(
            self._existing(name),
            query=spec.query,
            using=spec.using,
            prefetch=spec.prefetch,
            limit=spec.limit or 10,
            with_payload=spec.with_payload if spec.with_payload is not None else False,
            with_vectors=spec.with_vector if spec.with_vector is not None else False,
        )
        return {"points": _dump(found.points)}

    def _delete(self, name: str, body: Any) -> Any:
        selector = _SELECTOR.validate_python(body)
        return _dump(self._local.delete(self._existing(name), points_selector=selector))

    def _set_payload(self, name: str, body: Any) -> Any:
        spec = models.SetPayload.model_validate(body)
        return _dump(
            self._local.set_payload(self._existing(name), payload=spec.payload, points=spec.points)
        )


def main(argv: list[str] | None = None) -> int:
    """Run the fake standalone until interrupted (for benchmarks and manual runs)."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.qdrant")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    fake = FakeQdrant(host=args.host, port=args.port, api_key=args.api_key)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with fake:
        print(f"fake-qdrant listening on {fake.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
