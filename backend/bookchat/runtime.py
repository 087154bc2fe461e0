"""The long-lived clients of one app, and the start-up work that readies them in the background."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from bookchat import backends
from bookchat.config import Settings
from bookchat.rag.coalesce import Stopping
from bookchat.redact import describe, first_line
from bookchat.retry import retrying
from bookchat.stores.index_dir import ServedIndex

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from bookchat.rag.answerer import Answerer
    from bookchat.rag.chat import ChatTurn
    from bookchat.rag.retrieve import BookRetriever
    from bookchat.stores.conversation_store import ConversationStore

log = logging.getLogger(__name__)

Phase = Literal["starting", "ready", "failed"]
# Failed start-up work is retried after up to 1, 2, 4 … seconds (jittered), at most this long.
MAX_BACKOFF_SECONDS = 60.0

# Steps whose failures come from the database driver, and are explained as the database's.
_DATABASE_STEPS = ("opening the database", "creating the conversation tables")
# In the data dir: one lock file per live server process (stores/owners.py).
OWNERS_DIR = "answering"


def preload(settings: Settings) -> bool:
    """Import what the chosen backends need; True if the GC was off for it (now back on).

    `bookchat serve` runs it before forking worker processes, which then share the pages.
    """
    # Importing the SDKs costs about a second; done in a thread so the event loop keeps
    # answering /api/health meanwhile.
    import importlib
    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bookchat-table") as pool:
            # Inflating and hashing the offline embedder's table (~0.1 s) release the GIL: beside
            # the imports, which hold it, that work runs on another core.
            table = None
            if not backends.embeds_with_gemini(settings):
                table = pool.submit(_load_offline_embedder)
            for name in backends.preload_modules(settings):
                importlib.import_module(name)
            if table is not None:
                table.result()
    finally:
        settled = settle_start_up_heap()
    return settled


def _load_offline_embedder() -> None:
    """Load the offline embedder's table (cached per process), if that module is installed."""
    try:
        from bookchat.providers.static_embedder import StaticEmbedder
    except ModuleNotFoundError:
        return
    StaticEmbedder.load()


def settle_start_up_heap() -> bool:
    """Turn the cyclic GC back on after imports that ran with it off; True if it was off.

    `bookchat serve` imports with the GC off: a fifth of the import time here went to
    collections re-scanning the fresh modules, classes and pydantic schemas (about 200,000
    objects) while they were being made. What the imports made is then frozen, so later full
    collections never scan it again (one such collection stalled the event loop for 0.3 s
    under load; backend/docs/benchmarks.md). It is frozen without collecting first: a full
    collection here took 0.05-0.1 s of start-up to free about 1,300 objects (~300 kB).
    A process that kept the GC on (tests, tools) is left as it is.
    """
    if gc.isenabled():
        return False
    gc.freeze()
    gc.enable()
    return True


@dataclass
class Runtime:
    """Everything a request needs, opened once per app by the lifespan."""

    settings: Settings
    conversations: ConversationStore | None = None
    # Set when the server is about to cut open streams: they end with `server_restarting`.
    stopping: Stopping = field(default_factory=Stopping)
    # The turns streaming now, by their question's id, so POST /api/chat/stop can find one.
    streaming: dict[uuid.UUID, ChatTurn] = field(default_factory=dict)
    retriever: BookRetriever | None = None
    # Which embedded index is served (the baked one, copied if read-only), once prepared (or
    # as bookchat serve prepared it before starting worker processes: shared, read-only).
    index: ServedIndex | None = None
    answerer: Answerer | None = None
    # Answers once the day's LLM budget is spent; made on first use.
    fallback_answerer: Answerer | None = None
    phase: Phase = "starting"
    step: str = "loading libraries"
    error: str | None = None
    attempts: int = 0
    _tables_ready: bool = field(default=False, repr=False)
    # Whether /docs/ serves the sample book's pages (serves_sample_pages), once asked.
    _sample_pages: bool | None = field(default=None, repr=False)
    # Whether start-up's imports ran with the GC off (settle_start_up_heap).
    _heap_settled: bool = field(default=False, repr=False)
    # Questions stored without an owner (by an older bookchat), asked before this moment and
    # left unanswered, belong to a process that died (stores/owners.py judges the others).
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ready(self) -> bool:
        return self.phase == "ready"

    async def start(self) -> None:
        """Do the start-up work, retrying with backoff until it succeeds or the app stops."""
        async for attempt in retrying(
            retry_on=lambda exc: isinstance(exc, Exception),
            attempts=None,
            initial=1.0,
            maximum=MAX_BACKOFF_SECONDS,
            before_sleep=self._failed,
        ):
            with attempt:
                self.attempts += 1
                await self._start_once()
        # Before "ready": healthy means a reader's first answer finds the path warm.
        self.step = "warming the answer path"
        await self._warm_answer_path()
        if self._heap_settled:
            # What start-up opened after the imports (stores, caches, the warm-up's) is long-lived
            # too; collecting the young objects only (the rest is frozen) takes milliseconds.
            gc.collect()
            gc.freeze()
        self.phase, self.error, self.step = "ready", None, "done"
        log.info("start-up complete after %d attempt(s)", self.attempts)

    def _failed(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        assert error is not None  # before_sleep runs only after a failed attempt
        self.phase = "failed"
        self.error = f"{self.step} failed: {self._reason(error)}"
        # The driver's own text (scrubbed) is for the log; people read self.error.
        log.warning(
            "start-up: %s [%s] (retrying in %.1f s)",
            self.error,
            describe(error, self.settings.secrets()),
            state.upcoming_sleep,
        )

    async def _warm_answer_path(self) -> None:
        """One retrieval right after start-up, so the first reader does not pay for first use.

        The first query builds the BM25 and embedder caches and the search's first call; it
        took the first answer's first token from 45 to 120 ms. Skipped with Gemini embeddings:
        a query there is a paid call.
        """
        if self.retriever is None or backends.embeds_with_gemini(self.settings):
            return
        try:
            await self.retriever.retrieve("How do I get started?", k=5)
        except Exception as exc:  # a reader's question will meet (and report) the same problem
            log.info("warming the answer path: %s", describe(exc, self.settings.secrets()))

    async def _start_once(self) -> None:
        self.step = "loading libraries"
        if await asyncio.to_thread(preload, self.settings):
            self._heap_settled = True
        # Already imported by preload (in a thread): these lines cost nothing on the loop.
        from bookchat.stores.conversation_store import ConversationStore

        if self.conversations is None:
            self.step = "opening the database"
            from bookchat.stores.owners import AnswerOwner

            # Held for this process's life: how others tell that it died mid-answer.
            owner = AnswerOwner(self.settings.data_dir / OWNERS_DIR)
            self.conversations = ConversationStore(self.settings.sqlalchemy_url, owner)
        if self.answerer is None:
            self.step = "opening the answerer"
            # Building an HTTP client loads the CA bundle (about 30 ms): not on the loop.
            self.answerer = await asyncio.to_thread(backends.make_answerer, self.settings)
        if self.retriever is None:
            if self.index is None:  # bookchat serve prepares it for its worker processes
                self.step = "preparing the index"
                self.index = await asyncio.to_thread(backends.prepare_index, self.settings)
            self.step = "opening the vector store"
            self.retriever = await backends.open_retriever(self.settings, index=self.index)
        if not self._tables_ready:
            self.step = "creating the conversation tables"
            await self.conversations.create_tables()
            self._tables_ready = True
            self.step = "marking answers a dead process left unfinished"
            await self.conversations.mark_interrupted(asked_before=self.started_at)
        retriever = self.retriever
        if self.settings.sample_book:
            self.step = "indexing the sample book"
            await backends.index_sample_book(self.settings, retriever)
        if self.settings.sample_book or retriever.store.embedded:
            # An embedded collection that has points is loaded into memory now, so the first
            # question is not the one that waits for it (2.5 s at 10,000 chunks); after the
            # sample book's ingest this also writes its read snapshot for the next start.
            self.step = "loading the index"
            await retriever.warm()

    async def serves_sample_pages(self) -> bool:
        """Whether /docs/ serves the bundled sample book's pages: only while it is the book
        this server answers from, in an embedded index (its citations are root-relative).

        Once another book is ingested its citations lead to that book's own site, and the
        sample's pages at /docs/ would be a second book nobody asked about. Asked on the first
        /docs/ request, not at start-up (telling the books apart reads the sample book); the
        embedded index cannot change under a running server (it holds the folder's lock).
        """
        if self._sample_pages is None:
            retriever = self.retriever
            if retriever is None or not retriever.store.embedded:
                self._sample_pages = False
            else:
                from bookchat.ingest.sample import holds_only_the_sample_book

                ids = await retriever.store.stored_chunks()
                self._sample_pages = await asyncio.to_thread(
                    holds_only_the_sample_book, ids, self.settings.sample_book_url
                )
        return self._sample_pages

    @property
    def llm_backed(self) -> bool:
        """Whether answers cost LLM calls (and so count against the daily budget)."""
        return backends.answers_with_gemini(self.settings)

    def offline_answerer(self) -> Answerer:
        """The offline answerer, for chats past the daily LLM budget."""
        if self.fallback_answerer is None:
            self.fallback_answerer = backends.make_offline_answerer()
        return self.fallback_answerer

    def _reason(self, exc: BaseException) -> str:
        """Why start-up failed, in the words /api/health, the chat page and healthcheck show."""
        if self.step in _DATABASE_STEPS and self.conversations is not None:
            return self.conversations.describe_failure(exc)
        if type(exc).__module__.startswith("bookchat."):
            # bookchat's own errors (Qdrant unreachable, an embedder mismatch) are written
            # for the reader already.
            return first_line(exc, self.settings.secrets())
        return f"{type(exc).__name__} (the server log has the details)"

    def describe_llm(self) -> dict[str, Any]:
        """Which answerer is in use, without opening anything."""
        if self.answerer is not None:
            return dict(self.answerer.describe())
        return backends.describe_llm(self.settings)

    async def aclose(self) -> None:
        """Close every client that was opened; each close is independent of the others."""
        for name, close in (
            # First: streams the server has just cut off store their partial answers.
            ("conversation store", self.conversations and self.conversations.aclose),
            ("answerer", self.answerer and self.answerer.aclose),
            ("fallback answerer", self.fallback_answerer and self.fallback_answerer.aclose),
            ("retriever", self.retriever and self.retriever.aclose),
        ):
            if close is None:
                continue
            try:
                await close()
            except Exception as exc:
                log.warning("closing the %s: %s", name, describe(exc, self.settings.secrets()))
        if self.conversations is not None:
            # Last: what this process could not store is then another process's to mark.
            self.conversations.owner.close()
