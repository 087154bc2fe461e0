"""`bookchat serve` and `python -m bookchat` start the service; bad configuration is one line."""

from __future__ import annotations

import json
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
from tests.processes import Running

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


# Serves, and once it has answered a question prints which of qdrant-client's packages (and
# websockets, which bookchat does not serve) are loaded (uvicorn re-raises SIGTERM at exit,
# so an atexit hook would never run).
WATCH_IMPORTS = """
import json, sys, threading, time, httpx
def watch(port):
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(url + "/api/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    answer = httpx.post(url + "/api/chat", json={"message": "How do I install it?"}, timeout=60)
    heavy = {"qdrant_client", "grpc", "websockets"}
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
    print(json.dumps({"chat": answer.status_code, "loaded": loaded}), flush=True)
threading.Thread(target=watch, args=(sys.argv[1],), daemon=True).start()
from bookchat.cli import main
main(["serve", "--port", sys.argv[1]])
"""


def test_serving_an_ingested_data_dir_never_imports_qdrant_client(
    tmp_path: Path, ingested_qdrant: Path
) -> None:
    """The read snapshot is all a reading server needs: no REST models, no gRPC (and no
    WebSocket implementation: uvicorn runs with ws="none")."""
    data = tmp_path / "data"
    shutil.copytree(ingested_qdrant, data / "qdrant")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", WATCH_IMPORTS, str(port)],
        env=serve_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        stderr = stop(process)
    assert line, stderr[-3000:]
    report = json.loads(line)
    assert report == {"chat": 200, "loaded": []}, stderr[-3000:]


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


def bookchat_script() -> str:
    # The console script installed beside this interpreter: CI does not activate the venv.
    return str(Path(sys.executable).with_name("bookchat"))


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A user with nothing configured but a home folder: the per-user data dir applies."""
    env = serve_env(home, **extra)
    for name in ("BOOKCHAT_DATA_DIR", "XDG_DATA_HOME"):
        env.pop(name)
    env["HOME"] = str(home)
    return env


def test_ingest_and_serve_agree_from_different_folders(tmp_path: Path, small_book: Path) -> None:
    home, here, there = tmp_path / "home", tmp_path / "here", tmp_path / "there"
    for folder in (home, here, there):
        folder.mkdir()
    port = free_port()
    env = user_env(home, PORT=str(port))
    ingested = subprocess.run(
        [bookchat_script(), "ingest", str(small_book)],
        cwd=here,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    data = home / ".local/share/bookchat"
    assert f"into collection 'docusaurus-book' in the embedded Qdrant at {data / 'qdrant'}" in (
        ingested.stdout
    )
    server = Running([bookchat_script(), "serve"], cwd=there, env=env)
    try:
        ready = server.wait_for("bookchat: ready: open ")
        chat = httpx.post(
            f"http://127.0.0.1:{port}/api/chat",
            json={"message": "How do I calibrate the motors?"},
            timeout=60,
        )
    finally:
        server.stop(signal.SIGTERM)
    assert f"bookchat: data dir {data} (set BOOKCHAT_DATA_DIR to use another)" in server.lines
    assert f"bookchat: conversations: SQLite at {data / 'bookchat.sqlite3'}" in server.lines
    assert ready.startswith(f"bookchat: ready: open http://127.0.0.1:{port}/ (answering from ")
    assert "sample book" not in ready
    assert "https://robots.example.org/handbook/" in chat.text
    assert not (here / ".bookchat").exists()
    assert not (there / ".bookchat").exists()


def test_a_wildcard_address_prints_a_url_a_browser_can_open(tmp_path: Path) -> None:
    port = free_port()
    server = Running(
        [bookchat_script(), "serve", "--host", "0.0.0.0", "--port", str(port)],
        cwd=tmp_path,
        env=serve_env(tmp_path / "data"),
    )
    try:
        ready = server.wait_for("bookchat: ready: open ")
    finally:
        server.stop(signal.SIGTERM)
    assert ready == (
        f"bookchat: ready: open http://127.0.0.1:{port}/ (answering from the sample book; "
        "`bookchat ingest PATH` indexes yours)"
    )


def test_a_refused_database_reads_the_same_sentence_in_the_terminal_and_healthcheck(
    tmp_path: Path,
) -> None:
    port, closed = free_port(), free_port()
    # Public health names no host (BOOKCHAT_HEALTH_DETAIL=full does): the cause is the same.
    sentence = "connection refused: is the server running and the port right?"
    env = serve_env(
        tmp_path / "data", PORT=str(port), DATABASE_URL=f"postgresql://u:pw@127.0.0.1:{closed}/x"
    )
    server = Running([bookchat_script(), "serve"], cwd=tmp_path, env=env)
    try:
        told = server.wait_for("bookchat: not ready: ")
        probed = subprocess.run(
            [bookchat_script(), "healthcheck", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.stop(signal.SIGTERM)
    assert told.startswith("bookchat: not ready: creating the conversation tables failed: ")
    assert told.endswith(f"{sentence}; retrying")
    assert probed.returncode == 1
    line = probed.stdout.strip()
    assert line.count(sentence) == 1, line
    for raw in ("psycopg.", "OperationalError", "Connection refused", ":pw@"):
        assert raw not in line
