"""`bookchat healthcheck` against a tiny HTTP server that plays /api/health."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bookchat.cli import main
from bookchat.cli.healthcheck import default_port, probe


class FakeHealth(ThreadingHTTPServer):
    """Answers GET /api/health with the configured status code and body."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.code = 200
        self.body: bytes = json.dumps({"status": "healthy"}).encode()
        self.paths: list[str] = []

    @property
    def port(self) -> int:
        return self.server_address[1]

    def answer(self, code: int, document: object) -> None:
        self.code = code
        self.body = document if isinstance(document, bytes) else json.dumps(document).encode()


class _Handler(BaseHTTPRequestHandler):
    server: FakeHealth

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        found = self.path == "/api/health"
        body = self.server.body if found else b'{"detail": "Not Found"}'
        self.send_response(self.server.code if found else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[FakeHealth]:
    fake = FakeHealth()
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()
    thread.join()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(["healthcheck", *argv])
    out = capsys.readouterr().out
    return int(exited.value.code or 0), out


def test_healthy_server_exits_zero(server: FakeHealth, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["--port", str(server.port)], capsys)
    assert code == 0
    assert out == f"healthy: http://127.0.0.1:{server.port}/api/health\n"
    assert server.paths == ["/api/health"]


def test_unhealthy_report_names_the_blocked_connection(
    server: FakeHealth, capsys: pytest.CaptureFixture[str]
) -> None:
    server.answer(
        503,
        {
            "status": "unhealthy",
            "services": {
                "database": {
                    "status": "down",
                    "error": "no answer from ep-x.neon.tech:5432 within 2s: outbound port 5432 "
                    "may be blocked",
                },
                "vector_store": {"status": "up"},
                "llm": {"status": "degraded"},
            },
            "startup": {"phase": "ready", "error": None},
        },
    )
    code, out = run(["--port", str(server.port)], capsys)
    assert code == 1
    assert out.count("\n") == 1
    assert out.startswith(f"unhealthy: http://127.0.0.1:{server.port}/api/health answered HTTP 503")
    assert "database down (no answer from ep-x.neon.tech:5432 within 2s" in out
    assert "llm degraded" in out
    assert "vector_store" not in out


def test_starting_service_is_not_healthy(
    server: FakeHealth, capsys: pytest.CaptureFixture[str]
) -> None:
    server.answer(503, {"status": "starting", "services": {}, "startup": {"error": None}})
    code, out = run(["--port", str(server.port)], capsys)
    assert (code, out.split(":")[0]) == (1, "starting")


def test_200_without_healthy_status_is_not_healthy(
    server: FakeHealth, capsys: pytest.CaptureFixture[str]
) -> None:
    server.answer(200, {"status": "degraded"})
    code, out = run(["--port", str(server.port)], capsys)
    assert code == 1
    assert out.startswith("degraded: ")


@pytest.mark.parametrize("body", [b"<html>proxy error</html>", b"[1, 2]", b""])
def test_a_body_that_is_not_a_health_report_is_unhealthy(
    server: FakeHealth, body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    server.answer(200, body)
    code, out = run(["--port", str(server.port)], capsys)
    assert code == 1
    assert "without a JSON health report" in out


def test_nothing_listening_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    code, out = run(["--port", str(port), "--timeout", "2"], capsys)
    assert code == 1
    assert out.startswith(f"unhealthy: cannot reach http://127.0.0.1:{port}/api/health: ")


def test_a_server_that_never_answers_times_out(silent_port: int) -> None:
    healthy, line = probe(host="127.0.0.1", port=silent_port, timeout=0.3)
    assert not healthy
    assert line == (
        f"unhealthy: http://127.0.0.1:{silent_port}/api/health did not answer within 0.3 s"
    )


def test_port_comes_from_port_env(
    server: FakeHealth, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", str(server.port))
    code, out = run([], capsys)
    assert code == 0
    assert f":{server.port}/" in out


def test_default_port() -> None:
    assert default_port({}) == 8000
    assert default_port({"PORT": "7860"}) == 7860
    assert default_port({"PORT": " 7860 "}) == 7860
    # The server would refuse these too; the probe falls back rather than crash.
    assert default_port({"PORT": "http"}) == 8000
    assert default_port({"PORT": "70000"}) == 8000


def test_proxy_settings_are_ignored(
    server: FakeHealth, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    code, _ = run(["--port", str(server.port)], capsys)
    assert code == 0


@pytest.mark.parametrize(
    "argv", [["--port", "0"], ["--port", "x"], ["--timeout", "0"], ["--timeout", "-1"]]
)
def test_bad_arguments_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["healthcheck", *argv])
    assert exited.value.code == 2
    assert "healthcheck" in capsys.readouterr().err


def test_the_probe_does_not_load_the_web_stack(server: FakeHealth) -> None:
    # Docker runs it every interval in the container: it must not pay for FastAPI & co.
    script = (
        "import sys\n"
        "from bookchat.cli import build_parser\n"
        f"args = build_parser().parse_args(['healthcheck', '--port', '{server.port}'])\n"
        "code = args.handler(args)\n"
        "heavy = {'fastapi', 'starlette', 'uvicorn', 'pydantic', 'sqlalchemy', "
        "'qdrant_client', 'google', 'numpy', 'httpx'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy), code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "[] 0"
