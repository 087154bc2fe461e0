"""Words, stems and terms: the one text analysis of retrieval (BM25) and of extractive answers.

Both legs must agree on what counts as the same word: a question term that BM25 matched in a
passage is found again when the extractive answerer picks that passage's sentences. Written
here rather than taken from a library because it must ship offline, be stable across versions
(the BM25 scheme in providers/local_sparse.py records it) and stay a few microseconds a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

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

# Words that frame a question about a book ("explain", "page", "use …") rather than name its
# topic. The extractive answerer ignores them when weighing sentences; BM25 keeps them, since
# its IDF already discounts common words and the index scheme (bm25:v1) must not change.
QUESTION_FILLER = STOPWORDS | frozenset(
    """book chapter describe done either else ever every example explain get gets give got go goes
    going kind put puts take takes taken took
    let lets make makes mean meaning means might much must page please section shall show tell
    thing things upon us use used using via want way ways whose within without work works yes
    yet""".split()  # noqa: SIM905
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


def words(text: str, *, ignore: frozenset[str] = STOPWORDS) -> Iterator[tuple[str, str]]:
    """(term, the word as written) for each content word; identifiers also yield their parts."""
    for match in _WORD.finditer(text):
        word = match.group()
        parts = _parts(word)
        if len(parts) > 1:
            # Keep the whole identifier (an exact match is strong evidence) and its parts.
            yield word.lower(), word
        else:
            parts = [word]
        for part in parts:
            lowered = part.lower()
            if lowered in ignore or (len(lowered) == 1 and not lowered.isdigit()):
                continue
            yield stem(lowered), part


def count_words(text: str) -> int:
    """How many words a text has, stopwords included."""
    return len(_WORD.findall(text))


def first_word(text: str) -> str:
    """The text's first word as written ("" if it has none)."""
    match = _WORD.search(text)
    return match.group() if match else ""


def tokenize(text: str) -> list[str]:
    """Lowercased, stemmed terms without stopwords, in order, repeats kept (BM25 counts them)."""
    return [term for term, _ in words(text)]


def terms(text: str, *, ignore: frozenset[str] = STOPWORDS) -> dict[str, str]:
    """The distinct terms of a text: term -> the first word seen for it."""
    found: dict[str, str] = {}
    for term, word in words(text, ignore=ignore):
        found.setdefault(term, word)
    return found


@lru_cache(maxsize=65536)
def same_term(a: str, b: str) -> bool:
    """Whether two terms name the same thing: equal, or one word family by a long prefix.

    "deploy" opens "deployment"; short terms must match exactly, so "log" and "login" stay
    apart.
    """
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) < 5:
        return False
    if len(shorter) >= 7:
        return shorter[:7] == longer[:7]
    return longer.startswith(shorter)


def matched(wanted: Iterable[str], present: set[str]) -> set[str]:
    """The wanted terms found among the present ones (same term or word family)."""
    return {t for t in wanted if t in present or any(same_term(t, p) for p in present)}
