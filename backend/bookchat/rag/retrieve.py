"""Hybrid retrieval over the book's collection: what the chat service asks for passages.

Legs by configuration:
- always a lexical leg (BM25 weights, IDF from Qdrant);
- a dense leg with Gemini embeddings when they are configured (GEMINI_API_KEY, or
  BOOKCHAT_EMBEDDER=gemini), else with the offline static embedder when
  `bookchat.providers.static_embedder` is importable;
- with two legs, Qdrant fuses them by reciprocal rank (query_points, prefetch, RRF);
- then the candidates' pages are ranked by fusing, by reciprocal rank, the place of each
  page's best passage with the page's own ranks (rag/pages.py: outline, whole text, mean
  vector), and each page's best passage comes before a second passage of any page (for a
  question asking for a value, the page's best passage stating it: rag/values.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bookchat.rag.extractive_text import sentences, terms
from bookchat.rag.pages import PageChunk, PageKey, PageOutlines
from bookchat.rag.types import Passage, RetrievalUnavailable
from bookchat.rag.values import Requirement
from bookchat.redact import describe
from bookchat.stores.errors import EmbedderMismatch, StoreError
from bookchat.stores.identity import IndexIdentity
from bookchat.stores.vectors import Hit

if TYPE_CHECKING:
    from bookchat.providers.embedding import DenseEmbedder
    from bookchat.providers.local_sparse import Bm25Encoder
    from bookchat.stores.vectors import VectorStore

log = logging.getLogger(__name__)

# Candidates each leg hands to the fusion: enough for RRF to agree on a top 5, few enough that
# local mode stays fast at ten thousand chunks.
CANDIDATES = 30
# A candidate page scores sum(weight / (PAGE_K + rank)) over its rankings (0-based ranks): the
# place of its best passage among the candidates' pages, its outline by BM25 and by cosine,
# its whole text by BM25, its mean vector by cosine. The passages' own order weighs most; the
# whole text and the mean vector weigh more than the outline, which names the page's subject
# but holds few words. Chosen on four real books and checked on two held-out books and the
# sample book (backend/docs/benchmarks.md).
PASSAGE_WEIGHT = 1.5
OUTLINE_WEIGHT = 0.75
TEXT_WEIGHT = 1.0
CENTROID_WEIGHT = 1.0
PAGE_K = 2
# Outlines are rebuilt after this process writes to the index and at least this often, so a
# shared Qdrant that another process ingested into is seen without a restart.
OUTLINE_MAX_AGE = 300.0


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def _lexical_similarity(query: list[int], doc: tuple[list[int], list[float]], top: float) -> float:
    """Share of the question's terms found in the passage, each weighted by its BM25
    saturation (its weight over the largest a weight can be), in 0..1."""
    if not query:
        return 0.0
    weights = dict(zip(doc[0], doc[1], strict=False))
    return sum(min(1.0, weights.get(i, 0.0) / top) for i in query) / len(query)


def _page_of(hit: Hit) -> PageKey:
    p = hit.payload
    version, plugin = p.get("version"), p.get("plugin")
    return (
        None if plugin is None else str(plugin),
        None if version is None else str(version),
        str(p.get("file", "")),
    )


def rank_by_page(
    hits: list[Hit],
    outlines: PageOutlines | None,
    question: str,
    query_dense: list[float] | None,
) -> list[Hit]:
    """The fused hits ordered by their pages' fused ranks, best passage of each page first.

    A page's second passage comes after every page's first, so five passages show five pages
    when five are found: on real books the page that answers was often sixth behind two or three
    passages of one neighbour.
    """
    best: dict[PageKey, int] = {}  # page -> its place among the pages, by its best passage
    for hit in hits:
        best.setdefault(_page_of(hit), len(best))
    rankings: list[tuple[float, Mapping[PageKey, int]]] = [(PASSAGE_WEIGHT, best)]
    if outlines is not None and len(outlines):
        rankings.append((OUTLINE_WEIGHT, outlines.lexical_ranks(question)))
        rankings.append((TEXT_WEIGHT, outlines.text_ranks(question)))
        if query_dense is not None:
            rankings.append((OUTLINE_WEIGHT, outlines.dense_ranks(query_dense)))
            rankings.append((CENTROID_WEIGHT, outlines.centroid_ranks(query_dense)))

    def score(page: PageKey) -> float:
        return sum(w / (PAGE_K + r[page]) for w, r in rankings if page in r)

    # sorted() is stable: equal scores keep the order of the pages' best passages.
    pages = sorted(best, key=lambda page: -score(page))
    order = {page: i for i, page in enumerate(pages)}
    shown = _shown_first(hits, question)
    first: list[Hit] = []
    again: list[tuple[int, int, Hit]] = []
    for place, hit in enumerate(hits):
        page = _page_of(hit)
        if shown[page] == place:
            first.append(hit)
        else:
            again.append((order[page], place, hit))
    first.sort(key=lambda hit: order[_page_of(hit)])
    return first + [hit for _, _, hit in sorted(again, key=lambda item: item[:2])]


def _shown_first(hits: list[Hit], question: str) -> dict[PageKey, int]:
    """Which of each page's hits (by place) is shown first: its best, or for a question asking
    for a value ("Which Node version do I need?") its best passage stating that value beside
    the question's subject ("make sure it is Node 22.11.0 or newer").

    A setup page's best passage by words is often its prose about the subject ("configure the
    path to the `node` executable"); the one stating the version ranks lower on the same page
    and, behind every other page's first, out of the reader's five.
    """
    shown: dict[PageKey, int] = {}
    requirement = Requirement.of(question, terms(question))
    for place, hit in enumerate(hits):
        page = _page_of(hit)
        if page not in shown:
            shown[page] = place
    if requirement is None:
        return shown
    stating: dict[PageKey, int] = {}
    for place, hit in enumerate(hits):
        page = _page_of(hit)
        if page not in stating and requirement.stated_in(
            sentences(str(hit.payload.get("text", "")))
        ):
            stating[page] = place
    return shown | stating


class BookRetriever:
    """Retrieval for the chat service; also reports the collection's health."""

    def __init__(
        self, *, store: VectorStore, dense: DenseEmbedder | None, sparse: Bm25Encoder
    ) -> None:
        self._store = store
        self._dense = dense
        self._sparse = sparse
        self._identity = IndexIdentity.of(dense, sparse)
        self._checked = False  # the collection's identity matched ours
        self._outlines: PageOutlines | None = None
        self._outlines_of: tuple[int, float] = (-1, 0.0)  # store generation, monotonic time
        self._outline_lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None  # a background rebuild, when one runs

    @property
    def store(self) -> VectorStore:
        return self._store

    @property
    def dense(self) -> DenseEmbedder | None:
        return self._dense

    @property
    def sparse(self) -> Bm25Encoder:
        return self._sparse

    def describe(self) -> dict[str, Any]:
        """Which embedders and legs run, for logs and /api/health."""
        return {
            "dense": self._dense.name if self._dense else None,
            "dense_dimensions": self._dense.dimensions if self._dense else None,
            "sparse": self._sparse.name,
            "legs": ["bm25", "dense"] if self._dense else ["bm25"],
            "fusion": "rrf" if self._dense else None,
        }

    async def _ensure_identity(self) -> bool:
        """True when the collection exists and was built by our embedders."""
        if self._checked:
            return True
        self._checked = await self._store.check_identity(self._identity)
        return self._checked

    async def retrieve(self, question: str, k: int = 5) -> list[Passage]:
        """Ranked passages for a question.

        Order comes from the fusion of the legs. `score` is what a reader can read as
        similarity in 0..1: the cosine between question and passage when a dense leg runs,
        otherwise the share of the question's terms the passage contains (BM25-saturated).
        """
        try:
            if not await self._ensure_identity():
                return []
            requirement = Requirement.of(question, terms(question))
            lexical = requirement.query(question) if requirement else question
            query_sparse = self._sparse.encode_query(lexical)
            query_dense = await self._embed_query(question)
            candidates = max(CANDIDATES, k * 3)
            hits = await self._store.search(
                sparse=query_sparse, dense=query_dense, limit=candidates, candidates=candidates
            )
            outlines = await self._page_outlines() if hits else None
        except EmbedderMismatch as exc:
            log.error("%s", exc)
            raise RetrievalUnavailable(
                f"The book's search index does not match this server's embedder: {exc}"
            ) from exc
        except StoreError as exc:
            raise RetrievalUnavailable(f"The book's search index is unavailable: {exc}") from exc
        hits = rank_by_page(hits, outlines, question, query_dense)[:k]
        top = self._sparse.saturation_max()
        # A reader's similarity is to the question as asked, not to the words added to it.
        asked = self._sparse.encode_query(question) if requirement else query_sparse
        return [self._passage(hit, query_dense, asked.indices, top) for hit in hits]

    async def _page_outlines(self) -> PageOutlines:
        """The book's page rankings: rebuilt before use after a write here (or when none were
        built yet); when only OUTLINE_MAX_AGE old, rebuilt in the background while the old ones
        keep serving, so no reader waits for the periodic rebuild (a second or more on a big
        book)."""
        outlines, (generation, built) = self._outlines, self._outlines_of
        if outlines is not None and generation == self._store.generation:
            if time.monotonic() - built > OUTLINE_MAX_AGE and (
                self._refresh is None or self._refresh.done()
            ):
                self._refresh = asyncio.create_task(self._refresh_outlines())
            return outlines
        async with self._outline_lock:  # one build at a time; the others wait and share it
            if self._outlines is None or self._outlines_of[0] != self._store.generation:
                await self._build_outlines()
            assert self._outlines is not None
            return self._outlines

    async def _refresh_outlines(self) -> None:
        try:
            async with self._outline_lock:
                await self._build_outlines()
        except StoreError as exc:
            # The old rankings keep serving; the next request past the age tries again.
            log.warning("refreshing the page rankings: %s", describe(exc))

    async def _build_outlines(self) -> None:
        generation, now = self._store.generation, time.monotonic()
        # Embedding every outline is free with a local embedder; with a remote one it would
        # cost a request per hundred pages at every rebuild, and its vectors are large to
        # fetch, so only the BM25 ranks run.
        local = self._dense is not None and getattr(self._dense, "local", False)
        # The pages' texts are counted from the stored BM25 weights: no text is fetched.
        chunks = await self._store.chunk_headings(dense=local, sparse=True)
        page_chunks = [
            PageChunk((c.plugin, c.version, c.file), c.title, c.heading, "", c.dense, c.sparse)
            for c in chunks
        ]
        # Counting 10,000 chunks' terms still takes a fraction of a second: off the loop.
        outlines = await asyncio.to_thread(PageOutlines.from_chunks, page_chunks, self._sparse)
        if local and self._dense is not None:
            await outlines.embed(self._dense)
        self._outlines, self._outlines_of = outlines, (generation, now)

    async def _embed_query(self, question: str) -> list[float] | None:
        if self._dense is None:
            return None
        try:
            return await self._dense.embed_query(question)
        except Exception as exc:
            # Whatever the backend raised (HTTP error, time-out), the reader gets one sentence.
            # Upstream text (an API's error can echo its key, a host, a user): scrubbed.
            log.warning("query embedding failed: %s", describe(exc))
            raise RetrievalUnavailable(
                f"The question could not be embedded ({self._dense.name}): {exc}"
            ) from exc

    @staticmethod
    def _passage(
        hit: Hit, dense: list[float] | None, query_terms: list[int], top: float
    ) -> Passage:
        p = hit.payload
        if dense is not None and hit.dense is not None:
            score = max(0.0, min(1.0, _cosine(dense, hit.dense)))
        elif hit.sparse is not None:
            score = _lexical_similarity(query_terms, hit.sparse, top)
        else:
            score = 0.0
        return Passage(
            file=str(p.get("file", "")),
            title=str(p.get("title", "")),
            heading=str(p.get("heading", "")),
            url=str(p.get("url", "")),
            text=str(p.get("text", "")),
            score=round(score, 4),
            version=str(p["version"]) if p.get("version") is not None else None,
            plugin=str(p["plugin"]) if p.get("plugin") is not None else None,
        )

    async def warm(self) -> None:
        """Load the embedded collection's vectors into memory, and build the page outlines,
        now rather than on first use.

        Problems (an embedder mismatch) are logged here and reported by retrieve and check.
        """
        try:
            if await self._ensure_identity():
                if self._store.embedded:
                    await self._store.warm()
                await self._page_outlines()
        except StoreError as exc:
            log.warning("warming the search index: %s", describe(exc))

    async def check(self, timeout: float = 2.0) -> dict[str, Any]:
        """Health for /api/health: cheap, bounded, reader-facing detail when down."""
        loc = self._store.location
        result: dict[str, Any] = {
            "backend": loc.backend,
            "url": loc.url,
            "collection": self._store.collection,
            "embedder": {"dense": self._identity.dense, "sparse": self._identity.sparse},
        }
        try:
            async with asyncio.timeout(timeout + 0.5):
                await self._ensure_identity()
                points = await self._store.count(exact=False, timeout=timeout)
        except StoreError as exc:
            result.update(status="down", points=None, detail=str(exc))
            return result
        except TimeoutError:
            where = loc.host_port or loc.path
            result.update(
                status="down", points=None, detail=f"Qdrant at {where} did not answer in time"
            )
            return result
        result.update(status="ok" if points else "empty", points=points)
        return result

    async def aclose(self) -> None:
        """Close the Qdrant client (releases the embedded folder's lock) and the embedder."""
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
        try:
            await self._store.close()
        finally:
            close = getattr(self._dense, "aclose", None)
            if close is not None:
                await close()
