"""`bookchat serve` with several worker processes: PostgreSQL with a Qdrant server, or with the
embedded index that the workers only read; the fallback to one process, and SQLite's refusal."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bookchat.cli import serve
from bookchat.sample_book import sample_book_path
from tests.books import make_settings
from tests.cli.test_serve import STARTUP_WAIT_SECONDS, serve_env, stop, wait_healthy
from tests.fakes.gemini import Reply
from tests.network import free_port
from tests.processes import Running


async def test_every_worker_takes_serves_start_not_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Questions stored without an owner (by an older bookchat), asked before the serving started
    # and left unanswered, are marked failed: a worker started in place of one that died must
    # not take its own start for that.
    started = datetime(2026, 1, 1, tzinfo=UTC)
    setup = (make_settings(tmp_path), None, "http://127.0.0.1:8000/", started)
    monkeypatch.setattr(serve, "_worker_setup", setup)
    monkeypatch.setattr(serve, "_worker_app", None)
    app = serve.worker_app()
    async with app.router.lifespan_context(app):
        assert app.state.runtime.started_at == started


def _serve(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bookchat", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _two_workers_without_qdrant(tmp_path: Path, postgres_url: str, port: int) -> subprocess.Popen:
    """serve with two workers on PostgreSQL and a Qdrant URL nobody listens on: health is 503
    ("down"), which is enough to see each worker start its app on the one socket."""
    return _serve(
        serve_env(
            tmp_path,
            PORT=str(port),
            DATABASE_URL=postgres_url,
            QDRANT_URL=f"http://127.0.0.1:{free_port()}",
            BOOKCHAT_WORKERS="2",
        )
    )


def _bookchat(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bookchat", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _children(pid: int) -> list[int]:
    # serve forks its workers (multiprocessing's fork context starts no helper process).
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_share_the_port_and_stop_together(tmp_path: Path, postgres_url: str) -> None:
    # No Qdrant server runs here: health says so (503), which is enough to show each worker
    # started its app and answers on the one socket.
    port = free_port()
    process = _two_workers_without_qdrant(tmp_path, postgres_url, port)
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


def _answers(port: int, questions: int) -> list[dict]:
    """Each chat's events, one question at a time, each on its own connection."""
    answers = []
    for i in range(questions):
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/chat",
            json={"message": f"How do I install bookchat? ({i})"},
            headers={"connection": "close"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        answers.append(
            [json.loads(line[6:]) for line in response.text.splitlines() if line[:6] == "data: "]
        )
    return answers


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_share_the_embedded_index_and_ingest_is_refused_meanwhile(
    tmp_path: Path, postgres_url: str, ingested_qdrant: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(ingested_qdrant, data / "qdrant")
    port = free_port()
    env = serve_env(data, PORT=str(port), DATABASE_URL=postgres_url, BOOKCHAT_WORKERS="2")
    process = _serve(env)
    try:
        health = wait_healthy(port, process)
        answers = _answers(port, 6)
        conversation = httpx.get(
            f"http://127.0.0.1:{port}/api/conversation/{answers[0][0]['conversation_id']}",
            timeout=10,
        ).json()
        workers = _children(process.pid)
        ingest = _bookchat("ingest", str(sample_book_path()), env=serve_env(data))
        # An ingested index is only read: no worker (nor the parent) loads qdrant-client's gRPC.
        maps = [Path(f"/proc/{pid}/maps").read_text() for pid in [process.pid, *workers]]
    finally:
        stderr = stop(process)
    assert health["services"]["vector_store"]["status"] == "up"
    assert len(workers) == 2
    for events in answers:
        assert events[-1]["type"] == "done"
        assert any(e["type"] == "citation" for e in events) or "citations" in json.dumps(events)
    assert conversation["messages"][-1]["status"] == "complete"
    assert ingest.returncode == 1
    assert "in use by another bookchat process" in ingest.stderr
    assert not any("cygrpc" in text for text in maps)
    assert process.returncode == 0, stderr[-2000:]
    assert "serving with 2 worker processes" in stderr
    assert "serving one process" not in stderr
    # The first worker tells the terminal, once, that the server is ready.
    assert stderr.count(f"bookchat: ready: open http://127.0.0.1:{port}/ (answering from") == 1
    assert _children(process.pid) == []
    # Once serve has stopped, the index is free for `bookchat ingest` again.
    again = _bookchat("ingest", str(sample_book_path()), env=serve_env(data))
    assert again.returncode == 0, again.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.postgres
def test_an_index_workers_cannot_share_means_one_process_and_one_line(
    tmp_path: Path, postgres_url: str
) -> None:
    # No collection and no sample book to index: nothing the workers could read.
    port = free_port()
    process = _serve(
        serve_env(
            tmp_path / "data",
            PORT=str(port),
            DATABASE_URL=postgres_url,
            BOOKCHAT_WORKERS="2",
            BOOKCHAT_SAMPLE_BOOK="0",
        )
    )
    try:
        deadline = time.monotonic() + STARTUP_WAIT_SECONDS
        health = None
        while time.monotonic() < deadline and health is None:
            assert process.poll() is None
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)
        children = _children(process.pid)
    finally:
        stderr = stop(process)
    assert health is not None
    assert children == []
    (line,) = [line for line in stderr.splitlines() if "serving one process" in line]
    assert "serving one process instead of 2: the index in " in line
    assert "has no fresh read snapshot" in line


@pytest.mark.slow
def test_workers_with_sqlite_are_refused_in_one_line(tmp_path: Path) -> None:
    result = _bookchat(
        "serve", env=serve_env(tmp_path, BOOKCHAT_WORKERS="2", PORT=str(free_port()))
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "BOOKCHAT_WORKERS=2 needs PostgreSQL (DATABASE_URL)" in line


KEY = "AIzaFAKE-orphans-test-key-5d1e"
# 400 words at 20 a second: 20 s, far longer than killing a worker and starting another takes.
LONG_ANSWER = " ".join(f"word{n} [1]" if n % 25 == 24 else f"word{n}" for n in range(400))


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _worker_holding(client: httpx.Client, workers: list[int]) -> int:
    """The worker process that accepted the client's (kept-alive) connection to the server."""
    client.get("/api/health")  # opens the connection the next requests reuse
    (connection,) = client._transport._pool.connections  # type: ignore[attr-defined]
    sock = connection._connection._network_stream.get_extra_info("socket")
    client_port = sock.getsockname()[1]
    # The server's end of this connection: its remote port is the client's local one.
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].rsplit(":", 1)[1], 16) == client_port:
            inode = fields[9]
    assert inode is not None
    (holder,) = [pid for pid in workers if inode in _socket_inodes(pid)]
    return holder


class _Chat(threading.Thread):
    """One streamed chat on a client whose connection is open already."""

    def __init__(self, client: httpx.Client, message: str) -> None:
        super().__init__(daemon=True)
        self.client, self.message = client, message
        self.events: list[dict] = []
        self.answering = threading.Event()  # the first token arrived

    def run(self) -> None:
        try:
            with self.client.stream("POST", "/api/chat", json={"message": self.message}) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))
                        if self.events[-1]["type"] == "token":
                            self.answering.set()
        except httpx.HTTPError:
            pass  # the worker died: what arrived before is what the reader saw


def _conversation(port: int, conversation_id: str) -> dict:
    url = f"http://127.0.0.1:{port}/api/conversation/{conversation_id}"
    for _ in range(600):
        response = httpx.get(url, timeout=10)
        # The worker started in place of the killed one may take the request while it starts.
        if response.status_code != 503:
            break
        time.sleep(0.1)
    assert response.status_code == 200, response.text
    return response.json()


def _wait_for(what, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"not within {timeout:g} s: {what.__doc__}")


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_killed_mid_answer_fails_its_question_and_no_other(
    tmp_path: Path, postgres_url: str, ingested_qdrant: Path, fake_gemini
) -> None:
    data = tmp_path / "data"
    shutil.copytree(ingested_qdrant, data / "qdrant")
    fake_gemini.script(
        Reply(LONG_ANSWER, tokens_per_second=20), Reply(LONG_ANSWER, tokens_per_second=20)
    )
    port = free_port()
    env = serve_env(
        data,
        PORT=str(port),
        DATABASE_URL=postgres_url,
        BOOKCHAT_WORKERS="2",
        GEMINI_API_KEY=KEY,
        GEMINI_BASE_URL=fake_gemini.base_url,
        BOOKCHAT_EMBEDDER="local",
    )
    server = Running([sys.executable, "-m", "bookchat", "serve"], cwd=tmp_path, env=env)
    clients: list[httpx.Client] = []
    try:
        server.wait_for("bookchat: ready: open")
        workers = _children(server.process.pid)
        assert len(workers) == 2

        def client_on(worker: int) -> httpx.Client:
            # Connections land on whichever worker accepts first: open until one is on it.
            for _ in range(100):
                client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
                clients.append(client)
                if _worker_holding(client, workers) == worker:
                    return client
            pytest.fail(f"no connection landed on worker {worker}")

        doomed, survivor = workers
        dying = _Chat(client_on(doomed), "Tell me everything")
        living = _Chat(client_on(survivor), "Tell me everything else")
        dying.start()
        living.start()
        assert dying.answering.wait(60)
        assert living.answering.wait(60)
        os.kill(doomed, signal.SIGKILL)
        dying.join(60)
        dead_id = dying.events[0]["conversation_id"]
        live_id = living.events[0]["conversation_id"]

        def dead_marked() -> dict | None:
            """the killed worker's question gets its failed answer"""
            conversation = _conversation(port, dead_id)
            return conversation if len(conversation["messages"]) == 2 else None

        dead = _wait_for(dead_marked)
        # Marked while the other worker may still be answering: its question is left alone.
        streaming = living.is_alive()
        meanwhile = _conversation(port, live_id)
        living.join(120)
        live = _conversation(port, live_id)
    finally:
        for client in clients:
            client.close()
        code = server.stop(signal.SIGTERM)
    assert [(m["role"], m["status"], m["content"]) for m in dead["messages"]] == [
        ("user", "complete", "Tell me everything"),
        ("assistant", "failed", ""),
    ]
    assert not dead["answering"]
    if streaming:
        assert [m["role"] for m in meanwhile["messages"]] == ["user"]
        assert meanwhile["answering"]
    # Marked once (by the worker started in its place, or the read): that one, nothing else.
    marked = [line for line in server.lines if "had no answer" in line]
    assert len(marked) == 1, marked
    assert "1 question(s) had no answer (the process answering them died): marked" in marked[0]
    assert living.events[-1]["type"] == "done", living.events[-3:]
    shown = "".join(e["content"] for e in living.events if e["type"] == "token")
    assert [(m["role"], m["status"]) for m in live["messages"]] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert live["messages"][1]["content"] == shown
    assert code == 0, str(server)[-3000:]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in {"Z", "X"}  # exited: a zombie waits only for its new parent's reaping


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path, postgres_url: str) -> None:
    # A SIGKILLed supervisor cannot stop its workers; each asked Linux for a SIGTERM at its
    # parent's death, so none is left holding the port.
    port = free_port()
    process = _two_workers_without_qdrant(tmp_path, postgres_url, port)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + STARTUP_WAIT_SECONDS
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1][-2000:]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code:
                    workers = _children(process.pid)
                    if len(workers) == 2:
                        break
            time.sleep(0.1)
        assert len(workers) == 2
        process.kill()
        process.wait(timeout=10)

        def workers_gone() -> bool:
            """both workers exit after their supervisor was SIGKILLed"""
            return all(_gone(pid) for pid in workers)

        _wait_for(workers_gone, timeout=60)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            process.communicate(timeout=10)
