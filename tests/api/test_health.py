"""GET /api/health: starting, healthy, unhealthy with the reason; never a secret."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from bookchat.api.deps import NOT_READY
from bookchat.ingest import pipeline
from tests.api.conftest import app_client, wait_ready, widget_events
from tests.network import free_port

GEMINI_KEY = "AIzaFAKE-health-test-key-7f3a9c"
DB_PASSWORD = "pw-Zq8x-never-shown"
QDRANT_KEY = "qdrant-key-Kx91-never-shown"


async def wait_phase(app, phase: str) -> None:
    for _ in range(2400):
        if app.state.runtime.phase == phase:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"start-up never reached {phase}: {app.state.runtime.phase}")


async def test_healthy_names_each_dependency_and_backend(make_settings) -> None:
    async with app_client(make_settings()) as (_, client):
        response = await client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    datetime.fromisoformat(body["timestamp"])
    services = body["services"]
    assert set(services) == {"database", "vector_store", "llm", "embedder"}
    assert all(s["status"] == "up" for s in services.values()), services
    assert services["database"]["backend"] == "sqlite"
    assert services["llm"]["backend"] == "offline"
    assert services["embedder"]["backend"] == "offline"
    assert services["vector_store"]["points"] > 0
    # Which index is served: the one under the data dir (no BOOKCHAT_INDEX_DIR, no manifest
    # since the sample book was not ingested by `bookchat ingest`).
    assert body["index"] == {"source": "data_dir"}


async def test_starting_until_the_sample_book_is_ready(
    make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = asyncio.Event()
    original = pipeline.ensure_sample_book

    async def slow_ingest(**parts: Any):
        await gate.wait()
        return await original(**parts)

    monkeypatch.setattr(pipeline, "ensure_sample_book", slow_ingest)
    async with app_client(make_settings(), ready=False) as (app, client):
        starting = await client.get("/api/health")
        chat = await client.post("/api/chat", json={"message": "hi"})
        gate.set()
        await wait_ready(app)
        ready = await client.get("/api/health")
    assert starting.status_code == 503
    assert starting.json()["status"] == "starting"
    assert chat.status_code == 503
    assert chat.json()["code"] == "starting"
    assert chat.headers["retry-after"]
    assert ready.status_code == 200
    assert ready.json()["status"] == "healthy"


async def test_database_down_is_unhealthy_naming_host_and_port_without_secrets(
    make_settings, fake_gemini, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    settings = make_settings(
        database_url=f"postgresql://bookchat:{DB_PASSWORD}@127.0.0.1:{port}/book",
        GEMINI_API_KEY=GEMINI_KEY,
        GEMINI_BASE_URL=fake_gemini.base_url,
        # The owner's view: where the database is (the public view: tests/api/test_faults.py).
        BOOKCHAT_HEALTH_DETAIL="full",
    )
    async with app_client(settings, ready=False) as (app, client):
        await wait_phase(app, "failed")
        health = await client.get("/api/health")
        chat = await client.post("/api/chat", json={"message": "hi"})
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "unhealthy"
    database = body["services"]["database"]
    assert database["status"] == "down"
    assert database["host"] == f"127.0.0.1:{port}"
    assert f"127.0.0.1:{port}" in database["detail"]
    assert "connection refused" in database["detail"]
    assert "bookchat@" not in health.text  # no user name in the target either
    assert "database" in body["startup"]["error"] or "tables" in body["startup"]["error"]
    assert body["services"]["llm"]["backend"] == "gemini"
    assert chat.status_code == 503
    assert chat.headers["content-type"] == "application/json"
    assert chat.json()["code"] == "unavailable"
    # The reader gets the code's fixed sentence; where the database is goes to the log only.
    assert chat.json()["detail"] == NOT_READY
    assert str(port) not in chat.text
    assert f"127.0.0.1:{port}" in caplog.text
    for text in (health.text, chat.text, caplog.text):
        assert DB_PASSWORD not in text
        assert GEMINI_KEY not in text


async def test_database_lost_after_start_up_is_503_before_the_stream(make_settings) -> None:
    from bookchat.stores.database import create_engine, make_sessionmaker

    dead = make_settings(
        database_url=f"postgresql://u:{DB_PASSWORD}@127.0.0.1:{free_port()}/x"
    ).sqlalchemy_url
    async with app_client(make_settings()) as (app, client):
        runtime = app.state.runtime
        dead_engine = create_engine(dead)
        live_sessionmaker = runtime.conversations.sessionmaker
        runtime.conversations.sessionmaker = make_sessionmaker(dead_engine)
        try:
            chat = await client.post("/api/chat", json={"message": "hi"})
            read = await client.get(f"/api/conversation/{uuid.uuid4()}")
        finally:
            runtime.conversations.sessionmaker = live_sessionmaker
            await dead_engine.dispose()
    assert chat.status_code == 503
    assert chat.headers["content-type"] == "application/json"
    assert chat.headers["retry-after"]
    assert chat.json()["code"] == "database_unavailable"
    assert "nothing was stored" in chat.json()["detail"]
    assert DB_PASSWORD not in chat.text
    assert read.status_code == 503
    assert read.json()["code"] == "database_unavailable"


async def test_qdrant_down_is_unhealthy_and_chat_ends_with_an_error_event(
    make_settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    settings = make_settings(
        QDRANT_URL=f"https://127.0.0.1:{port}",
        QDRANT_API_KEY=QDRANT_KEY,
        BOOKCHAT_HEALTH_DETAIL="full",  # the owner's view names the host
    )
    async with app_client(settings) as (_, client):
        health = await client.get("/api/health")
        chat = await client.post("/api/chat", json={"message": "How do I install bookchat?"})
        events = widget_events(chat.text)
        stored = await client.get(f"/api/conversation/{events[0]['conversation_id']}")
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "unhealthy"
    vector_store = body["services"]["vector_store"]
    assert vector_store["status"] == "down"
    assert f"127.0.0.1:{port}" in str(vector_store)
    assert chat.status_code == 200
    assert [e["type"] for e in events] == ["metadata", "error"]
    assert events[-1]["code"] == "retrieval_unavailable"
    assert str(port) not in events[-1]["message"]  # where the store lives is not the reader's
    assert "Traceback" not in chat.text
    messages = stored.json()["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "failed"),
    ]
    for text in (health.text, chat.text, caplog.text):
        assert QDRANT_KEY not in text


async def test_a_database_that_never_answers_is_named_not_waited_on(make_settings) -> None:
    # A socket that listens but never accepts looks like a firewalled or sleeping server:
    # connections open, nothing ever answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(100)
        port = silent.getsockname()[1]
        settings = make_settings(
            database_url=f"postgresql://u:{DB_PASSWORD}@127.0.0.1:{port}/x",
            BOOKCHAT_HEALTH_DETAIL="full",  # the owner's view names the host
        )
        async with app_client(settings, ready=False) as (app, client):
            while app.state.runtime.conversations is None:
                await asyncio.sleep(0.05)
            health = await client.get("/api/health")
    assert health.status_code == 503
    body = health.json()
    assert body["status"] in {"starting", "unhealthy"}
    database = body["services"]["database"]
    assert database["status"] == "down"
    assert f"no answer from 127.0.0.1:{port}" in database["detail"]
    # On this machine the Spaces port rule cannot be the cause; the hint is left out.
    assert "may be blocked" not in database["detail"]
    assert DB_PASSWORD not in health.text


async def test_failed_start_up_work_is_retried_until_it_succeeds(
    make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bookchat.stores import conversations

    real_create_tables = conversations.create_tables
    calls = 0
    # The retry's wait is jittered down to ~0 s: the second attempt waits until the test has
    # read the failed health, or a fast retry could succeed between two polls of the phase.
    failure_seen = asyncio.Event()

    async def flaky_create_tables(engine) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("the database is still waking up")
        await failure_seen.wait()
        await real_create_tables(engine)

    monkeypatch.setattr(conversations, "create_tables", flaky_create_tables)
    async with app_client(make_settings(), ready=False) as (app, client):
        await wait_phase(app, "failed")
        failed = await client.get("/api/health")
        failure_seen.set()
        await wait_ready(app)
        recovered = await client.get("/api/health")
    assert failed.status_code == 503
    assert failed.json()["status"] == "unhealthy"
    # People read the step and a classified cause; the driver's own text stays in the log.
    error = failed.json()["startup"]["error"]
    assert error.startswith("creating the conversation tables failed: ")
    assert "still waking up" not in error
    assert recovered.status_code == 200
    assert recovered.json()["startup"]["attempts"] == 2


REFUSED = "connection refused: is the server running and the port right?"
# What psycopg and libpq say; people must never read it (the server log keeps it).
DRIVER_WORDS = ("psycopg.", "OperationalError", "Connection refused", 'server at "')


async def test_a_refused_database_reads_plainly_in_health_and_fixed_in_chat(make_settings) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    settings = make_settings(
        database_url=f"postgresql://u:{DB_PASSWORD}@127.0.0.1:{port}/x",
        BOOKCHAT_HEALTH_DETAIL="full",  # the owner's view names the host
    )
    async with app_client(settings, ready=False) as (app, client):
        await wait_phase(app, "failed")
        health = await client.get("/api/health")
        chat = await client.post("/api/chat", json={"message": "Is it up?"})
    body = health.json()
    error = body["startup"]["error"]
    assert error == f"creating the conversation tables failed: 127.0.0.1:{port}: {REFUSED}"
    assert body["services"]["database"]["detail"] == f"127.0.0.1:{port}: {REFUSED}"
    assert chat.status_code == 503
    # The chat's reader gets the code's fixed sentence; the owner's health view says why.
    assert chat.json()["detail"] == NOT_READY
    for text in (health.text, chat.text):
        assert not [word for word in DRIVER_WORDS if word in text], text
        assert DB_PASSWORD not in text


async def test_a_check_out_of_time_on_a_busy_loop_is_not_down(make_settings, monkeypatch) -> None:
    # The database answers, but only after the check's time is up, and meanwhile the event
    # loop is blocked in stretches, as under a hundred busy streams: not the database's fault.
    from bookchat.api import health as health_module
    from bookchat.stores import conversation_store

    async def slow_ping(engine, *, timeout: float) -> dict[str, Any]:
        await asyncio.sleep(timeout)
        return {"backend": "sqlite", "status": "down", "detail": "SQLite did not answer"}

    async def busy_loop() -> None:
        while True:
            time.sleep(0.7)  # the point: a loop too busy to run anything else
            await asyncio.sleep(0)

    async with app_client(make_settings()) as (_, client):
        monkeypatch.setattr(conversation_store, "ping", slow_ping)
        busy = asyncio.create_task(busy_loop())
        try:
            health = await client.get("/api/health")
        finally:
            busy.cancel()
        calm = await client.get("/api/health")
    database = health.json()["services"]["database"]
    assert database["status"] == "up", database
    assert "while the server was busy" in database["detail"]
    assert health.status_code == 200
    # On a calm loop the same slow answer is down.
    assert calm.json()["services"]["database"]["status"] == "down"
    assert calm.status_code == 503
    assert health_module.BUSY_LOOP_SECONDS < 0.7


async def test_health_requests_arriving_together_share_one_check(
    make_settings, monkeypatch
) -> None:
    # A flood of probes costs one check of each dependency, not one per request.
    from bookchat.stores import conversation_store

    pings = 0
    original = conversation_store.ping

    async def counted_ping(engine, *, timeout: float) -> dict[str, Any]:
        nonlocal pings
        pings += 1
        await asyncio.sleep(0.5)  # a slow answer: every request below arrives meanwhile
        return await original(engine, timeout=timeout)

    async with app_client(make_settings()) as (_, client):
        monkeypatch.setattr(conversation_store, "ping", counted_ping)
        together = await asyncio.gather(*(client.get("/api/health") for _ in range(20)))
        shared = pings
        later = await client.get("/api/health")
    assert [r.status_code for r in together] == [200] * 20
    assert len({r.text for r in together}) == 1
    assert shared < 20
    # A request after the shared check has ended gets a check of its own.
    assert pings == shared + 1
    assert later.json()["status"] == "healthy"
