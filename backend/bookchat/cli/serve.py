"""`bookchat serve`: run the HTTP service under uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1 to 65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1 to 65535)")
    return port


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the chat service (HTTP API and chat page)",
        description="Run the chat service. Configuration comes from the environment.",
    )
    parser.add_argument("--host", help="interface to listen on (default: HOST or 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="TCP port (default: PORT or 8000)")
    parser.set_defaults(handler=serve)


def first_request_deadline_protocol() -> type[Any]:
    """uvicorn's httptools protocol, closing a connection whose first request is not in time.

    uvicorn arms its keep-alive timeout only after a response; a socket that connects and sends
    nothing (or a header a byte at a time) is never closed, and with limit_concurrency each one
    takes a slot that a reader needs. The deadline is the keep-alive timeout. The class is
    module-level (made once, on first use), so worker processes can unpickle the config.
    """
    global _FirstRequestDeadline
    if _FirstRequestDeadline is not None:
        return _FirstRequestDeadline
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class FirstRequestDeadline(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

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

    # Pickled by reference: this name must find the class in a freshly imported module too.
    FirstRequestDeadline.__qualname__ = "FirstRequestDeadline"
    FirstRequestDeadline.__module__ = __name__
    _FirstRequestDeadline = FirstRequestDeadline
    return FirstRequestDeadline


_FirstRequestDeadline: type[Any] | None = None


def __getattr__(name: str) -> Any:
    # A worker process unpickling its config and process object looks these classes up by name.
    if name == "FirstRequestDeadline":
        return first_request_deadline_protocol()
    if name == "DrainingProcess":
        return draining_process()
    raise AttributeError(name)


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


def worker_app() -> Any:
    """The app of one worker process (uvicorn calls this factory in each one)."""
    from bookchat import backends
    from bookchat.app import create_app
    from bookchat.config import load_settings
    from bookchat.logs import configure_logging

    global _worker_app
    settings = load_settings()
    configure_logging(settings.log_level)
    # The same environment and machine give every process the same count.
    _worker_app = create_app(backends.per_worker(settings, backends.worker_processes(settings)))
    return _worker_app


def draining_process() -> type[Any]:
    """uvicorn's worker process, with a server that drains open answers as a single one does."""
    global _DrainingProcess
    if _DrainingProcess is not None:
        return _DrainingProcess
    from uvicorn.supervisors.multiprocess import Process

    class DrainingProcess(Process):
        @property
        def server(self) -> Any:
            if self._server is None:
                grace = float(self.config.timeout_graceful_shutdown or 0)
                self._server = draining_server(
                    self.config, lambda: stop_streams_of(_worker_app), grace
                )
            return self._server

    DrainingProcess.__qualname__ = "DrainingProcess"
    DrainingProcess.__module__ = __name__
    _DrainingProcess = DrainingProcess
    return DrainingProcess


_DrainingProcess: type[Any] | None = None


def run_workers(config: Any) -> None:
    """What uvicorn.run does for workers (one socket, bound here), with draining workers."""
    from uvicorn.supervisors import Multiprocess

    process = draining_process()

    class Workers(Multiprocess):
        def init_processes(self) -> None:
            for _ in range(self.processes_num):
                worker = process(self.config, self.sockets)
                worker.start()
                self.processes.append(worker)

    Workers(config, sockets=[config.bind_socket()]).run()


def serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; SIGTERM lets open answers finish (BOOKCHAT_SHUTDOWN_SECONDS)."""
    from bookchat.config import load_settings
    from bookchat.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.secrets())
    import uvicorn

    from bookchat import backends
    from bookchat.app import create_app

    try:
        workers = backends.worker_processes(settings)
    except backends.ConfigurationError as exc:
        print(f"bookchat serve: {exc}", file=sys.stderr)
        return 2
    # One process builds its app here; several each build theirs (worker_app) after spawning.
    app: Any = create_app(settings) if workers == 1 else f"{__name__}:worker_app"
    one = backends.per_worker(settings, workers)
    config = uvicorn.Config(
        app,
        factory=workers > 1,
        workers=workers,
        host=args.host or settings.host,
        port=args.port or settings.port,
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
    )
    if workers == 1:
        draining_server(config, lambda: stop_streams_of(app), settings.shutdown_seconds).run()
        return 0
    log.info("serving with %d worker processes", workers)
    run_workers(config)
    return 0
