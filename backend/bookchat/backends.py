"""The one place that chooses the backends: Gemini or offline, for answers and for embeddings.

Everything else asks here (or the Runtime, which asks here) instead of reading the settings
itself, so "is Gemini on?" has one answer. The clients are built from values taken out of the
settings; the adapters below never see a Settings object.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookchat.config import Settings
from bookchat.providers.gemini_client import genai_client
from bookchat.providers.gemini_embedder import GeminiEmbedder
from bookchat.providers.local_sparse import Bm25Encoder
from bookchat.rag.extractive import OfflineAnswerer
from bookchat.rag.gemini_answerer import GeminiAnswerer
from bookchat.rag.retrieve import BookRetriever
from bookchat.redact import first_line
from bookchat.stores.index_dir import (
    ServedIndex,
    prepare_served_index,
    share_for_readers,
    unshared_because,
)

if TYPE_CHECKING:
    from google import genai

    from bookchat.ingest.indexer import IngestReport
    from bookchat.providers.embedding import DenseEmbedder
    from bookchat.rag.answerer import Answerer
    from bookchat.stores.vectors import VectorStore


log = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """The settings ask for something that cannot work; the message says what to change."""


class IndexNotShared(Exception):
    """Several processes cannot serve the embedded index now; the message says why."""


def answers_with_gemini(settings: Settings) -> bool:
    """Gemini answers when GEMINI_API_KEY is set; the extractive answerer otherwise."""
    return settings.gemini_api_key is not None


def embeds_with_gemini(settings: Settings) -> bool:
    """BOOKCHAT_EMBEDDER=gemini, or auto with GEMINI_API_KEY set."""
    if settings.embedder == "auto":
        return settings.gemini_api_key is not None
    return settings.embedder == "gemini"


def describe_llm(settings: Settings) -> dict[str, Any]:
    """Which answerer the settings choose, without opening anything."""
    if answers_with_gemini(settings):
        return {"backend": "gemini", "model": settings.gemini_model}
    return {"backend": "offline"}


def describe_embedder(settings: Settings) -> dict[str, Any]:
    """Which dense embedder the settings choose, without opening anything."""
    if embeds_with_gemini(settings):
        return {"backend": "gemini", "model": settings.gemini_embedding_model}
    return {"backend": "offline"}


# Every module start-up may preload, whatever the configuration: checks.imports (nix/checks.nix)
# imports each through the image launcher's site directories, so a module missing from the
# image names itself at build time instead of as a start-up that retries forever.
PRELOADABLE = (
    "bookchat.stores.conversation_store",
    "bookchat.rag.retrieve",
    "qdrant_client",
    "bookchat.stores.qdrant_http",
    "bookchat.ingest.pipeline",
    "aiosqlite",
    "psycopg",
    "google.genai",
    "bookchat.providers.gemini_embedder",
    "bookchat.providers.gemini_llm",
    "bookchat.rag.gemini_answerer",
    "bookchat.rag.extractive",
    "bookchat.providers.static_embedder",
    "anyio._backends._asyncio",
)


def preload_modules(settings: Settings) -> list[str]:
    """The modules the chosen backends import, to load off the event loop at start-up
    (always a subset of PRELOADABLE)."""
    # anyio loads its asyncio backend when a request first runs sync code in its thread pool
    # (FastAPI's sync dependencies, starlette's streaming): ~12 ms that was the first /api/health
    # answer's, on the event loop.
    modules = [
        "bookchat.stores.conversation_store",
        "bookchat.rag.retrieve",
        "anyio._backends._asyncio",
    ]
    if not settings.embedded_qdrant:
        # A Qdrant server is reached over REST with httpx. Embedded, the index is read from its
        # read snapshot (stores/snapshot.py): qdrant-client loads only to write, in a thread.
        modules.append("bookchat.stores.qdrant_http")
    if settings.sample_book:
        modules.append("bookchat.ingest.pipeline")
    modules.append("aiosqlite" if settings.sqlalchemy_url.startswith("sqlite") else "psycopg")
    if answers_with_gemini(settings):
        # Answers stream over httpx (providers/gemini_stream.py): the SDK is loaded only for
        # Gemini embeddings, which saves its import time and memory otherwise.
        modules += ["bookchat.providers.gemini_llm", "bookchat.rag.gemini_answerer"]
    else:
        modules.append("bookchat.rag.extractive")
    if embeds_with_gemini(settings):
        modules += ["google.genai", "bookchat.providers.gemini_embedder"]
    return modules


def worker_processes(settings: Settings, *, cpus: int | None = None) -> int:
    """How many processes `bookchat serve` may run: several only where every store is shared.

    SQLite has one writer, so it means one process. With PostgreSQL and a Qdrant server,
    BOOKCHAT_WORKERS or one per usable core. With PostgreSQL and the embedded index, one unless
    BOOKCHAT_WORKERS asks for more: the workers would only read it (share_embedded_index makes
    that possible before they start, or serve runs one process after all), but each holds its
    own copy of the index's search structures and the app (+65–80 MiB PSS each), and on a
    2-core machine one process answered 50 readers as fast (backend/docs/benchmarks.md).
    """
    if settings.sqlalchemy_url.startswith("sqlite"):
        if settings.workers > 1:
            raise ConfigurationError(
                f"BOOKCHAT_WORKERS={settings.workers} needs PostgreSQL (DATABASE_URL): "
                "with SQLite one process serves"
            )
        return 1
    if settings.workers:
        return settings.workers
    if settings.embedded_qdrant:
        return 1
    return max(1, cpus if cpus is not None else usable_cpus())


def share_embedded_index(settings: Settings) -> ServedIndex:
    """The embedded index made ready for worker processes that only read it; call it once,
    before they start. Blocking.

    What start-up would write is written here first, once: a served copy of a read-only
    BOOKCHAT_INDEX_DIR, the sample book into an empty collection, a missing or stale read
    snapshot. The index comes back shared, its folder's lock held shared by this process
    (and each worker), so `bookchat ingest` finds it in use. Raises IndexNotShared with the
    reason when it cannot be made so (in use by another process, no collection yet).
    """
    try:
        index = prepare_index(settings)
        why = unshared_because(index, settings.qdrant_collection, needs_points=settings.sample_book)
        if why is not None:
            log.info("writing the embedded index before the workers start: %s", why)
            asyncio.run(_write_before_readers(settings, index))
            why = unshared_because(
                index, settings.qdrant_collection, needs_points=settings.sample_book
            )
            if why is not None:
                raise IndexNotShared(why)
        return share_for_readers(index, settings.qdrant_collection)
    except IndexNotShared:
        raise
    except Exception as exc:  # the one process that serves instead meets it and reports it
        raise IndexNotShared(first_line(exc, settings.secrets())) from exc


async def _write_before_readers(settings: Settings, index: ServedIndex) -> None:
    """Open the index as one process's start-up does (which remakes a missing or stale read
    snapshot) and index the sample book into an empty collection; closing writes the snapshot."""
    retriever = await open_retriever(settings, index=index)
    try:
        await index_sample_book(settings, retriever)
    finally:
        await retriever.aclose()


async def index_sample_book(settings: Settings, retriever: BookRetriever) -> IngestReport | None:
    """The bundled sample book into an empty embedded collection, unless BOOKCHAT_SAMPLE_BOOK
    is off (what every start does: serve, `bookchat ask`); None when nothing was indexed."""
    if not settings.sample_book:
        return None
    from bookchat.ingest.pipeline import ensure_sample_book

    return await ensure_sample_book(
        store=retriever.store,
        dense=retriever.dense,
        sparse=retriever.sparse,
        site_url=settings.sample_book_url,
    )


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota.

    os.cpu_count() counts the host's cores; in a container limited to 2 CPUs (`docker --cpus`,
    a Space's vCPUs) on a 32-core host, one worker per counted core would be 32 processes
    sharing 2 cores, each with its own memory.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup)
    return max(1, min(cpus, math.ceil(quota)) if quota is not None else cpus)


def _cgroup_quota(cgroup: Path) -> float | None:
    """CPUs granted by cgroup v2's cpu.max ("200000 100000" = 2) or v1's cfs files; None: none."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (cgroup / "cpu/cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu/cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        granted, every = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    return granted / every if granted > 0 and every > 0 else None


def per_worker(settings: Settings, workers: int) -> Settings:
    """The settings of one of `workers` processes: the server-wide caps split between them.

    Each process keeps its own counters, so the caps on answers at once, their queue and open
    connections are divided (rounded up); 0 (off) stays off. The per-client limits stay as
    set: a client's connections may land on any process. The daily LLM budget stays whole:
    it is one count in the conversation database that every process shares.
    """
    if workers <= 1:
        return settings

    def share(value: int) -> int:
        return -(-value // workers) if value > 0 else value

    return settings.model_copy(
        update={
            "concurrent_llm_calls": share(settings.concurrent_llm_calls),
            "llm_queue": share(settings.llm_queue),
            "max_connections": share(settings.max_connections),
        }
    )


def make_genai_client(settings: Settings) -> genai.Client:
    """The google-genai client for GEMINI_API_KEY and GEMINI_BASE_URL."""

    if settings.gemini_api_key is None:
        raise ConfigurationError("GEMINI_API_KEY is not set")
    return genai_client(
        api_key=settings.gemini_api_key.get_secret_value(),
        base_url=settings.gemini_base_url,
        timeout=settings.gemini_timeout,
    )


def make_answerer(settings: Settings) -> Answerer:
    """Gemini when GEMINI_API_KEY is set, the extractive answerer otherwise."""
    if answers_with_gemini(settings):
        # Gemini's stream client and retry policy load httpx and more (~0.1 s): only when used.
        from bookchat.providers.gemini_llm import GeminiLLM
        from bookchat.providers.gemini_stream import GeminiStreamClient

        assert settings.gemini_api_key is not None  # answers_with_gemini says so
        client = GeminiStreamClient(
            api_key=settings.gemini_api_key.get_secret_value(),
            base_url=settings.gemini_base_url,
            timeout=settings.gemini_timeout,
        )
        llm = GeminiLLM(client, model=settings.gemini_model, timeout=settings.gemini_timeout)
        return GeminiAnswerer(llm)
    return make_offline_answerer()


def make_offline_answerer() -> Answerer:
    """The offline extractive answerer (no key, no network): the fallback past the LLM budget."""

    return OfflineAnswerer()


def make_dense_embedder(settings: Settings) -> DenseEmbedder | None:
    """Gemini when chosen, else the offline static model when installed, else None."""
    if embeds_with_gemini(settings):
        if settings.gemini_api_key is None:
            raise ConfigurationError("BOOKCHAT_EMBEDDER=gemini needs GEMINI_API_KEY")

        return GeminiEmbedder(
            client=make_genai_client(settings),
            model=settings.gemini_embedding_model,
            dimensions=settings.embedding_dimensions,
        )
    try:
        # numpy and the model table (~0.2 s); the module is optional in a slim install.
        from bookchat.providers.static_embedder import StaticEmbedder
    except ModuleNotFoundError as exc:
        if exc.name != "bookchat.providers.static_embedder":
            raise
        return None
    return StaticEmbedder.load()


def make_sparse_encoder() -> Bm25Encoder:
    """The lexical encoder (always present)."""

    return Bm25Encoder()


def open_vector_store(
    settings: Settings, *, index: ServedIndex | None = None, timeout: float = 3.0
) -> VectorStore:
    """The server at QDRANT_URL, or embedded Qdrant in the data dir (or BOOKCHAT_INDEX_DIR),
    or in the folder of the prepared `index` (read-only when it is shared).

    Blocking: opening embedded Qdrant reads every point.
    """

    # Each adapter loads its own dependencies (httpx, or the snapshot's numpy) when chosen.
    if settings.qdrant_url is not None:
        from bookchat.stores.qdrant_http import ServerVectorStore

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return ServerVectorStore.open(
            url=settings.qdrant_url,
            collection=settings.qdrant_collection,
            api_key=api_key,
            timeout=timeout,
        )
    from bookchat.stores.embedded import EmbeddedVectorStore

    return EmbeddedVectorStore.open(
        collection=settings.qdrant_collection,
        path=index.path if index is not None and index.path is not None else settings.qdrant_path,
        shared=index is not None and index.shared,
        loaded=index.loaded if index is not None else None,
    )


def prepare_index(settings: Settings) -> ServedIndex:
    """The embedded index to serve (a copy of a read-only BOOKCHAT_INDEX_DIR with no fresh read
    snapshot), or the server."""
    return prepare_served_index(
        embedded=settings.embedded_qdrant,
        collection=settings.qdrant_collection,
        qdrant_path=settings.qdrant_path,
        index_dir=settings.index_dir,
        data_dir=settings.data_dir,
    )


async def open_retriever(
    settings: Settings, *, index: ServedIndex | None = None, timeout: float = 3.0
) -> BookRetriever:
    """The collection (in the prepared `index`'s folder when given) and the embedders the
    settings choose; never ingests, never waits.

    Raises StoreUnavailable when the embedded folder is locked by another process, and
    ConfigurationError when the settings ask for an embedder that cannot work.
    """

    # Both block: the static embedder's table loads from disk, and embedded Qdrant reads every
    # point of its collections when it opens. In threads, the loop keeps answering meanwhile.
    dense = await asyncio.to_thread(make_dense_embedder, settings)
    store = await asyncio.to_thread(open_vector_store, settings, index=index, timeout=timeout)
    return BookRetriever(store=store, dense=dense, sparse=make_sparse_encoder())
