"""The lexical leg: BM25 document weights as Qdrant sparse vectors (Qdrant supplies the IDF)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from bookchat.text import tokenize

if TYPE_CHECKING:
    import numpy as np

# Bump when tokenising, stemming, hashing or the constants change: points built with another
# scheme score differently, so the collection records it and a mismatch is refused.
SCHEME = "bm25:v1"

# BM25 constants. avgdl is fixed rather than measured over the corpus so that a chunk's weights
# never depend on the other chunks: ingestion can then skip unchanged chunks (fastembed's Bm25
# makes the same choice). 110 is the mean number of indexed terms of a 300-token chunk.
K1 = 1.2
B = 0.75
AVGDL = 110.0


@lru_cache(maxsize=131072)
def term_index(term: str) -> int:
    """A stable uint32 for a term (blake2b, never Python's per-process salted hash())."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


@dataclass(frozen=True, slots=True)
class SparseVec:
    """Sorted indices with their values, ready for qdrant's SparseVector."""

    indices: list[int]
    values: list[float]


class Bm25Encoder:
    """BM25 term-frequency saturation for documents, plain term presence for queries."""

    name = SCHEME

    def __init__(self, *, k1: float = K1, b: float = B, avgdl: float = AVGDL) -> None:
        self.k1, self.b, self.avgdl = k1, b, avgdl

    def encode_document(self, text: str) -> SparseVec:
        """tf*(k1+1)/(tf+k1*(1-b+b*dl/avgdl)) per term; Qdrant multiplies in the IDF."""
        counts = Counter(term_index(t) for t in tokenize(text))
        dl = sum(counts.values())
        norm = self.k1 * (1 - self.b + self.b * dl / self.avgdl)
        indices = sorted(counts)
        values = [counts[i] * (self.k1 + 1) / (counts[i] + norm) for i in indices]
        return SparseVec(indices, values)

    def term_counts(self, values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Each term's count in its document, read back from the weights of documents laid end
        to end (`lengths` weights each): encode_document's inverse, so the page rankings sum
        what is stored instead of tokenising every passage again (numpy: a book at once).

        With r = w / (k1 + 1 - w) = tf / norm, the document length dl = norm * sum(r) and
        norm = k1 * (1 - b + b * dl / avgdl) give norm = k1 * (1 - b) / (1 - k1 * b * sum(r) /
        avgdl); the rounded counts then give dl exactly, and norm once more from it, so the
        float32 weights a Qdrant server keeps round back to the same integers.
        """
        import numpy as np  # only for the page rankings: encoding stays numpy-free

        top = self.k1 + 1
        w = np.asarray(values, dtype=np.float64)
        ratios = np.where((w > 0) & (w < top), w / np.maximum(top - w, 1e-12), 0.0)
        doc = np.repeat(np.arange(len(lengths)), lengths)
        sums = np.bincount(doc, weights=ratios, minlength=len(lengths))
        denominator = 1 - self.k1 * self.b * sums / self.avgdl
        # Not weights this encoder made (or b = 1, where lengths cannot be told): count 1 each.
        usable = (denominator > 0) & (self.b < 1)
        norm = self.k1 * (1 - self.b) / np.where(usable, denominator, 1.0)
        counts = np.maximum(1, np.rint(ratios * norm[doc])).astype(np.int64)
        dl = np.bincount(doc, weights=counts, minlength=len(lengths))
        norm = self.k1 * (1 - self.b + self.b * dl / self.avgdl)
        counts = np.maximum(1, np.rint(ratios * norm[doc])).astype(np.int64)
        return np.where(usable[doc], counts, 1)

    def encode_documents(self, texts: list[str]) -> list[SparseVec]:
        """encode_document over a batch."""
        return [self.encode_document(t) for t in texts]

    def encode_query(self, text: str) -> SparseVec:
        """Each distinct query term weighs 1.0 (the IDF comes from the collection)."""
        indices = sorted({term_index(t) for t in tokenize(text)})
        return SparseVec(indices, [1.0] * len(indices))

    def saturation_max(self) -> float:
        """The largest value a document weight can take (tf -> infinity), for normalising."""
        return self.k1 + 1
