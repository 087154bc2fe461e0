"""The conversation store as one object: the database, its writers' queue, its failures.

The runtime builds one ConversationStore from DATABASE_URL. Everything that reads or writes
conversations (a chat turn, a reader's vote, the conversation read, start-up, the report) goes
through it, so it alone knows that SQLite takes one writer at a time, how a driver's error
becomes StoreUnavailable or StorageFull, and how an answer is stored exactly once: retried
briefly, then kept in memory (PendingSaves) until the store is back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError

from bookchat.retry import retrying
from bookchat.stores import conversations, feedback, insights
from bookchat.stores.budget import LlmCallLedger
from bookchat.stores.conversation_models import (
    ConversationView,
    Feedback,
    Status,
    TurnStarted,
)
from bookchat.stores.database import (
    create_engine,
    describe_failure,
    make_sessionmaker,
    ping,
    write_failure,
)
from bookchat.stores.errors import (
    ConversationFull,
    ConversationNotFound,
    StorageFull,
    StoreUnavailable,
)
from bookchat.stores.owners import HEARTBEAT_SECONDS, AnswerOwner

log = logging.getLogger(__name__)

# Errors that mean "the store did not do it" (a driver error, a dead socket, a time-out).
STORE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)
# A blip (a pooled connection the server dropped, a restart) passes within these; the reader's
# `done` waits for them, so they stay short. After them the answer waits in PendingSaves.
SAVE_ATTEMPTS = 3
SAVE_RETRY_SECONDS = 0.5
SAVE_TIMEOUT_SECONDS = 10.0  # a save after a disconnect may not hold shutdown for longer
SHUTDOWN_SAVE_WAIT_SECONDS = 15.0
MAX_PENDING_SAVES = 200  # answers held while the store is down; past it they are lost (ERROR)
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 10.0

Save = Callable[[], Awaitable[None]]
# stored: in the store now; pending: waits in memory for the store; lost: will not be stored.
SaveOutcome = Literal["stored", "pending", "lost"]


@dataclass
class WriteState:
    """Whether the conversation store's last write failed for want of space (/api/health)."""

    failure: str | None = None
    since: float | None = None

    def succeeded(self) -> None:
        if self.failure is not None:
            log.warning("the conversation store takes writes again (it was %s)", self.failure)
        self.failure, self.since = None, None

    def failed(self, failure: str) -> None:
        # Only a full store is remembered: an unreachable one shows in the health ping anyway
        # (and would stay "failed" until the next chat), and one bad row says nothing.
        if failure != "full":
            return
        if self.failure != failure:
            self.since = time.time()
        self.failure = failure

    @property
    def writable(self) -> bool:
        return self.failure is None


@dataclass
class PendingSaves:
    """Saves waiting for the store, oldest first, retried by one background task.

    A reader who got a full answer should not lose it because the database blinked: a save
    that still fails after its bounded retries waits here, in memory and bounded.
    """

    limit: int = MAX_PENDING_SAVES
    _queue: collections.deque[tuple[str, Save]] = field(default_factory=collections.deque)
    _task: asyncio.Task[None] | None = None
    lost: int = 0

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, what: str, save: Save) -> bool:
        """Queue a save; False (and counted as lost) when the queue is full."""
        if len(self._queue) >= self.limit:
            self.lost += 1
            log.error(
                "%s is lost: %d answers already wait for the conversation store", what, self.limit
            )
            return False
        self._queue.append((what, save))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return True

    async def _drain(self) -> None:
        # The save has just failed its own retries: the first try here waits a moment too.
        await asyncio.sleep(RETRY_FIRST_SECONDS)
        async for attempt in retrying(
            retry_on=lambda exc: isinstance(exc, Exception),
            attempts=None,
            initial=RETRY_FIRST_SECONDS,
            maximum=RETRY_MAX_SECONDS,
            before_sleep=lambda state: log.warning(
                "%d answer(s) still wait for the conversation store: %s",
                len(self._queue),
                type(state.outcome.exception()).__name__ if state.outcome else "?",
            ),
        ):
            with attempt:
                await self._store_waiting()

    async def _store_waiting(self) -> None:
        """Store what waits, oldest first; the first failure stops (and is raised)."""
        stored = 0
        try:
            while self._queue:
                _, save = self._queue[0]
                await save()
                self._queue.popleft()
                stored += 1
        finally:
            if stored:
                log.warning("stored %d answer(s) that waited for the conversation store", stored)

    async def aclose(self, timeout: float) -> None:
        """One last try for what still waits (bounded), then say what is lost."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await self._store_waiting()
        if self._queue:
            log.error(
                "%d answer(s) were never stored: the conversation store did not come back "
                "before shutdown",
                len(self._queue),
            )


def _log_marked(marked: int) -> None:
    if marked:
        log.warning(
            "%d question(s) had no answer (the process answering them died): marked failed",
            marked,
        )


class ConversationStore:
    """Conversations in PostgreSQL or SQLite (a SQLAlchemy URL), for one app."""

    def __init__(self, url: str, owner: AnswerOwner | None = None) -> None:
        self.engine = create_engine(url)
        # Who answers this store's questions (this process), and who judges other processes.
        self.owner = owner or AnswerOwner()
        self.sessionmaker = make_sessionmaker(self.engine)
        # SQLite has one writer at a time, and its busy handler polls with growing sleeps:
        # under a burst of questions, queueing writers in-process is fairer and far faster.
        # None for PostgreSQL, which handles concurrent writers itself.
        self._write_lock = asyncio.Lock() if self.engine.dialect.name == "sqlite" else None
        # The day's LLM calls are counted here too, in the same writers' queue.
        self.llm_calls = LlmCallLedger(self.engine, self._write_lock)
        self.pending = PendingSaves()
        self.writes = WriteState()
        # One future per chat turn whose answer is not stored yet; aclose waits for them.
        self._owed: set[asyncio.Future[bool]] = set()
        # Refreshes this process's questions while it answers any (stores/owners.py).
        self._heartbeat: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[Any]:
        async with self._write_lock or contextlib.nullcontext(), self.sessionmaker() as session:
            yield session

    @contextlib.asynccontextmanager
    async def _translated(self, what: str) -> AsyncIterator[None]:
        """A driver's failure as StorageFull or StoreUnavailable (its kind, never its text)."""
        try:
            yield
        except STORE_ERRORS as exc:
            failure = write_failure(exc)
            self.writes.failed(failure)
            if failure == "full":
                log.error("the conversation store is full: %s failed", what)
                raise StorageFull(type(exc).__name__) from exc
            raise StoreUnavailable(type(exc).__name__) from exc

    async def create_tables(self) -> None:
        """Create the tables that do not exist yet (idempotent)."""
        await conversations.create_tables(self.engine)

    async def mark_interrupted(self, *, asked_before: datetime) -> int:
        """Give the questions that processes died answering a `failed` answer; how many.

        At start-up: the questions of dead owners (stores/owners.py), and unanswered ones
        stored without an owner, asked before `asked_before` (when the serving started).
        """
        async with self._writing() as session:
            marked = await self._sweep(session)
            marked += await conversations.mark_unowned(session=session, asked_before=asked_before)
            # Files of processes that died with nothing to answer; not those still owning
            # questions (alive, or about to be judged by the next sweep).
            self.owner.prune(keep=await conversations.owners(session=session))
        _log_marked(marked)
        return marked

    async def _mark_orphans(self, conversation_id: uuid.UUID | None = None) -> int:
        async with self._writing() as session:
            marked = await self._sweep(session, conversation_id)
        _log_marked(marked)
        return marked

    async def _sweep(self, session: Any, conversation_id: uuid.UUID | None = None) -> int:
        """In `session`: the questions of owners found dead (of one conversation, with
        conversation_id) get their `failed` answer, and those owners' files go; how many."""
        marked, dead = await conversations.mark_orphans(
            session=session, dead=self.owner.dead, conversation_id=conversation_id
        )
        self.owner.forget(dead)
        return marked

    async def ping(self, *, timeout: float) -> dict[str, Any]:
        """The health entry: ping status and target, and whether writes are taken."""
        entry = await ping(self.engine, timeout=timeout)
        # A SELECT 1 answers on a full disk too: the chats' own writes say whether it takes more.
        entry["writable"] = self.writes.writable
        if not self.writes.writable:
            entry.update(
                status="down",
                detail="the conversation store is full (no space left): chats cannot be stored",
            )
        if len(self.pending):
            entry["pending_answers"] = len(self.pending)
        return entry

    def describe_failure(self, exc: BaseException) -> str:
        """A failed connection or statement in a reader's words: where, and the likely cause."""
        return describe_failure(self.engine, exc)

    async def start_turn(
        self,
        *,
        conversation_id: uuid.UUID | None,
        text: str,
        history_limit: int,
        max_messages: int,
        answer_id: uuid.UUID | None = None,
    ) -> TurnStarted:
        """Store the reader's question and commit; the turns before it come back with it.

        answer_id: the id its answer will be stored with; the question is then this process's
        to answer, and gets a `failed` answer from another process if this one dies first.

        Raises ConversationNotFound, ConversationFull (a turn adds two messages to a
        conversation that may hold max_messages), StorageFull or StoreUnavailable; in each
        case nothing was stored.
        """
        async with self._translated("storing a question"), self._writing() as session:
            if conversation_id is not None:
                # An earlier question whose answerer died gets its `failed` answer first, in
                # its place before this one.
                await self._sweep(session, conversation_id)
                held = await conversations.count_messages(
                    session=session, conversation_id=conversation_id
                )
                # A stored conversation has at least its first question.
                if not held and not await conversations.conversation_exists(
                    session=session, conversation_id=conversation_id
                ):
                    raise ConversationNotFound(str(conversation_id))
                if held + 2 > max_messages:
                    raise ConversationFull(str(conversation_id))
            started = await conversations.start_turn(
                session=session,
                conversation_id=conversation_id,
                user_text=text,
                history_limit=history_limit,
                answer=None if answer_id is None else (answer_id, self.owner.token),
            )
        self.writes.succeeded()
        return started

    def answer_owed(self) -> asyncio.Future[bool]:
        """A future to resolve once a turn's answer is stored or given up; aclose waits for it."""
        owed = asyncio.get_running_loop().create_future()
        self._owed.add(owed)
        owed.add_done_callback(self._owed.discard)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        return owed

    async def _beat(self) -> None:
        """While answers are owed: refresh this process's questions, and mark those of
        processes found dead meanwhile (on another machine, only a lapsed heartbeat tells)."""
        while self._owed:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                async with self._writing() as session:
                    await conversations.refresh_owner(session=session, owner=self.owner.token)
                await self._mark_orphans()
            except STORE_ERRORS as exc:  # the next beat tries again; the lease is long
                log.info("refreshing the questions being answered: %s", type(exc).__name__)

    async def save_answer(
        self,
        *,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
        content: str,
        sources: Sequence[Mapping[str, Any]],
        status: Status,
    ) -> SaveOutcome:
        """Store an answer once (message_id makes a retried save idempotent).

        A few quick retries; if the store still fails, the answer waits in memory and is
        stored when the store is back ("pending"), unless the store refused the row itself or
        too many already wait ("lost"). Never raises a store error.
        """

        async def write() -> None:
            async with self._writing() as session:
                await conversations.add_message(
                    session=session,
                    conversation_id=conversation_id,
                    role="assistant",
                    content=content,
                    sources=sources,
                    status=status,
                    message_id=message_id,
                )
            self.writes.succeeded()

        try:
            async with asyncio.timeout(SAVE_TIMEOUT_SECONDS):
                async for attempt in retrying(
                    retry_on=lambda exc: write_failure(exc) != "rejected",
                    attempts=SAVE_ATTEMPTS,
                    initial=SAVE_RETRY_SECONDS,
                    maximum=SAVE_RETRY_SECONDS * 4,
                ):
                    with attempt:
                        await write()
        except Exception as exc:
            failure = write_failure(exc)
            self.writes.failed(failure)
            what = f"the {status} answer of conversation {conversation_id}"
            pending = failure != "rejected" and self.pending.add(what, write)
            log.error(
                "could not store %s (%s, %s)%s",
                what,
                failure,
                type(exc).__name__,
                "; it waits in memory for the store" if pending else "",
            )
            return "pending" if pending else "lost"
        return "stored"

    async def read(
        self, conversation_id: uuid.UUID
    ) -> tuple[ConversationView, dict[uuid.UUID, Feedback]] | None:
        """The conversation with its messages, and the readers' votes on its answers, by
        message id; None if it is not stored. Raises StoreUnavailable."""
        async with self._translated("reading a conversation"):
            found = await self._read(conversation_id)
            if (
                found is not None
                and found[0].answering
                and await self._mark_orphans(conversation_id)
            ):
                # The process answering it is gone: read it again, with the `failed` answer.
                found = await self._read(conversation_id)
        return found

    async def _read(
        self, conversation_id: uuid.UUID
    ) -> tuple[ConversationView, dict[uuid.UUID, Feedback]] | None:
        async with self.sessionmaker() as session:
            view = await conversations.get_conversation(
                session=session, conversation_id=conversation_id
            )
            if view is None:
                return None
            answering = await conversations.answering(
                session=session, conversation_id=conversation_id
            )
            votes = await feedback.feedback_for(
                session=session,
                message_ids=[m.id for m in view.messages if m.role == "assistant"],
            )
        return dataclasses.replace(view, answering=answering), votes

    async def set_feedback(
        self, *, message_id: uuid.UUID, rating: str, reason: str | None
    ) -> Feedback | None:
        """Store (or replace) the vote on an answer; None if no answer has that id.
        Raises StorageFull or StoreUnavailable."""
        async with self._translated("storing a vote"), self._writing() as session:
            vote = await feedback.set_feedback(
                session=session, message_id=message_id, rating=rating, reason=reason
            )
        self.writes.succeeded()
        return vote

    async def answered_since(self, since: datetime) -> list[insights.AnsweredQuestion]:
        """What the owner's report reads: answers stored or voted on since `since`."""
        async with self.sessionmaker() as session:
            return await insights.answered_since(session=session, since=since)

    async def aclose(self, timeout: float = SHUTDOWN_SAVE_WAIT_SECONDS) -> None:
        """Store what can still be stored (bounded), then close the engine."""
        try:
            if self._owed:
                # Streams the server has just cut off store their partial answers first.
                await asyncio.wait(set(self._owed), timeout=timeout)
            if self._heartbeat is not None:
                self._heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._heartbeat
            if len(self.pending):
                # Answers the store did not take get a last chance before the engine closes.
                await self.pending.aclose(timeout=timeout)
        finally:
            await self.engine.dispose()
