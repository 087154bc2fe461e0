"""`bookchat serve` bounds connections: a cap on open ones, idle ones closed, no XFF from anyone."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.test_serve import serve_env, stop, wait_healthy
from tests.network import free_port

pytestmark = pytest.mark.slow


def _serve(tmp_path: Path, ingested_qdrant: Path, **env: str) -> tuple[subprocess.Popen, int]:
    data = tmp_path / "data"
    shutil.copytree(ingested_qdrant, data / "qdrant")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bookchat", "serve"],
        env=serve_env(data, PORT=str(port), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_healthy(port, process)
    return process, port


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_idle_and_trickling_connections_are_closed(tmp_path: Path, ingested_qdrant: Path) -> None:
    process, port = _serve(tmp_path, ingested_qdrant, BOOKCHAT_KEEPALIVE_SECONDS="1")
    try:
        idle = socket.create_connection(("127.0.0.1", port))
        trickle = socket.create_connection(("127.0.0.1", port))
        trickle.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        # Generous bounds: closed after about a second; never closed would wait for ever.
        assert _closed_by_server(idle, within=30)
        assert _closed_by_server(trickle, within=30)
        # An ordinary client is not affected.
        assert httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=30).status_code == 200
    finally:
        idle.close()
        trickle.close()
        stop(process)


def test_past_the_connection_limit_requests_get_503(tmp_path: Path, ingested_qdrant: Path) -> None:
    process, port = _serve(
        tmp_path, ingested_qdrant, BOOKCHAT_MAX_CONNECTIONS="3", BOOKCHAT_KEEPALIVE_SECONDS="60"
    )
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        time.sleep(0.5)  # let the server accept them (not an assertion on time)
        over = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=30)
        for sock in held:
            sock.close()
        for _ in range(100):
            after = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=30)
            if after.status_code == 200:
                break
            time.sleep(0.1)
    finally:
        stop(process)
    assert over.status_code == 503
    assert after.status_code == 200


def test_serve_ignores_forwarded_for_from_an_untrusted_peer(
    tmp_path: Path, ingested_qdrant: Path
) -> None:
    process, port = _serve(tmp_path, ingested_qdrant, BOOKCHAT_CHATS_PER_MINUTE="1")
    try:
        codes = [
            httpx.post(
                f"http://127.0.0.1:{port}/api/chat",
                json={"message": "What is bookchat?"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
                timeout=60,
            ).status_code
            for n in range(2)
        ]
    finally:
        stop(process)
    assert codes == [200, 429]


def _raw(port: int, request: bytes, *, chunk: int = 0) -> bytes:
    """Send request (in pieces of chunk bytes, if given) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            if chunk:
                for start in range(0, len(request), chunk):
                    sock.sendall(request[start : start + chunk])
            else:
                sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused part-way: the answer is already waiting
        received = b""
        while block := sock.recv(65536):
            received += block
        return received


def test_oversized_headers_get_431_and_garbage_gets_json_400(
    tmp_path: Path, ingested_qdrant: Path
) -> None:
    process, port = _serve(tmp_path, ingested_qdrant)
    try:
        # A megabyte header line, trickled in as a stranger would: refused before it ends.
        huge_header = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000
        too_large = _raw(port, huge_header, chunk=16384)
        long_url = _raw(port, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        garbage = _raw(port, b"\x16\x03\x01 not http at all\r\n\r\n")
        # A large body sent with its headers in one write is a body, not a header.
        body = b'{"message": "' + b"x" * 40_000
        head = b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        with_body = _raw(
            port, head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
        )
        health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=30)
    finally:
        stop(process)
    assert too_large.startswith(b"HTTP/1.1 431 ")
    assert b'"code": "request_headers_too_large"' in too_large
    assert long_url.startswith(b"HTTP/1.1 431 ")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert b"application/json" in garbage
    assert b'"code": "invalid_http"' in garbage
    assert with_body.startswith(b"HTTP/1.1 400 ")
    assert b"invalid_json" in with_body
    assert health.status_code == 200
