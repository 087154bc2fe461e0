"""A real headless Chromium driving a real `bookchat serve` on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.fakes.gemini import FakeGemini

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ENV = "BOOKCHAT_CHROMIUM"
# chromium-browser last: on Ubuntu it is often only a wrapper that asks for the snap.
CHROMIUM_NAMES = ("chromium", "google-chrome-stable", "google-chrome", "chromium-browser")
# Without the background-networking flags Chromium phones home at start, which a closed
# network (CI, this sandbox) refuses; QUIC and component updates likewise.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The widget tests' book page is served by Playwright (no address), and Chromium's Local
    # Network Access checks then refuse its calls to bookchat on 127.0.0.1. A real book and
    # Space are both public, where these checks do not apply.
    "--disable-features=LocalNetworkAccessChecks",
]
# A deadline so a broken start-up fails the suite instead of hanging it; not a speed target.
STARTUP_DEADLINE_SECONDS = 300
TEST_MODEL = "gemini-page-test"
# The sample book's site (its docusaurus.config url): the widget tests serve a book page there,
# and every test server lets it call the API, as a book's ALLOWED_ORIGINS would.
BOOK_ORIGIN = "http://localhost:3000"
# Environment the service reads; the tests' servers get exactly what they set.
_SERVICE_ENV_PREFIXES = ("GEMINI_", "QDRANT_", "BOOKCHAT_", "DATABASE_URL", "ALLOWED_ORIGINS")
_SERVICE_ENV_NAMES = {"PORT", "HOST", "LOG_LEVEL"}


def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary to drive: $BOOKCHAT_CHROMIUM, else the first on PATH."""
    configured = os.environ.get(CHROMIUM_ENV, "").strip()
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of a Chromium binary; the browser tests skip (with the reason) without one."""
    path = find_chromium()
    if path is None:
        configured = os.environ.get(CHROMIUM_ENV, "").strip()
        where = f"{CHROMIUM_ENV}={configured} is not executable" if configured else "none on PATH"
        pytest.skip(
            f"no Chromium binary found ({where}): install Debian's `chromium` package "
            f"(apt-get install chromium) or set {CHROMIUM_ENV} to a Chromium/Chrome binary"
        )
    return path


@pytest.fixture
def browser(chromium_path: str):
    """A headless Chromium for one test.

    Per test, not per session: the sync API keeps an asyncio loop running in this thread for
    as long as Playwright is open, which would break every async test that runs after it.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class PageEvents:
    """What the page did that a test must not let pass silently."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    policy_violations: list[str] = field(default_factory=list)


@pytest.fixture
def page_events() -> PageEvents:
    """Errors, dialogs and policy violations seen by this test's page."""
    return PageEvents()


@pytest.fixture
def page(browser, page_events: PageEvents):
    """A fresh browser context (empty localStorage) and page at desktop size."""
    context = browser.new_context(viewport={"width": 1100, "height": 850})
    page = context.new_page()
    page.set_default_timeout(30_000)
    events = page_events
    page.on("pageerror", lambda error: events.errors.append(str(error)))

    def on_dialog(dialog) -> None:
        events.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)

    def on_console(message) -> None:
        if "Content Security Policy" in message.text or "Trusted Type" in message.text:
            events.policy_violations.append(message.text)

    page.on("console", on_console)
    yield page
    context.close()


@dataclass
class Bookchat:
    """A `bookchat serve` process and where it listens."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SERVICE_ENV_PREFIXES) and name not in _SERVICE_ENV_NAMES
    }
    env.update(
        {
            "BOOKCHAT_DATA_DIR": str(data_dir),
            "LOG_LEVEL": "INFO",
            "ALLOWED_ORIGINS": BOOK_ORIGIN,
            # The widget tests serve the sample book's pages at BOOK_ORIGIN, so its citations
            # point there (by default they point at bookchat's own /docs/ pages).
            "BOOKCHAT_SAMPLE_BOOK_URL": BOOK_ORIGIN,
            # One browser asks dozens of questions a minute from 127.0.0.1 here; the abuse
            # limits have their own tests (tests/api/test_admission.py).
            "BOOKCHAT_CHATS_PER_MINUTE": "0",
            "BOOKCHAT_STREAMS_PER_CLIENT": "0",
            **extra,
        }
    )
    return env


def _wait_until_started(server: Bookchat) -> dict:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    body: dict = {}
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"bookchat serve exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            body = httpx.get(f"{server.url}/api/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            body = {}
        if body.get("status") not in (None, "starting"):
            return body
        time.sleep(0.5)
    pytest.fail(f"bookchat did not finish starting: {body}\n{server.log_tail()}")


@pytest.fixture(scope="session")
def _start_bookchat(tmp_path_factory: pytest.TempPathFactory):
    servers: list[Bookchat] = []

    def start(name: str, extra_env: dict[str, str]) -> Bookchat:
        directory = tmp_path_factory.mktemp(f"bookchat-{name}")
        port = _free_port()
        log = directory / "serve.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bookchat",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=service_env(directory / "data", extra_env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Bookchat(url=f"http://127.0.0.1:{port}", process=process, log=log)
        servers.append(server)
        health = _wait_until_started(server)
        if health["status"] == "unhealthy":
            pytest.fail(f"bookchat is unhealthy: {health}\n{server.log_tail()}")
        return server

    yield start
    for server in servers:
        server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="session")
def bookchat(_start_bookchat, chromium_path: str) -> Bookchat:
    """bookchat with no configuration: the sample book, offline embedder and answerer."""
    return _start_bookchat("offline", {})


@pytest.fixture(scope="session")
def gemini_fake() -> Iterator[FakeGemini]:
    """A fake Gemini server for the browser session's Gemini-backed bookchat."""
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="session")
def bookchat_gemini(_start_bookchat, gemini_fake: FakeGemini, chromium_path: str) -> Bookchat:
    """bookchat answering with "Gemini" (the fake server); embeddings stay offline."""
    return _start_bookchat(
        "gemini",
        {
            # Not a word that occurs elsewhere: the service scrubs the key from what it shows.
            "GEMINI_API_KEY": "fake-key-for-the-page-tests",
            "GEMINI_BASE_URL": gemini_fake.base_url,
            "GEMINI_MODEL": TEST_MODEL,
            "BOOKCHAT_EMBEDDER": "local",
        },
    )


@pytest.fixture
def fake_model(gemini_fake: FakeGemini) -> Iterator[FakeGemini]:
    """The Gemini fake with an empty script, reset again afterwards."""
    gemini_fake.reset()
    yield gemini_fake
    gemini_fake.reset()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """tests/artifacts/ (git-ignored): screenshots of the page for a human to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
