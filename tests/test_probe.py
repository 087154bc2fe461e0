"""bookchat.probe: passes against a real `bookchat serve`, with nothing but the standard library,
and fails with one line naming the step for every way a stream can break the contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import bookchat
from tests.cli.test_serve import serve_env, stop
from tests.network import free_port

PACKAGE_PARENT = str(Path(bookchat.__file__).resolve().parents[1])


def probe(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -S -m bookchat.probe`: -S leaves out site-packages, so only the stdlib is there."""
    return subprocess.run(
        [sys.executable, "-S", "-m", "bookchat.probe", url, *args],
        env={"PYTHONPATH": PACKAGE_PARENT, "PATH": "/var/empty"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_probe_passes_against_a_real_server(tmp_path: Path, ingested_qdrant: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(ingested_qdrant, data / "qdrant")
    port = free_port()
    script = Path(sys.executable).with_name("bookchat")
    process = subprocess.Popen(
        [str(script), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=serve_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Started at once: the probe itself waits for healthy.
        done = probe(f"http://127.0.0.1:{port}", "--wait", "180")
        # The same probe as the image runs it, through the CLI.
        cli = subprocess.run(
            [str(script), "probe", f"http://127.0.0.1:{port}/", "--question", "What is BM25?"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        stderr = stop(process)
    assert done.returncode == 0, (done.stdout, done.stderr, stderr[-2000:])
    line = done.stdout.strip()
    assert line.startswith(f"ok: http://127.0.0.1:{port} healthy after "), line
    assert "sources (first http" in line
    assert "stored 2 messages" in line
    assert len(done.stdout.splitlines()) == 1
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.startswith(f"ok: http://127.0.0.1:{port} healthy")


HEALTHY = {"status": "healthy", "services": {}}
METADATA = {"type": "metadata", "conversation_id": "c1", "mode": "general"}
TOKEN = {"type": "token", "content": "Install it with pip."}
DONE = {"type": "done", "sources": [{"url": "https://book.example/docs/install", "title": "I"}]}
STORED = {"id": "c1", "messages": [{"role": "user"}, {"role": "assistant"}]}


class Fake:
    """A stand-in server whose health, chat stream and stored conversation a test chooses."""

    def __init__(self) -> None:
        self.health: tuple[int, Any] = (200, HEALTHY)
        self.events: list[Any] = [METADATA, TOKEN, DONE]
        self.conversation: tuple[int, Any] = (200, STORED)


@pytest.fixture
def fake() -> Iterator[tuple[Fake, str]]:
    state = Fake()

    class Handler(BaseHTTPRequestHandler):
        def _json(self, code: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            if self.path == "/api/health":
                self._json(*state.health)
            else:
                self._json(*state.conversation)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in state.events:
                data = event if isinstance(event, str) else json.dumps(event)
                self.wfile.write(f"data: {data}\n\n".encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_probe_accepts_the_full_contract(fake: tuple[Fake, str]) -> None:
    _, url = fake
    done = probe(url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 token events with 1 sources" in done.stdout


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([TOKEN, DONE], "did not start with metadata"),
        ([{**METADATA, "conversation_id": ""}, TOKEN, DONE], "no conversation_id"),
        ([METADATA, DONE], "no token event with text"),
        ([METADATA, {"type": "token", "content": ""}, DONE], "no token event with text"),
        ([METADATA, TOKEN], "did not end with done"),
        ([METADATA, TOKEN, {"type": "done", "sources": []}], "done carries no sources"),
        ([METADATA, TOKEN, {"type": "done", "sources": [{"title": "x"}]}], "a source has no url"),
        (
            [METADATA, {"type": "error", "code": "answer_failed", "message": "please retry"}],
            "error event answer_failed: please retry",
        ),
        ([METADATA, "not json"], "an event is not JSON"),
    ],
)
def test_probe_names_what_the_stream_lacks(
    fake: tuple[Fake, str], events: list[Any], message: str
) -> None:
    state, url = fake
    state.events = events
    done = probe(url)
    assert done.returncode == 1
    assert done.stdout.startswith("probe failed: chat: "), done.stdout
    assert message in done.stdout
    assert len(done.stdout.splitlines()) == 1


def test_probe_waits_for_healthy_then_says_what_it_last_saw(fake: tuple[Fake, str]) -> None:
    state, url = fake
    state.health = (
        503,
        {
            "status": "starting",
            "startup": {
                "phase": "failed",
                "step": "loading libraries",
                "error": "ModuleNotFoundError: No module named 'grpc'",
            },
        },
    )
    done = probe(url, "--wait", "1")
    assert done.returncode == 1
    line = done.stdout.strip()
    assert line.startswith("probe failed: health: not healthy within 1 s; last: HTTP 503"), line
    assert "No module named 'grpc'" in line


def test_probe_requires_the_conversation_to_be_stored(fake: tuple[Fake, str]) -> None:
    state, url = fake
    state.conversation = (200, {"id": "c1", "messages": [{"role": "user"}]})
    done = probe(url)
    assert done.returncode == 1
    assert "probe failed: conversation: stored roles are ['user']" in done.stdout


def test_probe_reports_nothing_listening() -> None:
    done = probe(f"http://127.0.0.1:{free_port()}", "--wait", "0")
    assert done.returncode == 1
    assert "probe failed: health: not healthy within 0 s; last: cannot reach" in done.stdout


def test_probe_rejects_a_non_http_url() -> None:
    done = probe("file:///etc/passwd")
    assert done.returncode == 1
    assert "is not an http:// or https:// URL" in done.stdout
