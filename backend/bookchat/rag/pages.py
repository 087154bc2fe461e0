"""Pages: which pages a question is about, judged by their outlines, their whole text and their
mean vector.

A passage is ranked alone, but readers ask about a page's subject: "How do I keep the keyboard
from covering my text input?" is answered on the page whose title is KeyboardAvoidingView,
whose passages need not repeat it. So each page is also ranked as a whole, four ways:
- its outline (title, every heading, and the words of its file path) by BM25 and, with a cheap
  local embedder, by cosine;
- its whole text by BM25 (a page that uses the question's words throughout beats one passage
  of another page that happens to repeat them), over the hashed terms of the lexical leg: the
  counts are read back from each passage's stored BM25 weights, not tokenised again
  (tokenising a 10,000-chunk book took 6.5 s of its first query);
- the mean of its passages' stored vectors by cosine (with a local embedder: the vectors are
  already there, nothing is embedded again).
Retrieval fuses these ranks with the passages' own (rag/retrieve.py). Measured on four real
books, two held-out ones and the sample book: backend/docs/benchmarks.md. Kept in memory: a
page count is small (hundreds), and everything is built from the stored points, so nothing
changes in the index.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING

from bookchat.providers.local_sparse import Bm25Encoder, term_index
from bookchat.text import tokenize

if TYPE_CHECKING:
    import numpy as np

    from bookchat.providers.embedding import DenseEmbedder

# BM25 over outlines and page texts: the usual constants; the mean length is measured (pages
# are rebuilt whenever the index changes, so nothing depends on a fixed average).
K1 = 1.2
B = 0.75
_PATH_SEPARATORS = re.compile(r"[-_/.]+")

# A page is (docs plugin instance, version, docs-relative file): two versions or instances may
# both have `intro.md`.
PageKey = tuple[str | None, str | None, str]


@dataclass(frozen=True, slots=True)
class PageChunk:
    """What the page rankings need of one stored chunk."""

    key: PageKey
    title: str
    heading: str
    text: str = ""
    dense: Sequence[float] | None = None
    # Its stored BM25 weights (indices, values), counted instead of its text when given. They
    # weigh "title\nheading\ntext" (ingest/indexer.embedding_text): the title's and heading's
    # terms are taken off again, so a page's counts are those of its text alone.
    sparse: tuple[Sequence[int], Sequence[float]] | None = None


def _terms(text: str) -> Counter[int]:
    """A text's terms as the lexical leg hashes them, counted."""
    return Counter(term_index(t) for t in tokenize(text))


@dataclass
class _Page:
    title: str = ""
    headings: list[str] = field(default_factory=list)
    # Counts of its texts without weights, less the titles and headings its weights hold.
    terms: Counter[int] = field(default_factory=Counter)
    weights: list[tuple[Sequence[int], Sequence[float]]] = field(default_factory=list)
    vectors: list[Sequence[float]] = field(default_factory=list)

    def add(self, chunk: PageChunk, known: dict[str, Counter[int]]) -> None:
        self.title = self.title or chunk.title
        if chunk.heading and chunk.heading not in self.headings:
            self.headings.append(chunk.heading)
        if chunk.sparse is not None:
            self.weights.append(chunk.sparse)
            # "title\nheading\n…": \w+ words never span the newlines, so the parts count apart;
            # a book's passages share few titles and headings, each tokenised once.
            for part in (chunk.title, chunk.heading):
                if part not in known:
                    known[part] = _terms(part)
                self.terms.subtract(known[part])
        elif chunk.text:
            self.terms.update(_terms(chunk.text))
        if chunk.dense is not None:
            self.vectors.append(chunk.dense)


def outline_text(file: str, title: str, headings: Sequence[str]) -> str:
    """The outline of a page as one text: title, headings, then the file path's words."""
    path_words = _PATH_SEPARATORS.sub(" ", file.rsplit(".", 1)[0])
    return "\n".join([title, *headings, path_words])


class _Bm25:
    """BM25 over a few hundred documents given as (document, term id, count) triples, the
    postings kept sorted by term (a question touches only its terms' documents, and adds them
    up in numpy: a common term is on every page of a big book)."""

    def __init__(
        self,
        n: int,
        rows: np.ndarray,
        terms: np.ndarray,
        tf: np.ndarray,
        vocabulary: dict[str, int] | None = None,
    ) -> None:
        """Each (document, term) pair once, with a positive count; `vocabulary`: the ids of
        string terms (none: the terms are the lexical leg's hashes already)."""
        import numpy as np  # only once pages are built: importing retrieval stays cheap

        self.n, self._vocabulary = n, vocabulary
        tf = tf.astype(np.float64)
        lengths = np.bincount(rows, weights=tf, minlength=n)
        total = int(lengths.sum())  # counts are integers: the sum is exact
        avgdl = total / n if n and total else 1.0
        norm = K1 * (1 - B + B * lengths / avgdl)
        order = np.lexsort((rows, terms))
        self._terms, starts, df = np.unique(terms[order], return_index=True, return_counts=True)
        self._starts = np.append(starts, len(order))
        self._docs = rows[order].astype(np.int32)
        tf = tf[order]
        # IDF by math.log term by term, as it always was: numpy's log may differ in the last bit.
        idf = np.asarray([math.log((n - d + 0.5) / (d + 0.5) + 1) for d in df.tolist()])
        self._weights = tf * (K1 + 1) / (tf + norm[self._docs]) * np.repeat(idf, df)

    @classmethod
    def from_counts(cls, counts: Sequence[Counter[str]]) -> _Bm25:
        """From each document's term counts."""
        import numpy as np

        vocabulary: dict[str, int] = {}
        rows, terms, tf = [], [], []
        for row, c in enumerate(counts):
            for term, count in c.items():
                rows.append(row)
                terms.append(vocabulary.setdefault(term, len(vocabulary)))
                tf.append(count)
        return cls(
            len(counts),
            np.asarray(rows, dtype=np.int64),
            np.asarray(terms, dtype=np.int64),
            np.asarray(tf, dtype=np.int64),
            vocabulary,
        )

    def scores(self, terms: set[str] | set[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each document's score, and which documents share one of the question's terms."""
        import numpy as np

        scores = np.zeros(self.n, dtype=np.float64)
        shared = np.zeros(self.n, dtype=bool)
        for term in terms:
            tid = term if self._vocabulary is None else self._vocabulary.get(str(term))
            if tid is None:
                continue
            at = int(np.searchsorted(self._terms, tid))
            if at < len(self._terms) and self._terms[at] == tid:
                found = slice(self._starts[at], self._starts[at + 1])
                # A term is listed once per document, so fancy-index addition is exact.
                scores[self._docs[found]] += self._weights[found]
                shared[self._docs[found]] = True
        return scores, shared


class PageRanks(Mapping[PageKey, int]):
    """0-based rank of the pages a ranking has an opinion on (read-only mapping)."""

    def __init__(self, index: dict[PageKey, int], ranks: list[int]) -> None:
        self._index = index  # page -> its row
        self._ranks = ranks  # row -> rank, -1 where the ranking has no opinion

    def __getitem__(self, page: PageKey) -> int:
        row = self._index.get(page)
        rank = -1 if row is None else self._ranks[row]
        if rank < 0:
            raise KeyError(page)
        return rank

    def __iter__(self) -> Iterator[PageKey]:
        return (page for page, row in self._index.items() if self._ranks[row] >= 0)

    def __len__(self) -> int:
        return sum(1 for rank in self._ranks if rank >= 0)


NO_RANKS = PageRanks({}, [])


class PageOutlines:
    """Ranks the book's pages for a question by their outlines, texts and mean vectors."""

    def __init__(
        self,
        pages: dict[PageKey, str],
        texts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        centroids: np.ndarray | None = None,
    ) -> None:
        """`pages`: each page's outline text; `texts`: (page row, hashed term, count) of the
        pages' whole texts, each pair once (local_sparse.term_index); `centroids`: one unit
        row per page; rows in the order of `pages`."""
        self.keys = list(pages)
        self._index = {key: row for row, key in enumerate(self.keys)}
        self._texts = [pages[k] for k in self.keys]
        self._outline_bm25 = _Bm25.from_counts([Counter(tokenize(t)) for t in self._texts])
        self._text_bm25 = (
            _Bm25(len(self.keys), *texts) if texts is not None and len(texts[0]) else None
        )
        self._vectors: np.ndarray | None = None
        self._centroids = centroids

    @classmethod
    def from_chunks(
        cls, chunks: Iterable[PageChunk], lexical: Bm25Encoder | None = None
    ) -> PageOutlines:
        """From every stored chunk, in any order (text, BM25 weights and vectors optional);
        `lexical`: the encoder that made the weights."""
        import numpy as np  # only once pages are built: importing retrieval stays cheap

        pages: dict[PageKey, _Page] = {}
        known: dict[str, Counter[int]] = {}
        for chunk in chunks:
            pages.setdefault(chunk.key, _Page()).add(chunk, known)
        ordered = sorted(pages.items(), key=_order)
        outlines = {key: outline_text(key[2], p.title, p.headings) for key, p in ordered}
        texts = _text_counts([p for _, p in ordered], lexical or Bm25Encoder())
        centroids = None
        if all(p.vectors for _, p in ordered) and ordered:
            sums = np.stack([np.asarray(p.vectors, dtype=np.float32).sum(0) for _, p in ordered])
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            centroids = sums / np.where(norms > 0, norms, 1.0)
        return cls(outlines, texts, centroids)

    def __len__(self) -> int:
        return len(self.keys)

    async def embed(self, dense: DenseEmbedder) -> None:
        """Embed every outline (for the cosine ranking); called once per build."""
        import numpy as np

        vectors = await dense.embed_documents(self._texts) if self._texts else []
        self._vectors = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)

    def lexical_ranks(self, question: str) -> PageRanks:
        """0-based rank of each page sharing a term with the question, by BM25 of its outline."""
        return self._ranks(*self._outline_bm25.scores(set(tokenize(question))))

    def text_ranks(self, question: str) -> PageRanks:
        """0-based rank of each page sharing a term with the question, by BM25 of its text."""
        if self._text_bm25 is None:
            return NO_RANKS
        terms = {term_index(t) for t in tokenize(question)}
        return self._ranks(*self._text_bm25.scores(terms))

    def dense_ranks(self, query: Sequence[float]) -> PageRanks:
        """0-based rank of every page by the cosine of its outline with the question."""
        return self._cosine_ranks(self._vectors, query)

    def centroid_ranks(self, query: Sequence[float]) -> PageRanks:
        """0-based rank of every page by the cosine of its passages' mean vector."""
        return self._cosine_ranks(self._centroids, query)

    def _cosine_ranks(self, rows: np.ndarray | None, query: Sequence[float]) -> PageRanks:
        if rows is None or not len(rows):
            return NO_RANKS
        import numpy as np

        q = np.asarray(query, dtype=np.float32)
        if q.shape != rows.shape[1:]:
            return NO_RANKS  # vectors of another embedder: no opinion rather than a wrong one
        # Unit rows; the question's norm is one number for every page, so it cannot reorder them.
        return self._ranks(rows @ q, None)

    def _ranks(self, scores: np.ndarray, shared: np.ndarray | None) -> PageRanks:
        """Ranks by score, best first, ties by page order; only `shared` pages when given."""
        import numpy as np

        rows = np.arange(len(scores)) if shared is None else np.flatnonzero(shared)
        # A stable sort of the rows in page order keeps ties in page order.
        order = rows[np.argsort(-scores[rows], kind="stable")]
        ranks = np.full(len(scores), -1, dtype=np.int64)
        ranks[order] = np.arange(len(order))
        return PageRanks(self._index, ranks.tolist())


def _text_counts(
    pages: Sequence[_Page], lexical: Bm25Encoder
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(page row, term, count) of every page's text, each pair once: the terms counted back
    from the passages' weights, all of a book's at once in numpy, plus each page's `terms`."""
    import numpy as np

    weights = [(row, w) for row, p in enumerate(pages) for w in p.weights]
    lengths = np.fromiter((len(w[0]) for _, w in weights), np.int64, len(weights))
    size = int(lengths.sum())
    terms = np.fromiter(chain.from_iterable(w[0] for _, w in weights), np.int64, size)
    values = np.fromiter(chain.from_iterable(w[1] for _, w in weights), np.float64, size)
    counts = lexical.term_counts(values, lengths)
    rows = np.repeat(np.fromiter((row for row, _ in weights), np.int64, len(weights)), lengths)
    extra = [(row, term, n) for row, p in enumerate(pages) for term, n in p.terms.items() if n]
    if extra:
        more = np.asarray(extra, dtype=np.int64)
        rows = np.concatenate([rows, more[:, 0]])
        terms = np.concatenate([terms, more[:, 1]])
        counts = np.concatenate([counts, more[:, 2]])
    # One key per (page, term): term ids are uint32, so page * 2**32 + term is unique.
    pairs, where = np.unique((rows << 32) | terms, return_inverse=True)
    totals = np.bincount(where, weights=counts, minlength=len(pairs)).astype(np.int64)
    # Zero or below: a title's or heading's terms where the weights did not hold them.
    keep = totals > 0
    pairs = pairs[keep]
    return pairs >> 32, pairs & 0xFFFFFFFF, totals[keep]


def _order(item: tuple[PageKey, _Page]) -> tuple[str, str, str]:
    (plugin, version, file), _ = item
    return (plugin or "", version or "", file)
