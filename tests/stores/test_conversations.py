"""The conversation store on SQLite, and on PostgreSQL when BOOKCHAT_TEST_DATABASE_URL is set."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from datetime import UTC

import pytest
from sqlalchemy import text

from bookchat.config import Settings
from bookchat.stores import conversations as store
from bookchat.stores.database import create_engine, describe_target, make_sessionmaker, ping
from tests.network import free_port


@pytest.fixture
async def engine(database_settings: Settings):
    engine = create_engine(database_settings.sqlalchemy_url)
    await store.create_tables(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)


SOURCES = [
    {"file": "intro.md", "heading": "Start", "url": "https://book/intro#start", "similarity": 0.81},
    {
        "file": "nodes.md",
        "heading": "Nodes > Topics",
        "url": "https://book/nodes",
        "title": "Nodes",
    },
]


async def test_a_turn_round_trips_in_order(sessionmaker) -> None:
    async with sessionmaker() as session:
        started = await store.start_turn(
            session=session, conversation_id=None, user_text="What is a node?"
        )
    assert started.history == []
    conversation_id = started.conversation_id
    async with sessionmaker() as session:
        await store.add_message(
            session=session,
            conversation_id=conversation_id,
            role="assistant",
            content="A node is a process [1].",
            sources=SOURCES,
        )
    async with sessionmaker() as session:
        second = await store.start_turn(
            session=session, conversation_id=conversation_id, user_text="And a topic?"
        )
    assert second.conversation_id == conversation_id
    assert second.history == [
        ("user", "What is a node?"),
        ("assistant", "A node is a process [1]."),
    ]
    async with sessionmaker() as session:
        view = await store.get_conversation(session=session, conversation_id=conversation_id)
    assert view is not None
    assert [(m.role, m.content) for m in view.messages] == [
        ("user", "What is a node?"),
        ("assistant", "A node is a process [1]."),
        ("user", "And a topic?"),
    ]
    assert view.messages[0].id == started.user_message_id
    assert view.messages[1].sources == SOURCES
    assert view.messages[0].sources == []
    assert all(m.status == "complete" for m in view.messages)
    assert all(m.created_at.tzinfo is not None for m in view.messages)
    assert all(m.created_at.utcoffset() == UTC.utcoffset(None) for m in view.messages)


async def test_view_serialises_as_the_api_shape(sessionmaker) -> None:
    async with sessionmaker() as session:
        started = await store.start_turn(session=session, conversation_id=None, user_text="Hi")
        await store.add_message(
            session=session,
            conversation_id=started.conversation_id,
            role="assistant",
            content="Half an ans",
            sources=SOURCES[:1],
            status="partial",
        )
    async with sessionmaker() as session:
        view = await store.get_conversation(
            session=session, conversation_id=started.conversation_id
        )
    payload = json.loads(json.dumps(view.to_dict()))
    assert payload["conversation_id"] == str(started.conversation_id)
    assert [m["role"] for m in payload["messages"]] == ["user", "assistant"]
    assert set(payload["messages"][1]) == {
        "id",
        "role",
        "content",
        "sources",
        "created_at",
        "status",
    }
    assert payload["messages"][1]["status"] == "partial"
    assert payload["messages"][1]["sources"] == SOURCES[:1]


async def test_ordering_follows_the_sequence_not_the_clock(sessionmaker) -> None:
    async with sessionmaker() as session:
        started = await store.start_turn(session=session, conversation_id=None, user_text="m0")
        for i in range(1, 30):
            await store.add_message(
                session=session,
                conversation_id=started.conversation_id,
                role="assistant" if i % 2 else "user",
                content=f"m{i}",
            )
    async with sessionmaker() as session:
        view = await store.get_conversation(
            session=session, conversation_id=started.conversation_id
        )
        recent = await store.recent_turns(
            session=session, conversation_id=started.conversation_id, limit=4
        )
    assert [m.content for m in view.messages] == [f"m{i}" for i in range(30)]
    assert [t.content for t in recent] == ["m26", "m27", "m28", "m29"]


async def test_failed_and_partial_answers_are_kept(sessionmaker) -> None:
    async with sessionmaker() as session:
        started = await store.start_turn(session=session, conversation_id=None, user_text="Q1")
        await store.add_message(
            session=session,
            conversation_id=started.conversation_id,
            role="assistant",
            content="",
            status="failed",
        )
        await store.add_message(
            session=session,
            conversation_id=started.conversation_id,
            role="user",
            content="Q2",
        )
    async with sessionmaker() as session:
        view = await store.get_conversation(
            session=session, conversation_id=started.conversation_id
        )
        recent = await store.recent_turns(
            session=session, conversation_id=started.conversation_id, limit=10
        )
    assert [(m.role, m.status) for m in view.messages] == [
        ("user", "complete"),
        ("assistant", "failed"),
        ("user", "complete"),
    ]
    # An empty failed answer gives the model nothing to read.
    assert recent == [("user", "Q1"), ("user", "Q2")]


async def test_unknown_ids(sessionmaker) -> None:
    unknown = uuid.uuid4()
    async with sessionmaker() as session:
        assert await store.get_conversation(session=session, conversation_id=unknown) is None
        assert not await store.conversation_exists(session=session, conversation_id=unknown)
        started = await store.start_turn(session=session, conversation_id=unknown, user_text="x")
        assert started.conversation_id == unknown
        assert await store.conversation_exists(session=session, conversation_id=unknown)


async def test_conversations_are_separate(sessionmaker) -> None:
    async with sessionmaker() as session:
        a = await store.start_turn(session=session, conversation_id=None, user_text="in a")
        b = await store.start_turn(session=session, conversation_id=None, user_text="in b")
    async with sessionmaker() as session:
        view = await store.get_conversation(session=session, conversation_id=a.conversation_id)
    assert a.conversation_id != b.conversation_id
    assert [m.content for m in view.messages] == ["in a"]


async def test_concurrent_first_messages_share_one_new_conversation(sessionmaker) -> None:
    conversation_id = uuid.uuid4()

    async def send(i: int) -> None:
        async with sessionmaker() as session:
            await store.start_turn(
                session=session, conversation_id=conversation_id, user_text=f"q{i}"
            )

    await asyncio.gather(*(send(i) for i in range(5)))
    async with sessionmaker() as session:
        view = await store.get_conversation(session=session, conversation_id=conversation_id)
    assert sorted(m.content for m in view.messages) == [f"q{i}" for i in range(5)]


async def _assistant_messages(sessionmaker, conversation_id: uuid.UUID) -> list[tuple]:
    async with sessionmaker() as session:
        view = await store.get_conversation(session=session, conversation_id=conversation_id)
    assert view is not None
    return [(m.id, m.content, m.status) for m in view.messages if m.role == "assistant"]


async def test_a_retried_save_returns_the_stored_answer_once(sessionmaker) -> None:
    async with sessionmaker() as session:
        started = await store.start_turn(session=session, conversation_id=None, user_text="Q")
    answer_id = uuid.uuid4()
    saved = []
    for content in ("The answer [1].", "A retry's other text"):
        async with sessionmaker() as session:
            saved.append(
                await store.add_message(
                    session=session,
                    conversation_id=started.conversation_id,
                    role="assistant",
                    content=content,
                    sources=SOURCES,
                    message_id=answer_id,
                )
            )
    # The retry gets the row that is stored, not its own text, and adds nothing.
    assert saved[0] == saved[1]
    assert saved[1].content == "The answer [1]."
    assert saved[1].sources == SOURCES
    assert await _assistant_messages(sessionmaker, started.conversation_id) == [
        (answer_id, "The answer [1].", "complete")
    ]


async def test_racing_saves_of_one_answer_store_it_once(sessionmaker) -> None:
    # Two attempts at once (one timed out client-side while its commit still went through):
    # neither fails on the unique id, and one row is stored.
    async with sessionmaker() as session:
        started = await store.start_turn(session=session, conversation_id=None, user_text="Q")
    answer_id = uuid.uuid4()

    async def save(content: str):
        async with sessionmaker() as session:
            return await store.add_message(
                session=session,
                conversation_id=started.conversation_id,
                role="assistant",
                content=content,
                status="partial",
                message_id=answer_id,
            )

    first, second = await asyncio.gather(save("Half an"), save("Half an"))
    assert first.id == second.id == answer_id
    assert await _assistant_messages(sessionmaker, started.conversation_id) == [
        (answer_id, "Half an", "partial")
    ]


async def test_bad_role_or_status_is_refused(sessionmaker) -> None:
    async with sessionmaker() as session:
        started = await store.start_turn(session=session, conversation_id=None, user_text="x")
        with pytest.raises(ValueError, match="role"):
            await store.add_message(
                session=session,
                conversation_id=started.conversation_id,
                role="system",
                content="y",
            )
        await session.rollback()
        with pytest.raises(ValueError, match="status"):
            await store.add_message(
                session=session,
                conversation_id=started.conversation_id,
                role="assistant",
                content="y",
                status="done",
            )


async def test_create_tables_is_idempotent(engine) -> None:
    await store.create_tables(engine)
    await store.create_tables(engine)


async def test_ping_ok(engine, database_url) -> None:
    entry = await ping(engine, timeout=5)
    assert entry["status"] == "ok"
    assert entry["backend"] == ("sqlite" if database_url is None else "postgresql")
    assert "latency_ms" in entry


def test_sqlite_lives_under_the_data_dir(tmp_path) -> None:
    settings = Settings(BOOKCHAT_DATA_DIR=tmp_path / "new" / "dir", DATABASE_URL="")
    engine = create_engine(settings.sqlalchemy_url)
    assert (tmp_path / "new" / "dir").is_dir()
    assert engine.url.database == str((tmp_path / "new" / "dir" / "bookchat.sqlite3").resolve())


async def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path) -> None:
    engine = create_engine(Settings(BOOKCHAT_DATA_DIR=tmp_path, DATABASE_URL="").sqlalchemy_url)
    try:
        async with engine.connect() as connection:
            mode = await connection.scalar(text("PRAGMA journal_mode"))
            busy = await connection.scalar(text("PRAGMA busy_timeout"))
    finally:
        await engine.dispose()
    assert mode == "wal"
    assert busy == 5000


async def test_ping_down_names_host_and_port_without_the_password(tmp_path) -> None:
    port = free_port()
    settings = Settings(
        BOOKCHAT_DATA_DIR=tmp_path,
        DATABASE_URL=f"postgresql://reader:s3cret-pw@127.0.0.1:{port}/books?sslmode=disable",
    )
    engine = create_engine(settings.sqlalchemy_url)
    try:
        entry = await ping(engine, timeout=5)
    finally:
        await engine.dispose()
    assert entry["status"] == "down"
    assert entry["backend"] == "postgresql"
    assert f"127.0.0.1:{port}" in entry["detail"]
    assert "refused" in entry["detail"]
    assert "s3cret-pw" not in json.dumps(entry)


async def test_ping_timeout_explains_blocked_ports(tmp_path) -> None:
    # A listening socket that never accepts: the connection attempt hangs until the time-out.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        settings = Settings(
            BOOKCHAT_DATA_DIR=tmp_path,
            DATABASE_URL=f"postgresql://u:pw@127.0.0.1:{port}/db?sslmode=disable",
        )
        engine = create_engine(settings.sqlalchemy_url)
        try:
            entry = await ping(engine, timeout=0.5)
        finally:
            await engine.dispose()
    assert entry["status"] == "down"
    assert f"no answer from 127.0.0.1:{port} within 0.5s" in entry["detail"]
    # A server on this machine is not behind a Space's port rule: that hint would be noise.
    assert "80, 443 and 8080" not in entry["detail"]
    assert ":pw@" not in json.dumps(entry)


@pytest.mark.parametrize(
    ("host", "hint"),
    [
        ("ep-x.eu-central-1.aws.neon.tech:5432", True),
        ("93.184.215.14:5432", True),
        ("db.example.org:443", False),
        ("localhost:5432", False),
        ("127.0.0.1:5432", False),
        ("10.1.2.3:5432", False),
        ("[::1]:5432", False),
    ],
)
def test_the_spaces_port_hint_only_for_a_remote_host_on_a_closed_port(host: str, hint: bool):
    from bookchat.stores.database import _timeout_detail

    detail = _timeout_detail({"backend": "postgresql", "host": host}, 2.0)
    assert detail.startswith(f"no answer from {host} within 2s")
    assert ("Hugging Face Spaces allow only ports 80, 443 and 8080" in detail) is hint


@pytest.mark.postgres
async def test_pre_ping_survives_connections_killed_by_the_server(postgres_url) -> None:
    import psycopg

    settings = Settings(DATABASE_URL=postgres_url)
    engine = create_engine(settings.sqlalchemy_url)
    try:
        await store.create_tables(engine)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            started = await store.start_turn(session=session, conversation_id=None, user_text="a")
            backend_pid = await session.scalar(text("SELECT pg_backend_pid()"))
        # Neon scaling to zero looks like this: the server ends idle connections.
        raw = os.environ["BOOKCHAT_TEST_DATABASE_URL"].replace("+psycopg", "")
        with psycopg.connect(raw, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
        async with sessionmaker() as session:
            await store.add_message(
                session=session,
                conversation_id=started.conversation_id,
                role="assistant",
                content="still here",
            )
            view = await store.get_conversation(
                session=session, conversation_id=started.conversation_id
            )
            new_pid = await session.scalar(text("SELECT pg_backend_pid()"))
        assert new_pid != backend_pid
        assert [m.content for m in view.messages] == ["a", "still here"]
    finally:
        await engine.dispose()


async def test_neon_url_options_reach_libpq(tmp_path) -> None:
    settings = Settings(
        BOOKCHAT_DATA_DIR=tmp_path,
        DATABASE_URL="postgres://reader:pw@ep-x.neon.tech/books?sslmode=require&channel_binding=require",
    )
    engine = create_engine(settings.sqlalchemy_url)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.url.query["sslmode"] == "require"
        assert engine.url.query["channel_binding"] == "require"
        entry = describe_target(engine)
    finally:
        await engine.dispose()
    assert entry["target"] == "postgresql+psycopg://ep-x.neon.tech/books"
    assert entry["host"] == "ep-x.neon.tech:5432"
