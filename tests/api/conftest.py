"""Fixtures for HTTP-level tests: settings in tmp_path, an app under its lifespan, a live server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from bookchat.app import create_app
from bookchat.config import Settings
from tests.books import base_env

READY_WAIT_SECONDS = 120.0  # generous: a cold ingest on a busy 2-core machine


@pytest.fixture
def data_dir(tmp_path: Path, ingested_qdrant: Path) -> Path:
    """A fresh BOOKCHAT_DATA_DIR whose Qdrant already holds the sample book."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(ingested_qdrant, data / "qdrant")
    return data


@pytest.fixture
def make_settings(data_dir: Path) -> Callable[..., Settings]:
    """Build Settings for this test's data dir; keyword arguments are env names to override."""

    def make(database_url: str | None = None, **overrides: Any) -> Settings:
        return Settings(**{**base_env(data_dir, database_url), **overrides})

    return make


async def wait_ready(app: FastAPI) -> None:
    """Wait until the app's start-up work is done; fail with its error if it never is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_WAIT_SECONDS
    runtime = app.state.runtime
    while runtime.phase != "ready":
        if loop.time() > deadline:
            pytest.fail(f"start-up did not finish: {runtime.phase} {runtime.step} {runtime.error}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def app_client(
    settings: Settings, *, ready: bool = True
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A new app under its lifespan and an in-process client (responses arrive whole)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if ready:
            await wait_ready(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bookchat.test") as c:
            yield app, c


class LiveServer:
    """A real uvicorn serving an app on 127.0.0.1 in a thread, for streaming-sensitive tests."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            limit_concurrency=1000,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(int(READY_WAIT_SECONDS * 20)):
            if self.server.started or not self.thread.is_alive():
                break
            threading.Event().wait(0.05)
        if not self.server.started:
            raise RuntimeError("uvicorn did not start")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server() -> Iterator[Callable[[Settings], LiveServer]]:
    """Start apps on real uvicorn servers; every one is stopped at the end of the test."""
    servers: list[LiveServer] = []

    def start(settings: Settings) -> LiveServer:
        server = LiveServer(create_app(settings)).__enter__()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.__exit__(None, None, None)


async def wait_live_ready(server: LiveServer) -> None:
    """Wait until a live server's start-up work is done."""
    await wait_ready(server.app)


# Reading the stream ---------------------------------------------------------------------------


def widget_events(raw: str) -> list[dict[str, Any]]:
    """The widget's own parsing rule: split on newlines, JSON.parse each `data: ` line."""
    return [json.loads(line[6:]) for line in raw.split("\n") if line.startswith("data: ")]


async def widget_events_as_they_come(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The widget's parsing rule applied line by line while the stream is still open."""
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


def answer_text(events: list[dict[str, Any]]) -> str:
    """The answer as the widget shows it: the token contents joined."""
    return "".join(e["content"] for e in events if e["type"] == "token")


CITATION = re.compile(r"\[(\d+)\]")


def assert_contract(events: list[dict[str, Any]]) -> None:
    """metadata first, then tokens, then done with well-formed sources that every citation fits."""
    assert events, "no events"
    first, *middle, last = events
    assert first["type"] == "metadata"
    uuid.UUID(first["conversation_id"])
    assert middle, "no token events"
    for event in middle:
        assert event["type"] == "token", event
        assert isinstance(event["content"], str)
        assert event["content"]
    assert last["type"] == "done", last
    sources = last["sources"]
    assert isinstance(sources, list)
    assert sources
    for source in sources:
        assert set(source) >= {"file", "heading", "similarity", "url", "title"}
        assert isinstance(source["file"], str)
        assert source["file"]
        assert not source["file"].startswith("/")  # relative to the docs root
        assert isinstance(source["heading"], str)
        assert isinstance(source["similarity"], int | float)
        assert 0.0 <= source["similarity"] <= 1.0
        assert isinstance(source["url"], str)
        assert source["url"]
        assert isinstance(source["title"], str)
        assert source["title"]
    cited = [int(n) for n in CITATION.findall(answer_text(events))]
    assert all(1 <= n <= len(sources) for n in cited), (cited, len(sources))


async def post_chat(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    """POST /api/chat and read the whole answer."""
    return await client.post("/api/chat", json=body)
