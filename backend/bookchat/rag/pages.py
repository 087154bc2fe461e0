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
from collections.abc import Iterable, Sequence
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
        lengths = [sum(c.values()) for c in counts]
        avgdl = (sum(lengths) / len(counts)) if counts and sum(lengths) else 1.0
        # term -> [(document, BM25 tf weight)]: a question touches only its terms' documents.
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for i, (c, length) in enumerate(zip(counts, lengths, strict=True)):
            norm = K1 * (1 - B + B * length / avgdl)
            for term, tf in c.items():
                self._postings.setdefault(term, []).append((i, tf * (K1 + 1) / (tf + norm)))
        n = len(counts)
        self._idf = {
            t: math.log((n - len(p) + 0.5) / (len(p) + 0.5) + 1) for t, p in self._postings.items()
        }

    def scores(self, question: str) -> dict[int, float]:
        """Score of each document sharing a term with the question."""
        scores: dict[int, float] = {}
        for term in set(tokenize(question)):
            idf = self._idf.get(term, 0.0)
            for doc, weight in self._postings.get(term, ()):
                scores[doc] = scores.get(doc, 0.0) + idf * weight
        return scores


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

    def lexical_ranks(self, question: str) -> dict[PageKey, int]:
        """0-based rank of each page sharing a term with the question, by BM25 of its outline."""
        return self._ranks(self._outline_bm25.scores(question))

    def text_ranks(self, question: str) -> dict[PageKey, int]:
        """0-based rank of each page sharing a term with the question, by BM25 of its text."""
        return self._ranks(self._text_bm25.scores(question)) if self._text_bm25 else {}

    def dense_ranks(self, query: Sequence[float]) -> dict[PageKey, int]:
        """0-based rank of every page by the cosine of its outline with the question."""
        return self._cosine_ranks(self._vectors, query)

    def centroid_ranks(self, query: Sequence[float]) -> dict[PageKey, int]:
        """0-based rank of every page by the cosine of its passages' mean vector."""
        return self._cosine_ranks(self._centroids, query)

    def _cosine_ranks(self, rows: np.ndarray | None, query: Sequence[float]) -> dict[PageKey, int]:
        if rows is None or not len(rows):
            return {}
        import numpy as np

        q = np.asarray(query, dtype=np.float32)
        if q.shape != rows.shape[1:]:
            return {}  # vectors of another embedder: no opinion rather than a wrong one
        # Unit rows; the question's norm is one number for every page, so it cannot reorder them.
        return self._ranks(dict(enumerate((rows @ q).tolist())))

    def _ranks(self, scores: dict[int, float]) -> dict[PageKey, int]:
        order = sorted(scores, key=lambda i: (-scores[i], i))
        return {self.keys[i]: rank for rank, i in enumerate(order)}


def _order(item: tuple[PageKey, _Page]) -> tuple[str, str, str]:
    (plugin, version, file), _ = item
    return (plugin or "", version or "", file)
