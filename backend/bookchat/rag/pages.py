"""Pages: which pages a question is about, judged by their outlines, their whole text and their
mean vector.

A passage is ranked alone, but readers ask about a page's subject: "How do I keep the keyboard
from covering my text input?" is answered on the page whose title is KeyboardAvoidingView,
whose passages need not repeat it. So each page is also ranked as a whole, four ways:
- its outline (title, every heading, and the words of its file path) by BM25 and, with a cheap
  local embedder, by cosine;
- its whole text by BM25 (a page that uses the question's words throughout beats one passage
  of another page that happens to repeat them);
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
from typing import TYPE_CHECKING

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


@dataclass
class _Page:
    title: str = ""
    headings: list[str] = field(default_factory=list)
    terms: Counter[str] = field(default_factory=Counter)
    vectors: list[Sequence[float]] = field(default_factory=list)

    def add(self, chunk: PageChunk) -> None:
        self.title = self.title or chunk.title
        if chunk.heading and chunk.heading not in self.headings:
            self.headings.append(chunk.heading)
        if chunk.text:
            self.terms.update(tokenize(chunk.text))
        if chunk.dense is not None:
            self.vectors.append(chunk.dense)


def outline_text(file: str, title: str, headings: Sequence[str]) -> str:
    """The outline of a page as one text: title, headings, then the file path's words."""
    path_words = _PATH_SEPARATORS.sub(" ", file.rsplit(".", 1)[0])
    return "\n".join([title, *headings, path_words])


class _Bm25:
    """BM25 over a few hundred small documents given as term counts."""

    def __init__(self, counts: Sequence[Counter[str]]) -> None:
        import numpy as np  # only once pages are built: importing retrieval stays cheap

        lengths = [sum(c.values()) for c in counts]
        avgdl = (sum(lengths) / len(counts)) if counts and sum(lengths) else 1.0
        # term -> (documents, BM25 tf weight times IDF): a question touches only its terms'
        # documents, and adds them up in numpy (a common term is on every page of a big book).
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for i, (c, length) in enumerate(zip(counts, lengths, strict=True)):
            norm = K1 * (1 - B + B * length / avgdl)
            for term, tf in c.items():
                docs, weights = postings.setdefault(term, ([], []))
                docs.append(i)
                weights.append(tf * (K1 + 1) / (tf + norm))
        self.n = n = len(counts)
        self._postings = {
            t: (
                np.asarray(docs, dtype=np.int32),
                np.asarray(weights, dtype=np.float64)
                * math.log((n - len(docs) + 0.5) / (len(docs) + 0.5) + 1),
            )
            for t, (docs, weights) in postings.items()
        }

    def scores(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        """Each document's score, and which documents share a term with the question."""
        import numpy as np

        scores = np.zeros(self.n, dtype=np.float64)
        shared = np.zeros(self.n, dtype=bool)
        for term in set(tokenize(question)):
            found = self._postings.get(term)
            if found is not None:
                # A term is listed once per document, so fancy-index addition is exact.
                scores[found[0]] += found[1]
                shared[found[0]] = True
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
        texts: dict[PageKey, Counter[str]] | None = None,
        centroids: np.ndarray | None = None,
    ) -> None:
        """`pages`: each page's outline text; `texts`: the term counts of its whole text;
        `centroids`: one unit row per page, in the order of `pages`."""
        self.keys = list(pages)
        self._index = {key: row for row, key in enumerate(self.keys)}
        self._texts = [pages[k] for k in self.keys]
        self._outline_bm25 = _Bm25([Counter(tokenize(t)) for t in self._texts])
        counts = [(texts or {}).get(k, Counter()) for k in self.keys]
        self._text_bm25 = _Bm25(counts) if any(counts) else None
        self._vectors: np.ndarray | None = None
        self._centroids = centroids

    @classmethod
    def from_chunks(cls, chunks: Iterable[PageChunk]) -> PageOutlines:
        """From every stored chunk, in any order (text and vectors optional)."""
        pages: dict[PageKey, _Page] = {}
        for chunk in chunks:
            pages.setdefault(chunk.key, _Page()).add(chunk)
        ordered = sorted(pages.items(), key=_order)
        outlines = {key: outline_text(key[2], p.title, p.headings) for key, p in ordered}
        texts = {key: p.terms for key, p in ordered if p.terms}
        centroids = None
        if all(p.vectors for _, p in ordered) and ordered:
            import numpy as np  # only with a dense leg: importing retrieval stays cheap

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
        return self._ranks(*self._outline_bm25.scores(question))

    def text_ranks(self, question: str) -> PageRanks:
        """0-based rank of each page sharing a term with the question, by BM25 of its text."""
        return self._ranks(*self._text_bm25.scores(question)) if self._text_bm25 else NO_RANKS

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


def _order(item: tuple[PageKey, _Page]) -> tuple[str, str, str]:
    (plugin, version, file), _ = item
    return (plugin or "", version or "", file)
