"""`bookchat serve` stopped mid-answer: SIGTERM ends the stream with an event and keeps the part
already streamed; the conversation reads honestly after a restart."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bookchat.cli.serve import stop_streams_after
from tests.cli.test_serve import serve_env, stop, wait_healthy
from tests.fakes.gemini import Reply
from tests.network import free_port

pytestmark = pytest.mark.slow

KEY = "AIzaFAKE-shutdown-test-key-91c0"
LONG_ANSWER = " ".join(f"word{n} [1]" if n % 25 == 24 else f"word{n}" for n in range(400))


class Server:
    """A `bookchat serve` process on a data dir, answering with the fake Gemini."""

    def __init__(self, data: Path, fake_url: str, **env: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bookchat", "serve"],
            env=serve_env(
                data,
                PORT=str(self.port),
                GEMINI_API_KEY=KEY,
                GEMINI_BASE_URL=fake_url,
                BOOKCHAT_EMBEDDER="local",
                **env,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_healthy(self.port, self.process)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def data(tmp_path: Path, ingested_qdrant: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(ingested_qdrant, data / "qdrant")
    return data


def _stream_until_first_token_then(
    server: Server, action, message: str = "Tell me everything"
) -> list[dict]:
    events: list[dict] = []
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", f"{server.url}/api/chat", json={"message": message}) as response,
    ):
        assert response.status_code == 200
        acted = False
        try:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["type"] == "token" and not acted:
                        acted = True
                        action()
        except httpx.HTTPError:
            pass  # the connection dropped: what arrived before is what the reader saw
    return events


def test_the_streams_are_told_to_end_before_the_hard_cut() -> None:
    assert 0 < stop_streams_after(10) < 10
    assert 0 < stop_streams_after(1) < 1


def test_sigterm_mid_answer_sends_server_restarting_and_keeps_the_partial_answer(
    data: Path, fake_gemini
) -> None:
    fake_gemini.script(Reply(LONG_ANSWER, tokens_per_second=20))  # 20 s: longer than the grace
    server = Server(data, fake_gemini.base_url, BOOKCHAT_SHUTDOWN_SECONDS="3")
    try:
        events = _stream_until_first_token_then(
            server, lambda: server.process.send_signal(signal.SIGTERM)
        )
        server.process.communicate(timeout=60)
    finally:
        if server.process.poll() is None:
            stop(server.process)
    last = events[-1]
    assert last["type"] == "error", events[-3:]
    assert last["code"] == "server_restarting"
    assert "restarting" in last["message"]
    shown = "".join(e["content"] for e in events if e["type"] == "token")
    assert shown
    assert len(shown) < len(LONG_ANSWER)
    conversation_id = events[0]["conversation_id"]

    restarted = Server(data, fake_gemini.base_url)
    try:
        stored = httpx.get(f"{restarted.url}/api/conversation/{conversation_id}", timeout=30)
    finally:
        stop(restarted.process)
    messages = stored.json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["status"] == "partial"
    assert messages[1]["content"] == shown


def test_after_sigkill_mid_answer_a_restart_marks_the_question_failed(
    data: Path, fake_gemini
) -> None:
    fake_gemini.script(Reply(LONG_ANSWER, tokens_per_second=20))
    server = Server(data, fake_gemini.base_url)
    try:
        events = _stream_until_first_token_then(
            server, lambda: server.process.send_signal(signal.SIGKILL)
        )
        server.process.communicate(timeout=60)
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert server.process.returncode == -signal.SIGKILL
    assert not [e for e in events if e["type"] in {"done", "error"}]
    conversation_id = events[0]["conversation_id"]

    restarted = Server(data, fake_gemini.base_url)
    try:
        stored = httpx.get(f"{restarted.url}/api/conversation/{conversation_id}", timeout=30)
        # A new question in the same conversation is answered as usual afterwards.
        again = httpx.post(
            f"{restarted.url}/api/chat",
            json={"message": "Again?", "conversation_id": conversation_id},
            timeout=60,
        )
    finally:
        log = stop(restarted.process)
    messages = stored.json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["status"] == "failed"
    assert messages[1]["content"] == ""
    assert "marked failed" in log
    assert again.status_code == 200
