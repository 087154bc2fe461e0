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
