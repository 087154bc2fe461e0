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

from bookchat.rag.answerer import Answerer, AnswerError, AnswerRequest
from bookchat.rag.citations import CitationGuard, cited
from bookchat.rag.coalesce import Interrupted, Stopping, coalesced
from bookchat.rag.prompt import is_refusal, standalone_query
from bookchat.rag.types import Passage, RetrievalUnavailable

if TYPE_CHECKING:
    from bookchat.rag.retrieve import BookRetriever
    from bookchat.stores.conversation_store import ConversationStore

log = logging.getLogger(__name__)

Mode = Literal["general", "selection"]
Status = Literal["complete", "partial", "stopped", "failed"]

HISTORY_MESSAGES = 6  # the last three exchanges give the model (and the query) their context
PASSAGES_PER_ANSWER = 5
# What a reader reads when the book's index or the question's embedding is unavailable.
RETRIEVAL_UNAVAILABLE = "The book's search is unavailable right now; please try again shortly."
SELECTION_IN_QUERY_CHARS = 500  # the start of the highlighted text sharpens retrieval
# A conversation holds at most this many messages (a turn adds two): bounded storage, bounded
# GET /api/conversation responses, and a prompt history that stays relevant.
MAX_CONVERSATION_MESSAGES = 200


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


@dataclass
class ChatTurn:
    """A question stored and waiting for its answer; finish() stores the answer exactly once."""

    store: ConversationStore
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
    # Resolved once the answer is stored (or could not be); the store's close waits for it.
    stored: asyncio.Future[bool] | None = None
    # Set by POST /api/chat/stop: the reader pressed Stop, so the answer ends here as "stopped".
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    # The answer's id, chosen before the first attempt: a retried save stores it once.
    answer_id: uuid.UUID = field(default_factory=uuid.uuid4)
    save_pending: bool = False  # the save failed and waits in the store's memory

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

    async def _save(self, status: Status) -> bool:
        outcome = await self.store.save_answer(
            conversation_id=self.conversation_id,
            message_id=self.answer_id,
            content=self.answer,
            sources=self.sources,
            status=status,
        )
        if outcome == "stored":
            self.assistant_message_id = self.answer_id
        self.save_pending = outcome == "pending"
        return outcome == "stored"

    async def close(self) -> None:
        """If the stream ended without storing the answer, store what was streamed (partial)."""
        if self.status is None:
            await self.finish("partial" if self.streamed else "failed")


async def begin_turn(
    store: ConversationStore,
    *,
    conversation_id: uuid.UUID | None,
    message: str,
    mode: Mode,
    context: str | None,
) -> ChatTurn:
    """Load recent history and store the question; nothing streams yet.

    Raises the store's ConversationNotFound, ConversationFull, StorageFull or StoreUnavailable.
    """
    # Chosen now and stored with the question: should this process die mid-answer, another
    # gives the question a `failed` answer under this id (stores/owners.py).
    answer_id = uuid.uuid4()
    started = await store.start_turn(
        conversation_id=conversation_id,
        text=message,
        history_limit=HISTORY_MESSAGES,
        max_messages=MAX_CONVERSATION_MESSAGES,
        answer_id=answer_id,
    )
    return ChatTurn(
        answer_id=answer_id,
        store=store,
        stored=store.answer_owed(),
        conversation_id=started.conversation_id,
        message=message,
        mode=mode,
        context=context,
        history=list(started.history),
        user_message_id=started.user_message_id,
    )


def retrieval_query(turn: ChatTurn) -> str:
    """The question as a standalone search query, with the start of any highlighted text."""

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
                coalesced(answerer.stream(request), stopping=stopping, stop=turn.stop_requested)
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
