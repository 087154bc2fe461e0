"""`bookchat serve`: run the HTTP service under uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from bookchat.cli.places import data_dir_lines
from bookchat.paths import data_dir_now

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bookchat.config import Settings
    from bookchat.runtime import Runtime
    from bookchat.stores.index_dir import ServedIndex

log = logging.getLogger(__name__)

# How often the announcer looks at the start-up phase: cheap, and quick enough for a person.
READY_POLL_SECONDS = 0.1

SERVE_EPILOG = """\
where data lives:
  the index (embedded Qdrant) and the conversations (SQLite) are in the data dir,
  now {data_dir}:
  BOOKCHAT_DATA_DIR if set, else $XDG_DATA_HOME/bookchat, else ~/.local/share/bookchat,
  the same folder wherever serve or ingest runs. QDRANT_URL and DATABASE_URL move them
  to servers. An empty index gets the bundled sample book; `bookchat ingest PATH` puts
  your book in its place.

examples:
  bookchat serve                              http://127.0.0.1:8000/
  bookchat serve --host 0.0.0.0 --port 7860   what the container runs
"""


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1 to 65535)")
    return port


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `serve` subcommand."""

    parser = subparsers.add_parser(
        "serve",
        help="run the chat service (HTTP API and chat page)",
        description="Run the chat service. Configuration comes from the environment.",
        epilog=SERVE_EPILOG.format(data_dir=data_dir_now()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="interface to listen on (default: HOST or 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="TCP port (default: PORT or 8000)")
    parser.set_defaults(handler=serve)


def first_request_deadline_protocol() -> type[Any]:
    """uvicorn's httptools protocol, closing a connection whose first request is not in time.

    uvicorn arms its keep-alive timeout only after a response; a socket that connects and sends
    nothing (or a header a byte at a time) is never closed, and with limit_concurrency each one
    takes a slot that a reader needs. The deadline is the keep-alive timeout. The class is
    made once, on first use: uvicorn's protocol modules load only when serving.
    """
    global _FirstRequestDeadline
    if _FirstRequestDeadline is not None:
        return _FirstRequestDeadline
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from bookchat.api.errors import error_body

    class FirstRequestDeadline(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        # Bytes read since the current request began while its headers are incomplete:
        # httptools buffers a header until it ends, so a 16 MB header line would be 16 MB held.
        _head_bytes = 0
        _in_head = True

        _refused = False

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # the rest of a refused request is read and dropped
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            # Checked after parsing: a chunk that also carries the body has completed the head.
            if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, "request_headers_too_large", _HEAD_TOO_LARGE)

        def on_message_complete(self) -> None:
            # The next request's head starts now (counting from on_message_begin would miss
            # the chunk that began it).
            self._in_head, self._head_bytes = True, 0
            super().on_message_complete()

        def on_headers_complete(self) -> None:
            self._in_head = False
            # The head's exact size, now that it is whole (a long URL arrives in one chunk).
            size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
            if size > MAX_HEAD_BYTES:
                self._refuse(431, "request_headers_too_large", _HEAD_TOO_LARGE)
                return
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            # uvicorn's own answer is text/plain; every error of bookchat's is JSON. httptools
            # gives up on a very long head too (80 KB): that is a head too large, not garbage.
            if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, "request_headers_too_large", _HEAD_TOO_LARGE)
            else:
                self._refuse(400, "invalid_http", _INVALID_HTTP)

        def _refuse(self, status: int, code: str, detail: str) -> None:
            if self._refused or self.transport.is_closing():
                return
            self._refused = True
            body = json.dumps(error_body(code, detail)).encode()
            head = (
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                "content-type: application/json\r\n"
                f"content-length: {len(body)}\r\n"
                "connection: close\r\n\r\n"
            )
            self.transport.write(head.encode("ascii") + body)
            # Closing with the client's bytes unread would reset the connection and lose the
            # answer: end our side, drop what still comes, and close a moment later.
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(1.0, self.transport.close)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline = self.loop.call_later(self.timeout_keep_alive, self._no_request_in_time)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _no_request_in_time(self) -> None:
            # cycle is set once a request's headers are complete.
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

    _FirstRequestDeadline = FirstRequestDeadline
    return FirstRequestDeadline


_FirstRequestDeadline: type[Any] | None = None
# A request line and headers larger than this get 431 (browsers send a few kB; Node's cap is
# 16 KiB, nginx's default 32 KiB): one connection cannot make the server hold megabytes.
MAX_HEAD_BYTES = 32 * 1024
_HEAD_TOO_LARGE = "The request's headers are too large (more than 32 KiB)."
_INVALID_HTTP = "This is not a valid HTTP request."


def stop_streams_after(grace: float) -> float:
    """Seconds into a shutdown at which open answers are told to end (before the hard cut)."""
    # The margin lets each stream send its last event and store its partial answer.
    return max(0.0, grace - min(2.0, grace / 2))


def draining_server(config: Any, stop_streams: Any, grace: float) -> Any:
    """A uvicorn Server that tells the app's open streams to end before cutting them."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # uvicorn waits `grace` seconds for open responses, then cancels them: a cancelled
            # stream cannot send another event, so the streams are told to end just before.
            handle = asyncio.get_running_loop().call_later(stop_streams_after(grace), stop_streams)
            try:
                await super().shutdown(sockets)
            finally:
                handle.cancel()

    return DrainingServer(config)


def stop_streams_of(app: Any) -> None:
    """Tell the app's open answers to end (with server_restarting) and store what was shown."""
    runtime = getattr(app.state, "runtime", None) if app is not None else None
    if runtime is not None:
        runtime.stopping.set()


_worker_app: Any = None  # the app worker_app built in this (worker) process
# What each worker process serves: its settings (the caps split), the index as prepared for
# it, the address to announce and when serve started the workers; set by serve before the
# workers are forked, so each finds it in its copy of this module.
_worker_setup: tuple[Settings, ServedIndex | None, str, datetime] | None = None
# Whether this worker prints "ready" (or why not) to the terminal: the first one started does,
# so a person reads it once.
_announces = False


def worker_app() -> Any:
    """The app of one worker process (uvicorn calls this factory in each one)."""
    from bookchat.app import create_app  # imported already: the workers are forked after it

    global _worker_app
    assert _worker_setup is not None, "serve sets it before it forks the workers"
    settings, index, url, started_at = _worker_setup
    # One start for every worker, also one started in place of a worker that died: questions
    # stored without an owner (by an older bookchat) count as dead only if asked before it,
    # never as the other workers answer theirs (the owned ones: stores/owners.py).
    _worker_app = create_app(settings, index=index, started_at=started_at)
    if _announces:
        announce_when_ready(_worker_app, url)
    return _worker_app


# prctl(2)'s option: the signal this process gets when the thread that forked it ends.
_PR_SET_PDEATHSIG = 1


def stop_when_orphaned(supervisor: int) -> None:
    """In a worker: get SIGTERM (a draining stop) when the supervisor dies, however it dies.

    A worker left behind by a SIGKILLed supervisor would keep the port, the index's shared lock
    (ingest refused) and its questions, with no one left to stop it. Linux only; workers are
    forked from the supervisor's main thread, which lives as long as the supervisor.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("this worker will not stop with its supervisor: prctl failed")
        return
    if os.getppid() != supervisor:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def draining_process() -> type[Any]:
    """uvicorn's worker process, with a server that drains open answers as a single one does."""
    global _DrainingProcess
    if _DrainingProcess is not None:
        return _DrainingProcess
    import multiprocessing

    from uvicorn._subprocess import subprocess_started
    from uvicorn.supervisors.multiprocess import Process

    fork = multiprocessing.get_context("fork")

    class DrainingProcess(Process):
        made = 0

        def __init__(self, config: Any, sockets: list[Any]) -> None:
            super().__init__(config, sockets)
            self.announces = DrainingProcess.made == 0
            self.supervisor = os.getpid()
            DrainingProcess.made += 1
            # Forked, not spawned as uvicorn does: the parent has imported the app and the
            # backends (and loaded the offline embedder's table), so the workers share those
            # pages copy-on-write and skip the imports (backend/docs/benchmarks.md).
            self.process = fork.Process(
                target=subprocess_started,
                kwargs={
                    "config": config,
                    "target": self.target,
                    "sockets": sockets,
                    "stdin_fileno": None,  # inherited as it is
                },
            )

        def target(self, sockets: list[Any] | None = None) -> None:
            global _announces
            _announces = self.announces  # in the forked worker
            stop_when_orphaned(self.supervisor)
            super().target(sockets)

        @property
        def server(self) -> Any:
            if self._server is None:
                grace = float(self.config.timeout_graceful_shutdown or 0)
                self._server = draining_server(
                    self.config, lambda: stop_streams_of(_worker_app), grace
                )
            return self._server

    _DrainingProcess = DrainingProcess
    return DrainingProcess


_DrainingProcess: type[Any] | None = None


def run_workers(config: Any, settings: Settings, index: ServedIndex | None, url: str) -> None:
    """What uvicorn.run does for workers (one socket, bound here), with draining workers forked
    once the app and its backends are imported here."""
    from uvicorn.supervisors import Multiprocess, multiprocess

    from bookchat import backends
    from bookchat.runtime import preload

    global _worker_setup
    started_at = datetime.now(UTC)
    _worker_setup = backends.per_worker(settings, config.workers), index, url, started_at
    preload(settings)
    # Every worker uvicorn starts (at first, on SIGHUP, in place of one that died) is ours.
    multiprocess.Process = draining_process()  # type: ignore[misc]
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    # Forked children inherit the heap as it is now: frozen objects are never scanned by their
    # collector (which would write to, and so copy, nearly every page). The GC stays off in the
    # workers until their start-up settles the heap (runtime.settle_start_up_heap).
    gc.freeze()
    gc.disable()
    start = supervisor.init_processes

    def init_processes() -> None:
        try:
            start()
        finally:
            gc.enable()  # in the supervisor, once its first workers are forked

    supervisor.init_processes = init_processes  # type: ignore[method-assign]
    supervisor.run()


def url_to_open(host: str, port: int) -> str:
    """The address a person opens: a wildcard listen address means this machine."""
    if host in {"", "0.0.0.0"}:  # noqa: S104 (a comparison: nothing binds here)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    netloc = f"[{host}]" if ":" in host else host
    return f"http://{netloc}:{port}/"


def announce_when_ready(app: FastAPI, url: str) -> None:
    """Print the URL to open once start-up is done (and why, if it is not yet)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            announcer = asyncio.create_task(_announce(app.state.runtime, url))
            try:
                yield state
            finally:
                announcer.cancel()

    app.router.lifespan_context = lifespan


async def _announce(runtime: Runtime, url: str) -> None:
    # Polled: the runtime has no "ready" event of its own, and a tenth of a second is nothing
    # next to start-up.
    told: str | None = None
    while not runtime.ready:
        if runtime.phase == "failed" and runtime.error and told is None:
            told = runtime.error
            sys.stderr.write(f"bookchat: not ready: {told}; retrying\n")
        await asyncio.sleep(READY_POLL_SECONDS)
    sys.stderr.write(f"bookchat: ready: open {url}{await _answering_from(runtime)}\n")
    sys.stderr.flush()


async def _answering_from(runtime: Runtime) -> str:
    """Which book the index holds, so a stale or sample index is no surprise."""

    retriever = runtime.retriever
    if retriever is None:
        return ""
    try:
        store = retriever.store
        if not store.embedded:
            # Scrolling a remote collection for this would cost a request per 1,000 chunks.
            points = (await retriever.check()).get("points")
            return f" (collection '{store.collection}' holds {points} chunks)" if points else ""
        # The same question the /docs/ pages ask, answered once: telling the sample book apart
        # reads it (~50 ms), in a thread there, while the first reader's answer may be
        # streaming on this loop; it scrolls the stored ids itself.
        if await runtime.serves_sample_pages():
            return " (answering from the sample book; `bookchat ingest PATH` indexes yours)"
        points = await store.count(exact=True)
    except Exception:  # only a courtesy line: /api/health reports store problems
        return ""
    return f" (answering from {points} chunks in collection '{store.collection}')"


def serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; SIGTERM lets open answers finish (BOOKCHAT_SHUTDOWN_SECONDS)."""
    # Imports run with the cyclic GC off; the Runtime turns it back on once they are done
    # (runtime.settle_start_up_heap says why).
    gc.disable()
    # The backends, settings and the web stack (~1 s), only once `serve` runs.
    from bookchat import backends
    from bookchat.config import load_settings
    from bookchat.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.secrets())
    import uvicorn

    from bookchat.app import create_app

    try:
        workers = backends.worker_processes(settings)
    except backends.ConfigurationError as exc:
        print(f"bookchat serve: {exc}", file=sys.stderr)
        return 2
    for line in data_dir_lines(settings):
        sys.stderr.write(f"bookchat: {line}\n")
    index = None
    if workers > 1 and settings.embedded_qdrant:
        # The workers only read the embedded index: what must be written is written now.
        try:
            index = backends.share_embedded_index(settings)
        except backends.IndexNotShared as why:
            log.warning("serving one process instead of %d: %s", workers, why)
            workers = 1
    host, port = args.host or settings.host, args.port or settings.port
    # One process builds its app here; several each build theirs (worker_app) after spawning.
    app: Any = create_app(settings) if workers == 1 else f"{__name__}:worker_app"
    if workers == 1:
        announce_when_ready(app, url_to_open(host, port))
    else:
        sys.stderr.write(f"bookchat: {workers} worker processes on {url_to_open(host, port)}\n")
    one = backends.per_worker(settings, workers)
    config = uvicorn.Config(
        app,
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        # Our own logging setup and access line (one per request, with latency).
        log_config=None,
        access_log=False,
        log_level=settings.log_level.lower(),
        # The app reads X-Forwarded-For itself, only from trusted proxies (api/admission.py):
        # uvicorn's rewrite, trusting any peer, would let a client name itself per request and
        # escape its rate limits. bookchat builds no absolute URLs, so the scheme is not needed.
        proxy_headers=False,
        # Past this many open connections a request gets 503 at once: memory and the event
        # loop stay bounded under a flood (the chat limits then work on what is admitted).
        limit_concurrency=one.max_connections,
        timeout_keep_alive=settings.keepalive_seconds,
        # The same idle limit before a connection's first request (see the protocol).
        http=first_request_deadline_protocol(),
        # Open answer streams get this long to finish on shutdown, then are cut short
        # (with a server_restarting event first; their partial answers are stored).
        timeout_graceful_shutdown=settings.shutdown_seconds,
        server_header=False,
        # bookchat serves no WebSocket: uvicorn's "auto" would import websockets (3 MiB).
        ws="none",
    )
    if workers == 1:
        draining_server(config, lambda: stop_streams_of(app), settings.shutdown_seconds).run()
        return 0
    log.info("serving with %d worker processes", workers)
    run_workers(config, settings, index, url_to_open(host, port))
    return 0
