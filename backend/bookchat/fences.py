"""Fenced code blocks in Markdown (``` or ~~~, by CommonMark's rules): where one opens and ends.

The one fence rule of ingest's Markdown reader (ingest/markdown.py) and of the extractive
answerer, which finds the code in a retrieved passage's text, so the two agree on what is
code. It sits below both because rag/ and ingest/ may not import each other.
"""

from __future__ import annotations

import re

FENCE_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def _closing(marker: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")


def fence_end(lines: list[str], start: int) -> int | None:
    """If lines[start] opens a ``` or ~~~ fence, the index of its closing line, else None.

    Fences may be indented (inside list items); an unclosed fence runs to the end of the
    file, as in CommonMark.
    """
    fence = FENCE_OPEN.match(lines[start])
    if not fence or (fence.group("fence")[0] == "`" and "`" in fence.group("info")):
        return None
    close = _closing(fence.group("fence"))
    end = start + 1
    while end < len(lines) and not close.match(lines[end]):
        end += 1
    return min(end, len(lines) - 1)


def fence_parts(block: str) -> tuple[str, list[str], str]:
    """A fenced block's opening line, inner lines and closing line (made up if missing)."""
    lines = block.split("\n")
    opening = lines[0]
    fence = FENCE_OPEN.match(opening)
    if not fence:
        raise ValueError("not a fenced code block")
    marker = fence.group("fence")
    indent = opening[: len(opening) - len(opening.lstrip())]
    if len(lines) > 1 and _closing(marker).match(lines[-1]):
        return opening, lines[1:-1], lines[-1]
    return opening, lines[1:], indent + marker


def is_code(paragraph: str) -> bool:
    """True for a text that starts with a fence line (a fenced code block)."""
    return bool(FENCE_OPEN.match(paragraph.split("\n", 1)[0]))
