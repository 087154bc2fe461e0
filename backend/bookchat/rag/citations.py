"""Citation markers: an `[n]` is a citation only when source n exists.

The model is told to cite only the numbers it was given, but a prompt injection (or a slip) can
make it write `[7]` with five sources. Such a marker is dropped from the answer as it streams, so
the reader, the stored message and the `done` event all agree on what was cited. Markers inside
code (fenced blocks and `inline` spans) are code, such as `items[7]`, and are left alone.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[(\d{1,4})\]")
# What the guard reads as citations: "1", "1,3", "1, 3, 4" (models often write "[1, 3]").
_LIST = re.compile(r"\d{1,4}(?: ?, ?\d{1,4})*")
_MAX_HELD = 32  # "[" and a list of a few numbers; anything longer is ordinary text


_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)


def unmarked(text: str) -> str:
    """Text that is not the answerer's own (a reader's selection) with its `[n]` markers taken
    out, so quoting it can neither cite a source nor lend a forged claim a real one's link."""
    return re.sub(r"\s*\[\d{1,4}\]", "", text)


def cited(answer: str, sources: int) -> list[int]:
    """The source numbers an answer cites outside code, each once, in the order first cited."""
    numbers: dict[int, None] = {}
    for match in _MARKER.finditer(_CODE.sub(" ", answer)):
        n = int(match.group(1))
        if 1 <= n <= sources:
            numbers[n] = None
    return list(numbers)


class CitationGuard:
    """Streams an answer through, dropping `[n]` markers outside code that name no source."""

    def __init__(self, sources: int) -> None:
        self.sources = sources
        self.dropped = 0
        self._held = ""  # "[", "[1", "[12" … while it may still become a marker
        self._ticks = 0  # the length of the run of backticks just read
        self._fence = False  # inside a ``` block
        self._inline = False  # inside an `inline` span
        self._line_start = True
        self._line_prefix_ticks = True  # the backtick run started the line (a fence may)

    @property
    def in_code(self) -> bool:
        return self._fence or self._inline

    def feed(self, piece: str) -> str:
        """The part of the answer that can go out now; a possible marker is held back."""
        out: list[str] = []
        for char in piece:
            self._char(char, out)
        return "".join(out)

    def flush(self) -> str:
        """What is still held when the answer ends."""
        out: list[str] = []
        self._end_ticks(out)
        held, self._held = self._held, ""
        self._emit(held, out)
        return "".join(out)

    def _char(self, char: str, out: list[str]) -> None:
        if char == "`":
            if self._held:
                self._emit(self._held, out)
                self._held = ""
            if self._ticks == 0:
                self._line_prefix_ticks = self._line_start
            self._ticks += 1
            self._line_start = False
            out.append(char)
            return
        self._end_ticks(out)
        if self._held:
            # "[1", then digits, commas and spaces: "[1, 3]" is a list of citations.
            if (char.isdigit() or (char in ", " and len(self._held) > 1)) and len(
                self._held
            ) < _MAX_HELD:
                self._held += char
                return
            if char == "]" and _LIST.fullmatch(self._held[1:]):
                numbers, self._held = [int(n) for n in self._held[1:].split(",")], ""
                kept = [n for n in numbers if 1 <= n <= self.sources]
                self.dropped += len(numbers) - len(kept)
                # One marker per source, so the page links each and cited() counts each.
                self._emit("".join(f"[{n}]" for n in kept), out)
                return
            self._emit(self._held, out)
            self._held = ""
        if char == "[" and not self.in_code:
            self._held = "["
            self._line_start = False
            return
        self._emit(char, out)
        self._line_start = char == "\n"

    def _end_ticks(self, out: list[str]) -> None:
        if not self._ticks:
            return
        if self._ticks >= 3 and self._line_prefix_ticks and not self._inline:
            self._fence = not self._fence
        elif not self._fence:
            self._inline = not self._inline
        self._ticks = 0

    def _emit(self, text: str, out: list[str]) -> None:
        if text:
            out.append(text)
