"""Faults end honestly: PostgreSQL killed mid-answer, a full disk (SQLite max_page_count)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event

from tests.api.conftest import answer_text, app_client, wait_live_ready
from tests.fakes.gemini import Reply
from tests.pgcluster import PrivateCluster

KEY = "AIzaFAKE-faults-test-key-40aa"
ANSWER = " ".join(f"part{n}" for n in range(40)) + " [1]."


async def _wait_for(predicate, what: str) -> None:
    for _ in range(3000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.mark.postgres
@pytest.mark.slow
async def test_postgres_killed_mid_answer_keeps_the_answer_until_it_is_back(
    cluster, make_settings, fake_gemini, live_server, caplog
) -> None:
    fake_gemini.script(Reply(ANSWER, tokens_per_second=20))  # about 2 s of streaming
    settings = make_settings(cluster.url, GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake_gemini.base_url)
    server = live_server(settings)
    await wait_live_ready(server)
    runtime = server.app.state.runtime
    events: list[dict] = []
    with caplog.at_level(logging.WARNING, logger="bookchat"):
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=60) as client,
            client.stream("POST", "/api/chat", json={"message": "How do I install it?"}) as resp,
        ):
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["type"] == "token" and len(events) == 2:
                        await asyncio.to_thread(cluster.stop_now)
        done = next(e for e in events if e["type"] == "done")
        notice = events[-1]
        # The reader has the whole answer, and is told it is not stored yet.
        assert answer_text(events) == ANSWER
        assert done["saved"] is False
        assert notice["type"] == "notice"
        assert notice["code"] == "answer_not_saved"
        assert notice["pending"] is True
        assert len(runtime.conversations.pending) == 1
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert any("could not store" in r.getMessage() for r in errors)
        health = httpx.get(f"{server.url}/api/health", timeout=30).json()
        assert health["services"]["database"]["pending_answers"] == 1

        await asyncio.to_thread(cluster.start)
        await _wait_for(
            lambda: len(runtime.conversations.pending) == 0, "the pending answer to be stored"
        )
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            stored = await client.get(f"/api/conversation/{events[0]['conversation_id']}")
    messages = stored.json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == ANSWER
    assert messages[1]["status"] == "complete"


def _fill_limit(engine) -> None:
    """From now on every new SQLite connection may not grow the file: a full disk."""

    def limit(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    event.listen(engine.sync_engine, "connect", limit)


async def test_a_full_disk_is_storage_full_in_chat_and_not_writable_in_health(
    make_settings, caplog
) -> None:
    async with app_client(make_settings()) as (app, client):
        runtime = app.state.runtime
        assert (await client.get("/api/health")).json()["services"]["database"]["writable"]
        _fill_limit(runtime.conversations.engine)
        await runtime.conversations.engine.dispose()  # the pooled connections had no limit
        with caplog.at_level(logging.ERROR, logger="bookchat"):
            statuses = []
            for n in range(200):
                response = await client.post("/api/chat", json={"message": f"Q{n} " + "x" * 1900})
                statuses.append(response.status_code)
                if response.status_code != 200:
                    break
        health = await client.get("/api/health")
    assert response.status_code == 507, statuses
    body = response.json()
    assert body["code"] == "storage_full"
    assert "full" in body["detail"]
    assert "cannot be reached" not in body["detail"]
    assert any("full" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    database = health.json()["services"]["database"]
    assert health.status_code == 503
    assert database["writable"] is False
    assert database["status"] == "down"
    assert "full" in database["detail"]


async def test_public_health_names_no_host_user_or_path(make_settings) -> None:
    from tests.network import free_port

    port = free_port()
    url = f"postgresql://owner_5521:pw-77@127.0.0.1:{port}/books"
    async with app_client(make_settings(url), ready=False) as (app, client):
        for _ in range(2400):
            if app.state.runtime.phase == "failed":
                break
            await asyncio.sleep(0.05)
        public = await client.get("/api/health")
    async with app_client(make_settings(url, BOOKCHAT_HEALTH_DETAIL="full"), ready=False) as (
        app,
        client,
    ):
        for _ in range(2400):
            if app.state.runtime.phase == "failed":
                break
            await asyncio.sleep(0.05)
        full = await client.get("/api/health")
    database = public.json()["services"]["database"]
    assert database["status"] == "down"
    assert "refused" in database["detail"]  # the cause stays: the owner can act on it
    for hidden in (str(port), "127.0.0.1", "owner_5521", "pw-77", "books", str(Path.cwd())):
        assert hidden not in public.text, hidden
    assert f"127.0.0.1:{port}" in full.text  # the owner's view says where


async def test_public_health_shows_no_file_paths(make_settings, data_dir) -> None:
    async with app_client(make_settings()) as (_, client):
        public = (await client.get("/api/health")).text
    async with app_client(make_settings(BOOKCHAT_HEALTH_DETAIL="full")) as (_, client):
        full = (await client.get("/api/health")).text
    assert str(data_dir) not in public
    assert str(data_dir) in full
