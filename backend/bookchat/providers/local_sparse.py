"""The lexical leg: BM25 document weights as Qdrant sparse vectors (Qdrant supplies the IDF)."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

# Bump when tokenising, stemming, hashing or the constants change: points built with another
# scheme score differently, so the collection records it and a mismatch is refused.
SCHEME = "bm25:v1"

# BM25 constants. avgdl is fixed rather than measured over the corpus so that a chunk's weights
# never depend on the other chunks: ingestion can then skip unchanged chunks (fastembed's Bm25
# makes the same choice). 110 is the mean number of indexed terms of a 300-token chunk.
K1 = 1.2
B = 0.75
AVGDL = 110.0

_WORD = re.compile(r"\w+", re.UNICODE)
_ISE = re.compile(r"is(e|es|ed|ing|ation|ations)$")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t d ll m re ve y""".split()  # noqa: SIM905 - a word list reads better as prose
)


def _has_vowel(stem: str) -> bool:
    return any(c in "aeiouy" for c in stem)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English suffix stripper: plurals, -ing, -ed, -ly and a few derivations."""
    if len(word) <= 3 or not word.isalpha():
        return word
    # British and American spellings meet: normalise -> normalize.
    w = _ISE.sub(r"iz\1", word) if len(word) > 6 else word
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ingly", "edly", "ing", "ed"):
        if suffix == "ed" and w.endswith("eed"):  # speed, need, agreed: not a past tense
            break
        if w.endswith(suffix) and _has_vowel(w[: -len(suffix)]) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            # "configur" and "configured" must meet "configure" halfway: drop a doubled
            # consonant ("running" -> "run") and a final e below.
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    for suffix, repl in (
        ("ational", "ate"),
        ("ization", "ize"),
        ("isation", "ize"),
        ("fulness", "ful"),
        ("iveness", "ive"),
        ("ation", ""),
        ("ition", ""),
        ("sion", "s"),
        ("tion", "t"),
        ("ement", ""),
        ("ment", ""),
        ("ness", ""),
        ("ly", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            w = w[: -len(suffix)] + repl
            break
    if w.endswith("ate") and len(w) >= 8:
        w = w[:-3]
    elif w.endswith("al") and len(w) >= 7:
        w = w[:-2]
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    if w.endswith("y") and len(w) > 4 and w[-2] not in "aeiou":
        w = w[:-1] + "i"
    return w


def _parts(word: str) -> list[str]:
    """Pieces of an identifier: QDRANT_URL -> qdrant, url; camelCase -> camel, case."""
    pieces = [p for p in word.split("_") if p]
    out: list[str] = []
    for piece in pieces:
        # Case-splitting is for code identifiers, which are ASCII; "Größe" stays whole.
        found = _CAMEL.findall(piece) if piece.isascii() else []
        out.extend(found if found else [piece])
    return out


def tokenize(text: str) -> list[str]:
    """Lowercased, stemmed terms without stopwords; identifiers also yield their parts."""
    terms: list[str] = []
    for match in _WORD.finditer(text):
        word = match.group()
        parts = _parts(word)
        if len(parts) > 1:
            # Keep the whole identifier (an exact match is strong evidence) and its parts.
            whole = word.lower()
            terms.append(whole)
            words = [p.lower() for p in parts]
        else:
            words = [word.lower()]
        for w in words:
            if w in STOPWORDS or (len(w) == 1 and not w.isdigit()):
                continue
            terms.append(stem(w))
    return terms


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
