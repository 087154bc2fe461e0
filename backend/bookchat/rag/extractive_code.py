"""Fenced code blocks of a passage, for the offline answerer's "how do I …" answers.

A reader asking how to install or run something needs the command, which the prose around it
only alludes to ("The install puts the `bookchat` command on your path"). These helpers find
the blocks, which section of the passage each sits in, and the line that introduces it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bookchat.fences import fence_end, fence_parts
from bookchat.rag.extractive_text import MARKDOWN_LINK, SENTENCE_END, placed_sentences, terms
from bookchat.rag.types import Passage
from bookchat.text import matched

MAX_CODE_LINES = 12
MAX_CODE_CHARS = 1200
MAX_CODE_BLOCKS = 2
SECOND_BLOCK_SHARE = 0.75

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*\S)")
_COMMENT = re.compile(r"^\s*(?:#|//|--|;)")
# "How do I …", "how to …", "what command …", or a request for an action.
_HOW_TO = re.compile(
    r"\bhow\s+(?:do|can|could|should|would|to)\b"
    r"|\b(?:what|which)(?:'s|\s+is|\s+are)?\s+(?:the\s+)?"
    r"(?:commands?|flags?|options?|syntax|environment\s+variables?)\b"
    # The verb asked for, not described: "can I run …", "to install …", "Configure …?";
    # "What does a launch file start?" asks what it does.
    r"|(?:^\s*|\b(?:to|i|we|you)\s+)(?:run|install|configure|set|start|launch|deploy|export)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """One fenced block of a passage, as written (less the indentation of its fence)."""

    text: str  # the whole block, fences included
    lines: int  # lines of code between the fences
    section: int  # the passage's section it sits in, as counted by placed_sentences
    intro: str  # the sentence just before it when that ends in ":", else ""
    heading: str  # the heading inside the passage it sits under, else ""
    terms: dict[str, str]  # the terms of the code, its intro and its heading
    commands: tuple[str, ...]  # its lines less comments and blank ones, to spot repeats


def asks_how_to(question: str) -> bool:
    """Whether a question asks how to do something, so a command or snippet answers it."""
    return bool(_HOW_TO.search(question))


@functools.lru_cache(maxsize=4096)
def code_blocks(text: str) -> tuple[CodeBlock, ...]:
    """The fenced code blocks of a passage's text, in order; an unclosed fence is no block.

    Fences are found by the rule ingest's reader uses (bookchat.fences). Cached: a passage
    retrieved for many questions is read once per process.
    """
    blocks: list[CodeBlock] = []
    lines = text.splitlines()
    section = 0
    heading = ""
    previous = ""  # the last non-blank prose line
    index = 0
    while index < len(lines):
        line = lines[index]
        end = fence_end(lines, index)
        if end is None:
            if titled := _HEADING.match(line):
                section += 1
                heading = titled.group(1)
                previous = ""
            elif line.strip():
                previous = line.strip()
            index += 1
            continue
        opening, inner, closing = fence_parts("\n".join(lines[index : end + 1]))
        if end == index or closing != lines[end]:
            break  # unclosed: the passage was cut inside it
        indent = opening[: len(opening) - len(opening.lstrip())]
        # Inside a tab or an admonition the whole block is indented; the answer puts it flush.
        body = [
            b[len(indent) :] if b.startswith(indent) else b.lstrip()
            for b in (opening, *inner, closing)
        ]
        intro = _introduction(previous)
        code = "\n".join(body[1:-1])
        blocks.append(
            CodeBlock(
                text="\n".join(body),
                lines=len(inner),
                section=section,
                intro=intro,
                heading=heading,
                terms=terms(f"{code} {intro} {heading}"),
                commands=tuple(
                    b.strip() for b in body[1:-1] if b.strip() and not _COMMENT.match(b)
                ),
            )
        )
        previous = ""
        index = end + 1
    return tuple(blocks)


def _introduction(line: str) -> str:
    # "Clone the repository and install it into a virtual environment:" introduces the block.
    last = SENTENCE_END.split(line)[-1].strip() if line else ""
    if not last.endswith(":"):
        return ""
    return MARKDOWN_LINK.sub(r"\1", last).strip()


def pick_blocks(
    passages: Sequence[Passage],
    question_terms: dict[str, str],
    *,
    sections: Mapping[tuple[int, int], set[str]],
    min_coverage: float,
) -> list[tuple[int, CodeBlock]]:
    """The code blocks that show how to do what the question asks, with their passage numbers.

    A block in a passage the answer already cites qualifies when its code, the line that
    introduces it or its heading shares a term with the question; a block of another passage
    must cover the question as well as a quoted sentence has to (min_coverage). Under a
    quoted sentence's section (`sections` maps (passage number, section) to the question
    terms the sentences quoted there carry) those terms and the passage's title and heading
    count for half, and so do the title and heading for a passage of code alone.
    """
    present = [set(terms(f"{p.title} {p.heading} {p.text}")) for p in passages]
    # Rarer terms weigh more: "bookchat" is in every block, "docker" in one.
    weights = {
        t: 1.0 + math.log((len(passages) + 1) / (sum(bool(matched([t], o)) for o in present) + 1))
        for t in question_terms
    }
    full = sum(weights.values())
    cited = {number for number, _ in sections}
    options: list[tuple[float, int, int, CodeBlock]] = []
    for number, passage in enumerate(passages, start=1):
        blocks = code_blocks(passage.text)
        code_only = bool(blocks) and not placed_sentences(passage.text)
        context = matched(question_terms, set(terms(f"{passage.title} {passage.heading}")))
        for order, block in enumerate(blocks):
            # Long blocks are not cut: half a script would mislead; the citation leads to it.
            if not 0 < block.lines <= MAX_CODE_LINES or len(block.text) > MAX_CODE_CHARS:
                continue
            own = matched(question_terms, set(block.terms))
            if not own:
                continue
            nearby: set[str] = set()
            if code_only:
                nearby = context - own
            elif (number, block.section) in sections:
                # Under the quoted prose: what those sentences matched frames the block.
                framing = sections[number, block.section]
                nearby = (framing | (set() if block.heading else context)) - own
            found = sum(weights[t] for t in own) + 0.5 * sum(weights[t] for t in nearby)
            coverage = 0.5 * found / full + 0.5 * (len(own) + 0.5 * len(nearby)) / len(weights)
            if not (number in cited or coverage >= min_coverage):
                continue
            options.append((found - 0.01 * number, number, order, block))
    if not options:
        return []
    options.sort(key=lambda o: (-o[0], o[1], o[2]))
    best = options[0][0]
    picked: list[tuple[float, int, int, CodeBlock]] = []
    for option in options:
        # A second block only when it answers about as well as the first, and is not the
        # same commands shown again on another page.
        if len(picked) == MAX_CODE_BLOCKS or option[0] < SECOND_BLOCK_SHARE * best:
            break
        if all(option[3].commands != other[3].commands for other in picked):
            picked.append(option)
    return [(number, block) for _, number, _, block in sorted(picked, key=lambda o: o[1:3])]


def shown(number: int, block: CodeBlock, passage: Passage) -> str:
    """The block as the answer shows it: a cited label line, then the fenced code."""
    # The book's own line introducing the block, else its heading, carries the citation.
    if block.intro:
        label = block.intro[:-1].rstrip()
    else:
        label = block.heading or passage.heading.rsplit(" > ", 1)[-1] or passage.title
    return f"{label} [{number}]:\n{block.text}"
