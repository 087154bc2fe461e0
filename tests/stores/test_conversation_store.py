"""The ConversationStore: one writers' queue, errors in its own terms, an answer stored once."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from sqlalchemy import event, func, select

from bookchat.config import Settings
from bookchat.stores.conversation_models import MessageRow
from bookchat.stores.conversation_store import ConversationStore, PendingSaves
from bookchat.stores.errors import (
    ConversationFull,
    ConversationNotFound,
    StorageFull,
    StoreUnavailable,
)
from tests.network import free_port


@pytest.fixture
async def store(database_settings: Settings):
    store = ConversationStore(database_settings.sqlalchemy_url)
    await store.create_tables()
    yield store
    await store.aclose()


@pytest.fixture
async def sqlite_store(tmp_path):
    store = ConversationStore(Settings(BOOKCHAT_DATA_DIR=tmp_path, DATABASE_URL="").sqlalchemy_url)
    await store.create_tables()
    yield store
    await store.aclose(timeout=0.5)


async def _ask(store: ConversationStore, text: str = "How?", max_messages: int = 200):
    return await store.start_turn(
        conversation_id=None, text=text, history_limit=6, max_messages=max_messages
    )


async def _answers(store: ConversationStore, conversation_id: uuid.UUID) -> int:
    async with store.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(MessageRow)
            .where(MessageRow.conversation_id == conversation_id, MessageRow.role == "assistant")
        )
    return int(count or 0)


async def test_an_answer_saved_twice_is_stored_once(store: ConversationStore) -> None:
    started = await _ask(store)
    answer_id = uuid.uuid4()
    for _ in range(2):  # a retry after a commit whose reply was lost
        outcome = await store.save_answer(
            conversation_id=started.conversation_id,
            message_id=answer_id,
            content="Like this [1].",
            sources=[{"file": "a.md"}],
            status="complete",
        )
        assert outcome == "stored"
    assert await _answers(store, started.conversation_id) == 1


async def test_the_conversation_rules_are_the_stores(store: ConversationStore) -> None:
    with pytest.raises(ConversationNotFound):
        await store.start_turn(
            conversation_id=uuid.uuid4(), text="Hi", history_limit=6, max_messages=200
        )
    first = await _ask(store, "One", max_messages=2)
    with pytest.raises(ConversationFull):
        await store.start_turn(
            conversation_id=first.conversation_id, text="Two", history_limit=6, max_messages=2
        )


async def test_a_vote_waits_in_the_writers_queue(sqlite_store: ConversationStore) -> None:
    # SQLite takes one writer: a vote queues behind an answer being saved, like every write.
    store = sqlite_store
    started = await _ask(store)
    answer_id = uuid.uuid4()
    await store.save_answer(
        conversation_id=started.conversation_id,
        message_id=answer_id,
        content="So.",
        sources=[],
        status="complete",
    )
    assert store._write_lock is not None
    async with store._write_lock:
        vote = asyncio.create_task(
            store.set_feedback(message_id=answer_id, rating="up", reason=None)
        )
        for _ in range(20):
            await asyncio.sleep(0)
        assert not vote.done()
    stored = await vote
    assert stored is not None
    assert stored.rating == "up"


async def _ask_until_refused(store: ConversationStore) -> None:
    for n in range(500):
        await _ask(store, f"{n} " + "x" * 4000)


async def test_a_full_disk_is_storage_full_and_the_answer_waits(
    sqlite_store: ConversationStore,
) -> None:
    store = sqlite_store
    started = await _ask(store)

    def no_growth(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA page_count")
        cursor.execute(f"PRAGMA max_page_count = {cursor.fetchone()[0]}")
        cursor.close()

    event.listen(store.engine.sync_engine, "connect", no_growth)
    await store.engine.dispose()
    with pytest.raises(StorageFull):
        await _ask_until_refused(store)
    assert not store.writes.writable
    assert (await store.ping(timeout=5))["writable"] is False
    # The answer cannot be stored either: it waits in memory instead of raising.
    outcome = await store.save_answer(
        conversation_id=started.conversation_id,
        message_id=uuid.uuid4(),
        content="y" * 40_000,
        sources=[],
        status="complete",
    )
    assert outcome == "pending"
    assert len(store.pending) == 1


async def test_an_unreachable_store_is_store_unavailable(tmp_path) -> None:
    url = Settings(
        BOOKCHAT_DATA_DIR=tmp_path, DATABASE_URL=f"postgresql://u:pw@127.0.0.1:{free_port()}/x"
    ).sqlalchemy_url
    store = ConversationStore(url)
    try:
        with pytest.raises(StoreUnavailable):
            await store.start_turn(conversation_id=None, text="Hi", history_limit=6, max_messages=9)
        with pytest.raises(StoreUnavailable):
            await store.read(uuid.uuid4())
        with pytest.raises(StoreUnavailable):
            await store.set_feedback(message_id=uuid.uuid4(), rating="up", reason=None)
        assert store.writes.writable  # unreachable is not full: health's ping says it
    finally:
        await store.aclose(timeout=0.5)


async def test_pending_saves_are_bounded_and_say_what_is_lost(caplog) -> None:
    calls: list[str] = []

    async def failing() -> None:
        calls.append("try")
        raise OSError("store down")

    pending = PendingSaves(limit=2)
    with caplog.at_level(logging.ERROR, logger="bookchat"):
        assert pending.add("answer 1", failing)
        assert pending.add("answer 2", failing)
        assert not pending.add("answer 3", failing)
        await pending.aclose(timeout=1)
    assert pending.lost == 1
    assert len(pending) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("answer 3 is lost" in m for m in messages)
    assert any("never stored" in m for m in messages)


async def test_pending_saves_store_in_order_once_the_store_is_back() -> None:
    stored: list[int] = []
    down = True

    def save(n: int):
        async def run() -> None:
            if down:
                raise OSError("store down")
            stored.append(n)

        return run

    pending = PendingSaves()
    for n in range(3):
        pending.add(f"answer {n}", save(n))
    down = False
    assert pending._task is not None
    await asyncio.wait_for(pending._task, timeout=60)  # the background retry drains it
    assert len(pending) == 0
    assert stored == [0, 1, 2]
    await pending.aclose(timeout=1)
