"""Page outlines: which pages a question is about, judged by their titles and headings.

A passage is ranked alone, but readers ask about a page's subject: "How do I keep the keyboard
from covering my text input?" is answered on the page whose title is KeyboardAvoidingView,
whose passages need not repeat it. Each page's outline (title, every heading, and the words of
its file path) is a small document; ranking them by BM25 and, with a cheap local embedder, by
cosine gives each page a rank, which retrieval adds to its passages' fused rank. Measured on
four real books and the sample book (backend/docs/benchmarks.md): recall@5 and MRR rise on
every one. Kept in memory: a page count is small (hundreds), and the outline is built from the
stored payloads, so nothing changes in the index.
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

# BM25 over outlines: the usual constants; the mean outline length is measured (the outlines
# are rebuilt whenever the index changes, so nothing depends on a fixed average).
K1 = 1.2
B = 0.75
_PATH_SEPARATORS = re.compile(r"[-_/.]+")

# A page is (docs plugin instance, version, docs-relative file): two versions or instances may
# both have `intro.md`.
PageKey = tuple[str | None, str | None, str]


@dataclass
class _Page:
    title: str = ""
    headings: list[str] = field(default_factory=list)

    def add(self, title: str, heading: str) -> None:
        self.title = self.title or title
        if heading and heading not in self.headings:
            self.headings.append(heading)


def outline_text(file: str, title: str, headings: Sequence[str]) -> str:
    """The outline of a page as one text: title, headings, then the file path's words."""
    path_words = _PATH_SEPARATORS.sub(" ", file.rsplit(".", 1)[0])
    return "\n".join([title, *headings, path_words])


class PageOutlines:
    """Ranks the book's pages for a question by their outlines."""

    def __init__(self, pages: dict[PageKey, str]) -> None:
        self.keys = list(pages)
        texts = [pages[k] for k in self.keys]
        counts = [Counter(tokenize(t)) for t in texts]
        lengths = [sum(c.values()) for c in counts]
        avgdl = (sum(lengths) / len(counts)) if counts else 1.0
        # term -> [(page, BM25 tf weight)]: a question touches only its terms' pages.
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for i, (c, length) in enumerate(zip(counts, lengths, strict=True)):
            norm = K1 * (1 - B + B * length / avgdl)
            for term, tf in c.items():
                self._postings.setdefault(term, []).append((i, tf * (K1 + 1) / (tf + norm)))
        n = len(counts)
        self._idf = {
            t: math.log((n - len(p) + 0.5) / (len(p) + 0.5) + 1) for t, p in self._postings.items()
        }
        self._texts = texts
        self._vectors: np.ndarray | None = None

    @classmethod
    def from_chunks(cls, chunks: Iterable[tuple[PageKey, str, str]]) -> PageOutlines:
        """From (page key, title, heading path) of every stored chunk, in any order."""
        pages: dict[PageKey, _Page] = {}
        for key, title, heading in chunks:
            pages.setdefault(key, _Page()).add(title, heading)
        ordered = sorted(pages.items(), key=_order)
        return cls({key: outline_text(key[2], p.title, p.headings) for key, p in ordered})

    def __len__(self) -> int:
        return len(self.keys)

    async def embed(self, dense: DenseEmbedder) -> None:
        """Embed every outline (for the cosine ranking); called once per build."""
        import numpy as np  # only with a dense leg: importing retrieval stays cheap

        vectors = await dense.embed_documents(self._texts) if self._texts else []
        self._vectors = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)

    def lexical_ranks(self, question: str) -> dict[PageKey, int]:
        """0-based rank of each page sharing a term with the question, by BM25 of its outline."""
        scores: dict[int, float] = {}
        for term in set(tokenize(question)):
            idf = self._idf.get(term, 0.0)
            for page, weight in self._postings.get(term, ()):
                scores[page] = scores.get(page, 0.0) + idf * weight
        return self._ranks(scores)

    def dense_ranks(self, query: Sequence[float]) -> dict[PageKey, int]:
        """0-based rank of every page by the cosine of its outline with the question."""
        if self._vectors is None or not len(self._vectors):
            return {}
        import numpy as np

        # Unit vectors from the same embedder: the dot product is the cosine.
        cosines = self._vectors @ np.asarray(query, dtype=np.float32)
        return self._ranks(dict(enumerate(cosines.tolist())))

    def _ranks(self, scores: dict[int, float]) -> dict[PageKey, int]:
        order = sorted(scores, key=lambda i: (-scores[i], i))
        return {self.keys[i]: rank for rank, i in enumerate(order)}


def _order(item: tuple[PageKey, _Page]) -> tuple[str, str, str]:
    (plugin, version, file), _ = item
    return (plugin or "", version or "", file)
