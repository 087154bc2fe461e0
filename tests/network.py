"""Ports on 127.0.0.1 for tests: one to serve on, or one where nothing listens."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now: to serve on, or to find a connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
