"""Sentences and terms for the offline answerer: light stemming, word families, plain prose."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# Words that carry no topic; a plain string keeps the list readable.
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each either
    else ever every few for from further get gets got had has have having he her here hers him
    his how i if in into is it its itself just let lets me might more most much must my no nor
    not now of off on once only or other our ours out over own please same shall she should so
    some such tell than that the their theirs them then there these they this those through to
    too under until up upon us very via want was we were what when where which while who whom
    whose why will with within without would yes yet you your yours explain describe show give
    mean means meaning use using used work works make makes kind way ways thing things example
    book chapter page section""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+#-]*")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(\[]?[A-Z0-9`])")
_MARKDOWN_LEAD = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|>\s*|\d+[.)]\s+)+")
_JOINER = re.compile(r"[_-]+")
MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](target): keep the text
_CLOSED = re.compile(r"[.!?][\"”’)\]`*_]*$")
_RULE_CELL = re.compile(r"^:?-{3,}:?$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_NAVIGATION = re.compile(
    r"\b(?:see|read|visit|follow|continue\s+(?:with|to)|refer\s+to|go\s+to|head\s+to)"
    r"\s+(?:the\s+)?\[[^\]]*\]\([^)]*\)",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English stem, so "sensors"/"sensor" and "launching"/"launch" match."""
    word = word.lower()
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return _undouble(word[:-3])
    if len(word) > 4 and word.endswith("ed"):
        return _undouble(word[:-2])
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _undouble(word: str) -> str:
    # "logg" (from "logging") -> "log", "stopp" -> "stop"; "install" keeps its "ll".
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        return word[:-1]
    return word


@functools.lru_cache(maxsize=65536)
def same_term(a: str, b: str) -> bool:
    """Whether two stems name the same thing: equal, or one word family by a long prefix.

    "configure"/"configuration" share "configu"; "deploy" opens "deployment". Short stems
    must match exactly, so "log" and "login" stay apart.
    """
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) < 5:
        return False
    if len(shorter) >= 7:
        return shorter[:7] == longer[:7]
    return longer.startswith(shorter)


def terms(text: str) -> dict[str, str]:
    """The content terms of a text: stem -> the first word seen for it."""
    found: dict[str, str] = {}
    for word in _WORD.findall(text):
        # LOG_LEVEL and sample-book also stand for their parts.
        parts = [word, *_JOINER.split(word)] if _JOINER.search(word) else [word]
        for part in parts:
            lowered = part.lower()
            if lowered in _STOPWORDS or len(lowered) < 2:
                continue
            found.setdefault(stem(lowered), part)
    return found


def matched(wanted: Iterable[str], present: set[str]) -> set[str]:
    return {t for t in wanted if t in present or any(same_term(t, p) for p in present)}


def sentences(text: str) -> list[str]:
    """Prose sentences of a passage, without code blocks or markdown list and heading marks."""
    return [sentence for _, sentence in placed_sentences(text)]


def placed_sentences(text: str) -> list[tuple[int, str]]:
    """The prose sentences of a passage, each with the number of the section it sits in.

    A heading line inside the passage starts a new section, so a sentence can be matched to
    the code block under the same heading.
    """
    result: list[tuple[int, str]] = []
    section = 0
    in_code = False
    header: list[str] = []  # the column names of the table being read
    for line in text.splitlines():
        if line.strip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code:
            continue
        if line.strip().startswith("|"):
            cells = _cells(line)
            if not header:
                header = cells
            elif not all(_RULE_CELL.match(c) for c in cells):
                row = _row_sentence(header, cells)
                if row:
                    result.append((section, row))
            continue
        header = []
        if not line.strip():
            continue
        if _HEADING.match(line):
            section += 1
            continue
        is_item = bool(_LIST_ITEM.match(line))
        line = _MARKDOWN_LEAD.sub("", line).strip()
        for sentence in SENTENCE_END.split(line):
            if _is_navigation(sentence):
                continue
            sentence = MARKDOWN_LINK.sub(r"\1", sentence).strip()
            # A sentence ending in ":" introduces code or a list that is not quoted; a list
            # item ending in ";" or "," is a fragment of a sentence begun elsewhere.
            if len(_WORD.findall(sentence)) < 3 or sentence.endswith(":"):
                continue
            if is_item and sentence.endswith((";", ",")):
                continue
            # A line with no closing stop that is not a list item is a title ("Preview first").
            if not is_item and not _CLOSED.search(sentence):
                continue
            result.append((section, sentence))
    return result


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _row_sentence(header: list[str], cells: list[str]) -> str:
    # "| `PORT` | `8000` | The port it listens on. |" under "| Variable | Default | Meaning |"
    # reads "Variable `PORT`, Default `8000`: The port it listens on."
    if len(cells) != len(header) or len(cells) < 2 or not all(cells):
        return ""
    first = ", ".join(
        f"{name} {cell}".strip() for name, cell in zip(header[:-1], cells[:-1], strict=True)
    )
    return MARKDOWN_LINK.sub(r"\1", f"{first}: {cells[-1]}")


def _is_navigation(sentence: str) -> bool:
    # "See [Deploying](./deploy) for the rest." or "…, follow [Ingesting](./ingest)." points
    # elsewhere instead of saying anything; the reader has the citation links for that.
    return bool(_NAVIGATION.search(sentence))
