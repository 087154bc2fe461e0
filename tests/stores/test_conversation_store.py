"""The ConversationStore: one writers' queue, errors in its own terms, an answer stored once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, update

from bookchat.config import Settings
from bookchat.stores import conversation_store
from bookchat.stores.conversation_models import AnsweringRow, MessageRow, utc
from bookchat.stores.conversation_store import ConversationStore, PendingSaves
from bookchat.stores.errors import (
    ConversationFull,
    ConversationNotFound,
    StorageFull,
    StoreUnavailable,
)
from bookchat.stores.owners import LEASE_SECONDS, AnswerOwner
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


@pytest.fixture
async def two_processes(database_settings: Settings, tmp_path):
    """Two stores on one database, as two server processes on one data dir."""
    stores = [
        ConversationStore(database_settings.sqlalchemy_url, AnswerOwner(tmp_path / "owners"))
        for _ in range(2)
    ]
    await stores[0].create_tables()
    yield stores
    for store in stores:
        await store.aclose(timeout=0.5)


async def _ask_owned(store: ConversationStore, conversation_id: uuid.UUID | None = None):
    answer_id = uuid.uuid4()
    started = await store.start_turn(
        conversation_id=conversation_id,
        text="How?",
        history_limit=6,
        max_messages=200,
        answer_id=answer_id,
    )
    return started, answer_id


def _shape(found) -> list[tuple[str, str, str]]:
    view, _ = found
    return [(m.role, m.status, m.content) for m in view.messages]


async def test_only_the_dead_processes_question_gets_a_failed_answer(two_processes) -> None:
    dying, living = two_processes
    lost, lost_answer = await _ask_owned(dying)
    kept, _ = await _ask_owned(living)
    dying.owner.close()  # as the kernel does when the process dies
    assert await living.mark_interrupted(asked_before=datetime.now(UTC)) == 1
    found = await living.read(lost.conversation_id)
    assert found is not None
    assert _shape(found) == [("user", "complete", "How?"), ("assistant", "failed", "")]
    assert found[0].messages[1].id == lost_answer  # in the place of the answer it would have had
    assert not found[0].answering
    # The live process's question is left alone, reads as being answered, and is answered.
    view, _ = await dying.read(kept.conversation_id) or (None, None)
    assert view is not None
    assert [m.role for m in view.messages] == ["user"]
    assert view.answering


async def test_reading_a_conversation_marks_its_dead_question(two_processes) -> None:
    dying, living = two_processes
    lost, _ = await _ask_owned(dying)
    dying.owner.close()
    found = await living.read(lost.conversation_id)
    assert found is not None
    assert _shape(found)[1:] == [("assistant", "failed", "")]
    # A new question in it comes after that failed answer, and is answered as usual.
    again, answer_id = await _ask_owned(living, lost.conversation_id)
    await living.save_answer(
        conversation_id=again.conversation_id,
        message_id=answer_id,
        content="Thus.",
        sources=[],
        status="complete",
    )
    found = await living.read(lost.conversation_id)
    assert found is not None
    assert [(role, status) for role, status, _ in _shape(found)] == [
        ("user", "complete"),
        ("assistant", "failed"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert not found[0].answering


async def test_a_new_question_puts_the_dead_ones_answer_first(two_processes) -> None:
    dying, living = two_processes
    lost, _ = await _ask_owned(dying)
    dying.owner.close()
    await _ask_owned(living, lost.conversation_id)
    found = await living.read(lost.conversation_id)
    assert found is not None
    assert [role for role, _, _ in _shape(found)] == ["user", "assistant", "user"]
    assert found[0].answering


async def _age_claims(store: ConversationStore, seconds: float) -> None:
    async with store.sessionmaker() as session:
        await session.execute(
            update(AnsweringRow).values(seen_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )
        await session.commit()


async def test_elsewhere_a_lapsed_heartbeat_is_dead_and_a_late_answer_still_wins(
    database_settings: Settings, tmp_path
) -> None:
    # The other process has no file in this data dir: another machine on the same PostgreSQL.
    elsewhere = ConversationStore(database_settings.sqlalchemy_url)
    here = ConversationStore(database_settings.sqlalchemy_url, AnswerOwner(tmp_path / "owners"))
    try:
        await here.create_tables()
        started, answer_id = await _ask_owned(elsewhere)
        assert await here.mark_interrupted(asked_before=datetime(2000, 1, 1, tzinfo=UTC)) == 0
        await _age_claims(here, LEASE_SECONDS + 1)
        found = await here.read(started.conversation_id)
        assert found is not None
        assert _shape(found)[1:] == [("assistant", "failed", "")]
        # It was alive after all (a stalled loop): its answer takes the failed one's place.
        outcome = await elsewhere.save_answer(
            conversation_id=started.conversation_id,
            message_id=answer_id,
            content="Late [1].",
            sources=[{"file": "a.md"}],
            status="complete",
        )
        assert outcome == "stored"
        found = await here.read(started.conversation_id)
        assert found is not None
        assert _shape(found)[1:] == [("assistant", "complete", "Late [1].")]
        assert found[0].messages[1].sources == [{"file": "a.md"}]
    finally:
        await elsewhere.aclose(timeout=0.5)
        await here.aclose(timeout=0.5)


async def test_the_heartbeat_refreshes_questions_while_answers_are_owed(
    database_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversation_store, "HEARTBEAT_SECONDS", 0.05)
    store = ConversationStore(database_settings.sqlalchemy_url)
    try:
        await store.create_tables()
        await _ask_owned(store)
        owed = store.answer_owed()
        await _age_claims(store, 3600)

        async def seen() -> datetime:
            async with store.sessionmaker() as session:
                return utc(await session.scalar(select(AnsweringRow.seen_at)))

        async with asyncio.timeout(60):
            while await seen() < datetime.now(UTC) - timedelta(seconds=60):
                await asyncio.sleep(0.05)
        owed.set_result(True)
        assert store._heartbeat is not None
        async with asyncio.timeout(60):
            await store._heartbeat  # stops once nothing is owed
    finally:
        await store.aclose(timeout=0.5)


async def test_a_stored_answer_ends_the_ownership(two_processes) -> None:
    dying, living = two_processes
    started, answer_id = await _ask_owned(dying)
    await dying.save_answer(
        conversation_id=started.conversation_id,
        message_id=answer_id,
        content="Done.",
        sources=[],
        status="complete",
    )
    dying.owner.close()
    assert await living.mark_interrupted(asked_before=datetime.now(UTC)) == 0
    found = await living.read(started.conversation_id)
    assert found is not None
    assert _shape(found)[1:] == [("assistant", "complete", "Done.")]
    assert not found[0].answering


async def test_an_unowned_question_from_before_the_start_is_marked(two_processes) -> None:
    # Stored by a bookchat that recorded no owner: judged by when the serving started.
    store, _ = two_processes
    old = await _ask(store)
    assert await store.mark_interrupted(asked_before=datetime(2000, 1, 1, tzinfo=UTC)) == 0
    assert await store.mark_interrupted(asked_before=datetime.now(UTC) + timedelta(1)) == 1
    found = await store.read(old.conversation_id)
    assert found is not None
    assert _shape(found)[1:] == [("assistant", "failed", "")]
