"""`bookchat serve` with several worker processes (PostgreSQL and a Qdrant server configured)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.test_serve import STARTUP_WAIT_SECONDS, serve_env, stop
from tests.network import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        # uvicorn spawns its workers with multiprocessing (not its resource tracker).
        if parent == pid and b"spawn_main" in cmdline:
            children.append(int(entry.name))
    return children


def test_two_workers_share_the_port_and_stop_together(tmp_path: Path, postgres_url: str) -> None:
    # No Qdrant server runs here: health says so (503), which is enough to show each worker
    # started its app and answers on the one socket.
    with_closed = free_port()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bookchat", "serve"],
        env=serve_env(
            tmp_path,
            PORT=str(port),
            DATABASE_URL=postgres_url,
            QDRANT_URL=f"http://127.0.0.1:{with_closed}",
            BOOKCHAT_WORKERS="2",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_WAIT_SECONDS
        answers = []
        while time.monotonic() < deadline and len(answers) < 10:
            assert process.poll() is None, process.communicate()[1][-2000:]
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            status = response.json()["services"]["vector_store"]["status"]
            if status != "starting":
                answers.append(status)
        assert answers == ["down"] * 10
        workers = _children(process.pid)
        assert len(workers) == 2
        # A Qdrant server is reached over REST: no worker loads qdrant-client's gRPC stack.
        for worker in workers:
            assert "cygrpc" not in Path(f"/proc/{worker}/maps").read_text()
    finally:
        stderr = stop(process)
    assert process.returncode == 0, stderr[-2000:]
    assert "serving with 2 worker processes" in stderr
    assert _children(process.pid) == []


def test_workers_with_embedded_qdrant_is_refused_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bookchat", "serve"],
        env=serve_env(tmp_path, BOOKCHAT_WORKERS="2", PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "BOOKCHAT_WORKERS=2 needs PostgreSQL (DATABASE_URL) and a Qdrant server" in line
