"""One chat turn: store the question, retrieve, stream the answer, store the answer.

No database session is held while tokens stream: the question is stored in a short session
before the stream starts and the answer in another one after it ends (or is cut short).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio

from bookchat.rag.citations import CitationGuard, cited
from bookchat.rag.coalesce import Interrupted, Stopping, coalesced
from bookchat.rag.prompt import is_refusal
from bookchat.rag.saving import PendingSaves, WriteState
from bookchat.rag.types import Passage, RetrievalUnavailable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bookchat.rag.answerer import Answerer
    from bookchat.rag.retrieve import BookRetriever

log = logging.getLogger(__name__)

Mode = Literal["general", "selection"]
Status = Literal["complete", "partial", "stopped", "failed"]

HISTORY_MESSAGES = 6  # the last three exchanges give the model (and the query) their context
PASSAGES_PER_ANSWER = 5
SAVE_TIMEOUT_SECONDS = 10.0  # a save after a disconnect may not hold shutdown for longer
# What a reader reads when the book's index or the question's embedding is unavailable.
RETRIEVAL_UNAVAILABLE = "The book's search is unavailable right now; please try again shortly."
# A blip (a pooled connection the server dropped, a restart) passes within these; the reader's
# `done` waits for them, so they stay short. After them the answer waits in PendingSaves.
SAVE_ATTEMPTS = 3
SAVE_RETRY_SECONDS = 0.5
SELECTION_IN_QUERY_CHARS = 500  # the start of the highlighted text sharpens retrieval
# A conversation holds at most this many messages (a turn adds two): bounded storage, bounded
# GET /api/conversation responses, and a prompt history that stays relevant.
MAX_CONVERSATION_MESSAGES = 200


class ConversationNotFound(Exception):
    """The conversation_id names no stored conversation."""


class ConversationFull(Exception):
    """The conversation has MAX_CONVERSATION_MESSAGES messages; nothing was stored."""


class StorageFull(Exception):
    """The conversation store has no room for the question (a full disk); nothing was stored."""


class StoreUnavailable(Exception):
    """The conversation store could not be reached; nothing was stored."""


def source_of(passage: Passage, *, origin: str | None = None) -> dict[str, Any]:
    """A passage as the widget's source entry (the n-th entry is citation [n]).

    A root-relative URL (the bundled sample book's, served by bookchat itself) is made absolute
    with `origin`, the server's own, so the widget on any page links back here.
    """
    url = passage.url
    if origin and url.startswith("/") and not url.startswith("//"):
        url = origin.rstrip("/") + url
    source: dict[str, Any] = {
        "file": passage.file,
        "heading": passage.heading,
        "similarity": round(float(passage.score), 4),
        "url": url,
        "title": passage.title,
    }
    # Added only when the book has them, so the widget contract is unchanged otherwise.
    if passage.version is not None:
        source["version"] = passage.version
    if passage.plugin is not None:
        source["plugin"] = passage.plugin
    return source


def answered_sources(answer: str, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sources as the answer used them: none for a refusal (nothing backs it), else each
    with `cited` (whether the answer cites it), so the uncited ones can be shown apart."""
    if is_refusal(answer):
        return []
    used = set(cited(answer, len(sources)))
    return [{**source, "cited": n in used} for n, source in enumerate(sources, start=1)]


def _writing(lock: asyncio.Lock | None) -> contextlib.AbstractAsyncContextManager[Any]:
    # SQLite has one writer at a time, and its busy handler polls with growing sleeps: under a
    # burst of questions, queueing writers in-process is fairer and far faster. None for
    # PostgreSQL, which handles concurrent writers itself.
    return lock if lock is not None else contextlib.nullcontext()


def _store_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import SQLAlchemyError

    return (SQLAlchemyError, OSError, TimeoutError)


@dataclass
class ChatTurn:
    """A question stored and waiting for its answer; finish() stores the answer exactly once."""

    sessionmaker: async_sessionmaker[AsyncSession]
    write_lock: asyncio.Lock | None
    conversation_id: uuid.UUID
    message: str
    mode: Mode
    context: str | None
    history: list[tuple[str, str]]  # earlier (role, text) turns, oldest first
    user_message_id: Any = None
    assistant_message_id: Any = None
    streamed: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    status: Status | None = None  # set once the answer is stored (or its save was attempted)
    # Resolved once the answer is stored (or could not be); the app's shutdown waits for it.
    stored: asyncio.Future[bool] | None = None
    # Set by POST /api/chat/stop: the reader pressed Stop, so the answer ends here as "stopped".
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    # Where a save that keeps failing waits, and the store's write outcome for /api/health.
    pending: PendingSaves | None = None
    writes: WriteState | None = None
    # The answer's id, chosen before the first attempt: a retried save stores it once.
    answer_id: uuid.UUID = field(default_factory=uuid.uuid4)
    save_pending: bool = False  # the save failed and waits in `pending` for the store

    @property
    def answer(self) -> str:
        return "".join(self.streamed)

    async def finish(self, status: Status) -> bool:
        """Store the assistant message once, whatever cancels the stream; False if it failed."""
        if self.status is not None:
            return True
        self.status = status  # claimed before any await, so a concurrent close() does nothing
        # The save runs as its own task: a reader who closed the tab (an anyio cancel scope)
        # or a server shutting down (a plain task.cancel()) cannot interrupt it half-way.
        save = asyncio.ensure_future(self._save(status))
        save.add_done_callback(self._settle)
        cancelled = False
        with anyio.CancelScope(shield=True):
            while not save.done():
                try:
                    await asyncio.shield(save)
                except asyncio.CancelledError:
                    cancelled = True  # wait for the (time-bounded) save, then pass it on
        if cancelled:
            raise asyncio.CancelledError
        return save.result()

    def _settle(self, save: asyncio.Task[bool]) -> None:
        if self.stored is not None and not self.stored.done():
            ok = not save.cancelled() and save.exception() is None and save.result()
            self.stored.set_result(bool(ok))

    async def _write(self, status: Status) -> None:
        from bookchat.stores.conversations import add_message

        async with _writing(self.write_lock), self.sessionmaker() as session:
            stored = await add_message(
                session=session,
                conversation_id=self.conversation_id,
                role="assistant",
                content=self.answer,
                sources=self.sources,
                status=status,
                message_id=self.answer_id,
            )
        self.assistant_message_id = stored.id

    async def _save(self, status: Status) -> bool:
        from bookchat.retry import retrying
        from bookchat.stores.database import write_failure

        try:
            async with asyncio.timeout(SAVE_TIMEOUT_SECONDS):
                async for attempt in retrying(
                    retry_on=lambda exc: write_failure(exc) != "rejected",
                    attempts=SAVE_ATTEMPTS,
                    initial=SAVE_RETRY_SECONDS,
                    maximum=SAVE_RETRY_SECONDS * 4,
                ):
                    with attempt:
                        await self._write(status)
        except Exception as exc:
            failure = write_failure(exc)
            if self.writes is not None:
                self.writes.failed(failure)
            what = f"the {status} answer of conversation {self.conversation_id}"
            if failure != "rejected" and self.pending is not None:
                self.save_pending = self.pending.add(what, lambda: self._write_later(status))
            log.error(
                "could not store %s (%s, %s)%s",
                what,
                failure,
                type(exc).__name__,
                "; it waits in memory for the store" if self.save_pending else "",
            )
            return False
        if self.writes is not None:
            self.writes.succeeded()
        return True

    async def _write_later(self, status: Status) -> None:
        await self._write(status)
        if self.writes is not None:
            self.writes.succeeded()

    async def close(self) -> None:
        """If the stream ended without storing the answer, store what was streamed (partial)."""
        if self.status is None:
            await self.finish("partial" if self.streamed else "failed")


async def begin_turn(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    write_lock: asyncio.Lock | None = None,
    in_flight: set[asyncio.Future[bool]] | None = None,
    pending: PendingSaves | None = None,
    writes: WriteState | None = None,
    conversation_id: uuid.UUID | None,
    message: str,
    mode: Mode,
    context: str | None,
) -> ChatTurn:
    """Load recent history and store the question in one short session; nothing streams yet."""
    from bookchat.stores import conversations as store

    try:
        async with _writing(write_lock), sessionmaker() as session:
            if conversation_id is not None:
                held = await store.count_messages(session=session, conversation_id=conversation_id)
                # A stored conversation has at least its first question.
                if not held and not await store.conversation_exists(
                    session=session, conversation_id=conversation_id
                ):
                    raise ConversationNotFound(str(conversation_id))
                if held + 2 > MAX_CONVERSATION_MESSAGES:
                    raise ConversationFull(str(conversation_id))
            # Stores the question, commits, and returns the turns before it.
            started = await store.start_turn(
                session=session,
                conversation_id=conversation_id,
                user_text=message,
                history_limit=HISTORY_MESSAGES,
            )
    except (ConversationNotFound, ConversationFull):
        raise
    except _store_errors() as exc:
        from bookchat.stores.database import write_failure

        failure = write_failure(exc)
        if writes is not None:
            writes.failed(failure)
        if failure == "full":
            log.error("the conversation store is full: a question could not be stored")
            raise StorageFull(type(exc).__name__) from exc
        raise StoreUnavailable(type(exc).__name__) from exc
    if writes is not None:
        writes.succeeded()
    stored = asyncio.get_running_loop().create_future()
    if in_flight is not None:
        in_flight.add(stored)
        stored.add_done_callback(in_flight.discard)
    return ChatTurn(
        sessionmaker=sessionmaker,
        write_lock=write_lock,
        stored=stored,
        pending=pending,
        writes=writes,
        conversation_id=started.conversation_id,
        message=message,
        mode=mode,
        context=context,
        history=list(started.history),
        user_message_id=started.user_message_id,
    )


def retrieval_query(turn: ChatTurn) -> str:
    """The question as a standalone search query, with the start of any highlighted text."""
    from bookchat.rag.prompt import standalone_query

    query = standalone_query(turn.message, turn.history)
    if turn.mode == "selection" and turn.context:
        query = f"{query}\n{turn.context[:SELECTION_IN_QUERY_CHARS]}"
    return query


async def stream_turn(
    turn: ChatTurn,
    *,
    retriever: BookRetriever,
    answerer: Answerer,
    stopping: Stopping | None = None,
    origin: str | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The turn's events: metadata, tokens, then done or error (stored before the last event)."""
    from bookchat.rag.answerer import AnswerError, AnswerRequest

    metadata: dict[str, Any] = {
        "type": "metadata",
        "conversation_id": str(turn.conversation_id),
        "mode": turn.mode,
        "answerer": dict(answerer.describe()),
    }
    if turn.user_message_id is not None:
        metadata["user_message_id"] = str(turn.user_message_id)
    try:
        yield metadata
        try:
            passages = await retriever.retrieve(retrieval_query(turn), k=PASSAGES_PER_ANSWER)
        except RetrievalUnavailable as exc:
            # The exception quotes the upstream (an embedding API's text can echo its key; a
            # store's names its host): the reader gets the fixed sentence, this line the kind
            # of failure (the retriever logs the details where it caught them).
            cause = type(exc.__cause__ or exc).__name__
            log.warning(
                "retrieval unavailable in conversation %s (%s)", turn.conversation_id, cause
            )
            await turn.finish("failed")
            yield _error("retrieval_unavailable", RETRIEVAL_UNAVAILABLE)
            return
        except Exception:
            log.exception("retrieval failed in conversation %s", turn.conversation_id)
            await turn.finish("failed")
            yield _error("retrieval_failed", "searching the book failed; please retry")
            return
        turn.sources = [source_of(p, origin=origin) for p in passages]
        request = AnswerRequest(
            question=turn.message,
            mode=turn.mode,
            selection=turn.context,
            passages=passages,
            history=turn.history,
        )
        # An [n] naming no source is dropped as it streams: not shown, not stored.
        guard = CitationGuard(sources=len(passages))
        try:
            # Pieces that pile up while the server is busy go out as one token event.
            async with contextlib.aclosing(
                until_stopped(
                    coalesced(answerer.stream(request), stopping=stopping), turn.stop_requested
                )
            ) as deltas:
                async for delta in deltas:
                    if text := guard.feed(delta):
                        turn.streamed.append(text)
                        yield {"type": "token", "content": text}
            if text := guard.flush():
                turn.streamed.append(text)
                yield {"type": "token", "content": text}
        except Interrupted:
            # The server is stopping and cannot wait for the rest: keep what was shown, and
            # say so before the connection closes.
            await turn.finish("partial" if turn.streamed else "failed")
            log.warning(
                "the server is stopping: the answer in conversation %s ends after %d pieces",
                turn.conversation_id,
                len(turn.streamed),
            )
            yield _error(
                "server_restarting",
                "bookchat is restarting; the answer so far is kept. Ask again in a moment.",
            )
            return
        except AnswerError as exc:
            await turn.finish("partial" if turn.streamed else "failed")
            yield _error(exc.code, exc.message)
            return
        except Exception:
            log.exception("the answerer failed in conversation %s", turn.conversation_id)
            await turn.finish("partial" if turn.streamed else "failed")
            yield _error("answer_failed", "the answer could not be completed; please retry")
            return
        stopped = turn.stop_requested.is_set()
        turn.sources = answered_sources(turn.answer, turn.sources)
        saved = await turn.finish("stopped" if stopped else "complete")
        done: dict[str, Any] = {
            "type": "done",
            "sources": turn.sources,
            "citations": cited(turn.answer, len(turn.sources)),
            # The sources the answer does not cite: related reading, to be shown apart.
            "related": [n for n, s in enumerate(turn.sources, start=1) if not s["cited"]],
        }
        if stopped:
            done["stopped"] = True
        if guard.dropped:
            log.info(
                "dropped %d citation(s) naming no source in conversation %s",
                guard.dropped,
                turn.conversation_id,
            )
        if saved and turn.assistant_message_id is not None:
            done["message_id"] = str(turn.assistant_message_id)
        else:
            done["saved"] = False  # the reader has the answer; the store did not take it
        yield done
        if not saved:
            yield _not_saved(turn)
    except (asyncio.CancelledError, GeneratorExit):
        # The reader went away mid-answer: keep what they were shown.
        await turn.close()
        raise
    finally:
        if turn.status is None:
            await turn.close()


async def until_stopped(pieces: AsyncIterator[str], stop: asyncio.Event) -> AsyncIterator[str]:
    """The pieces until `stop` is set; a model slow to send its next piece is not waited for."""
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            following = asyncio.ensure_future(anext(pieces))
            await asyncio.wait({following, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await following
                return
            try:
                piece = following.result()
            except StopAsyncIteration:
                return
            yield piece
    finally:
        stopper.cancel()
        aclose = getattr(pieces, "aclose", None)
        if aclose is not None:
            await aclose()


def _not_saved(turn: ChatTurn) -> dict[str, Any]:
    # After `done`, so a reader who has the answer learns it is not (yet) in the conversation.
    if turn.save_pending:
        message = (
            "This answer could not be stored yet: it is kept and will be stored when the "
            "conversation store is back."
        )
    else:
        message = "This answer could not be stored: it will be missing when the page reloads."
    return {
        "type": "notice",
        "code": "answer_not_saved",
        "message": message,
        "pending": turn.save_pending,
    }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
