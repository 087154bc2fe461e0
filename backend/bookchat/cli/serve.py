"""`bookchat serve`: run the HTTP service under uvicorn."""

from __future__ import annotations

import argparse


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
    )
    parser.add_argument("--host", help="interface to listen on (default: HOST or 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="TCP port (default: PORT or 8000)")
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; SIGTERM finishes open requests first (up to 10 s)."""
    from bookchat.config import load_settings
    from bookchat.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    import uvicorn

    from bookchat.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        # Our own logging setup and access line (one per request, with latency).
        log_config=None,
        access_log=False,
        log_level=settings.log_level.lower(),
        # A Space (or any reverse proxy) terminates TLS in front of us; trusting its
        # X-Forwarded-* headers makes redirects and URLs https. Nothing here trusts the
        # client address for access control, so any forwarder is acceptable.
        proxy_headers=True,
        forwarded_allow_ips="*",
        # Open answer streams get this long to finish on shutdown, then are cut short
        # (their partial answers are still stored).
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    uvicorn.Server(config).run()
    return 0
