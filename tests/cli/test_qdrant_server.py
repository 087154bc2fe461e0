"""`bookchat ingest` and `bookchat serve` with QDRANT_URL, against the fake Qdrant server over
real HTTP: what a Qdrant Cloud deployment does, with no qdrant-client in the serving process."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.cli.test_ingest import summary
from tests.cli.test_serve import serve_env
from tests.fakes.qdrant import FakeQdrant
from tests.network import free_port
from tests.processes import Running

pytestmark = pytest.mark.slow

# Runs `bookchat serve`; on SIGUSR1 it says which of these it has imported. (Not at exit: uvicorn
# ends by re-raising SIGTERM, which skips atexit.)
SERVE_AND_REPORT_IMPORTS = (
    "import signal, sys, runpy\n"
    "signal.signal(signal.SIGUSR1, lambda *_: print('imported:', sorted({m.split('.')[0] for m"
    " in sys.modules if m.split('.')[0] in ('qdrant_client', 'grpc', 'google')}), flush=True))\n"
    "sys.argv = ['bookchat', 'serve']\n"
    "runpy.run_module('bookchat', run_name='__main__')\n"
)


def ingest(book: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bookchat", "ingest", str(book)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ingest_serve_and_chat_through_a_qdrant_server(
    tmp_path: Path, small_book: Path, fake_qdrant: FakeQdrant
) -> None:
    fake_qdrant.api_key = "qdrant-test-key"
    port = free_port()
    env = serve_env(
        tmp_path / "data",
        QDRANT_URL=fake_qdrant.url,
        QDRANT_API_KEY="qdrant-test-key",
        QDRANT_COLLECTION="handbook",
        BOOKCHAT_EMBEDDER="local",
        PORT=str(port),
    )
    first = ingest(small_book, env)
    assert first.returncode == 0, first.stderr
    assert f"into collection 'handbook' on the Qdrant server at {fake_qdrant.url}" in first.stdout
    files, chunks, embedded, _, deleted, _ = summary(first.stdout)
    assert (files, deleted) == (4, 0)
    assert embedded == chunks == fake_qdrant.client.count("handbook").count
    again = ingest(small_book, env)  # idempotent: nothing embedded or written again
    assert again.returncode == 0, again.stderr
    assert summary(again.stdout)[2:5] == (0, chunks, 0)
    assert not (tmp_path / "data" / "qdrant").exists()  # nothing embedded on the side

    server = Running([sys.executable, "-c", SERVE_AND_REPORT_IMPORTS], cwd=tmp_path, env=env)
    try:
        ready = server.wait_for("bookchat: ready: open ")
        health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).json()
        chat = httpx.post(
            f"http://127.0.0.1:{port}/api/chat",
            json={"message": "Which motor holds its position without feedback?"},
            timeout=60,
        )
        server.process.send_signal(signal.SIGUSR1)
        imported = server.wait_for("imported: ")
    finally:
        code = server.stop(signal.SIGTERM)
    assert f"(collection 'handbook' holds {chunks} chunks)" in ready
    assert health["status"] == "healthy", health
    assert health["services"]["vector_store"]["backend"] == "server"
    assert chat.status_code == 200
    sources = re.findall(r'"url":"(https://robots\.example\.org/handbook/[^"]*)"', chat.text)
    assert sources, chat.text
    assert "motors" in sources[0], sources
    assert code in {0, -signal.SIGTERM}, server
    assert imported == "imported: []"
    assert "qdrant-test-key" not in str(server)


def test_a_wrong_api_key_is_one_line_naming_the_setting(
    tmp_path: Path, small_book: Path, fake_qdrant: FakeQdrant
) -> None:
    fake_qdrant.api_key = "the-right-key"
    env = serve_env(
        tmp_path / "data",
        QDRANT_URL=fake_qdrant.url,
        QDRANT_API_KEY="a-wrong-key",
        BOOKCHAT_EMBEDDER="local",
    )
    result = ingest(small_book, env)
    assert result.returncode != 0
    assert (
        f"Qdrant at 127.0.0.1:{fake_qdrant.port} refused access (HTTP 401): check QDRANT_API_KEY"
        in result.stderr
    )
    assert "a-wrong-key" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
