"""`bookchat serve` and `python -m bookchat` start the service; bad configuration is one line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.network import free_port

pytestmark = pytest.mark.slow

STARTUP_WAIT_SECONDS = 120


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "QDRANT_"))}
    env.pop("DATABASE_URL", None)
    env.pop("ALLOWED_ORIGINS", None)
    env.update(BOOKCHAT_DATA_DIR=str(data_dir), LOG_LEVEL="INFO", **extra)
    return env


def wait_healthy(port: int, process: subprocess.Popen) -> dict:
    deadline = time.monotonic() + STARTUP_WAIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if response.status_code == 200:
            return response.json()
        time.sleep(0.1)
    pytest.fail("server never became healthy")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    return stderr


@pytest.mark.parametrize(
    "command",
    [
        pytest.param([sys.executable, "-m", "bookchat"], id="python -m bookchat"),
        pytest.param(["bookchat", "serve", "--host", "127.0.0.1"], id="bookchat serve"),
    ],
)
def test_serve_starts_answers_and_stops_cleanly(
    command: list[str], tmp_path: Path, ingested_qdrant: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(ingested_qdrant, data / "qdrant")
    port = free_port()
    if command[0] == "bookchat":
        # The console script installed beside this interpreter: CI does not activate the venv.
        script = Path(sys.executable).with_name("bookchat")
        command = [str(script), *command[1:], "--port", str(port)]
        env = serve_env(data)
    else:
        env = serve_env(data, PORT=str(port))
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        health = wait_healthy(port, process)
        chat = httpx.post(
            f"http://127.0.0.1:{port}/api/chat",
            json={"message": "How do I install it?"},
            timeout=60,
        )
    finally:
        stderr = stop(process)
    assert health["status"] == "healthy"
    assert chat.status_code == 200
    assert chat.text.rstrip().endswith("}")
    # uvicorn finishes the shutdown, then re-raises the signal it caught.
    assert process.returncode in {0, -signal.SIGTERM}, stderr
    assert "Application shutdown complete" in stderr
    # Our access line, and not uvicorn's duplicate ('"GET /api/health HTTP/1.1" 200').
    assert "bookchat.access: GET /api/health 200" in stderr
    assert 'HTTP/1.1" 200' not in stderr


def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bookchat", "serve"],
        env=serve_env(tmp_path, PORT="eighty"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "PORT" in lines[0]


def test_python_m_bookchat_with_arguments_is_the_cli(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bookchat", "serve", "--help"],
        env=serve_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "--port" in result.stdout
    assert "--host" in result.stdout
