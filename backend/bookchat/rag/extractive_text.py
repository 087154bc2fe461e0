"""The prose sentences of a passage, for the extractive answerer (terms come from bookchat.text)."""

from __future__ import annotations

import functools
import re

from bookchat.fences import fence_end
from bookchat.text import QUESTION_FILLER, count_words
from bookchat.text import terms as text_terms

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(\[]?[A-Z0-9`])")
_MARKDOWN_LEAD = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|>\s*|\d+[.)]\s+)+")
MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](target): keep the text
_CLOSED = re.compile(r"[.!?][\"”’)\]`*_]*$")
_RULE_CELL = re.compile(r"^:?-{3,}:?$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
# Lines that end a paragraph without being prose: admonition fences (`:::tip`), lines of JSX
# or HTML tags alone (`<Tabs>`, `</TabItem>`) or opening a tag over several lines
# (`<LiteYouTubeEmbed`, up to the line that closes it), MDX imports and exports.
# "<sup>†</sup> The store …" is prose.
_BREAK = re.compile(r"^\s*(?::::|(?:</?[A-Za-z!][^>]*>\s*)+$|<[A-Za-z!][^>]*$|(?:import|export)\s)")
_OPEN_TAG = re.compile(r"^\s*<[A-Za-z!][^>]*$")
# A reference page's field line: "Default: `false`", "* Type: **Number**", "**Since:** v29".
_FIELD = re.compile(r"^\**([A-Z][\w -]{0,24}?)(?::\**|\**:)\s+(\S.*)$")
# At most this many words: a longer "Note: …" line is a sentence of its own.
_FIELD_WORDS = 8
_HEADING_TEXT = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_NAVIGATION = re.compile(
    r"\b(?:see|read|visit|follow|continue\s+(?:with|to)|refer\s+to|go\s+to|head\s+to)"
    r"\s+(?:the\s+)?\[[^\]]*\]\([^)]*\)",
    re.IGNORECASE,
)


def terms(text: str) -> dict[str, str]:
    """A text's terms as the answerer weighs them: bookchat.text's, less question filler."""
    return text_terms(text, ignore=QUESTION_FILLER)


def sentences(text: str) -> list[str]:
    """Prose sentences of a passage, without code blocks or markdown list and heading marks."""
    return [sentence for _, sentence in placed_sentences(text)]


def placed_sentences(text: str, subject: str = "") -> tuple[tuple[int, str], ...]:
    """The prose sentences of a passage, each with the number of the section it sits in (see
    _read)."""
    return _read(text, subject)[0]


def default_lines(text: str, subject: str = "") -> frozenset[int]:
    """Which of placed_sentences(text, subject) are a field line giving a default value
    ("`automock` [boolean], default: `false`.")."""
    return _read(text, subject)[1]


@functools.lru_cache(maxsize=4096)
def _read(text: str, subject: str) -> tuple[tuple[tuple[int, str], ...], frozenset[int]]:
    """The prose sentences of a passage, each with the number of the section it sits in.

    A heading line inside the passage starts a new section, so a sentence can be matched to
    the code block under the same heading. A paragraph's lines are read as one text before it
    is cut into sentences: many books wrap their Markdown at 80 columns, and a line is then
    only a piece of a sentence ("When packages are" / "installed, their files are …").
    A short field line of a reference page ("Default: `false`") is a sentence about what its
    heading names, the last heading inside the passage or else `subject` (the passage's own
    heading): "`automock`, default: `false`." Cached: a passage retrieved for many questions
    is read once per process.
    """
    result: list[tuple[int, str]] = []
    defaults: set[int] = set()
    section = 0
    header: list[str] = []  # the column names of the table being read
    paragraph: list[str] = []  # the lines of the paragraph (or list item) being read
    is_item = False
    named = subject  # what the section being read is about
    in_tag = False

    def flush() -> None:
        if paragraph:
            text = " ".join(paragraph)
            field = _FIELD.match(text)
            said = _field_sentence(field, text, named) if field else ""
            if said and field and field.group(1).lower().startswith("default"):
                defaults.add(len(result))
            found = [said] if said else _paragraph_sentences(text, is_item)
            result.extend((section, s) for s in found)
            paragraph.clear()

    lines = text.splitlines()
    index = 0
    while index < len(lines):
        # Code is not prose: fences as ingest's reader finds them (bookchat.fences).
        end = fence_end(lines, index)
        line = lines[index]
        index = index + 1 if end is None else end + 1
        if in_tag:  # the attributes of a tag opened on an earlier line, up to its ">"
            in_tag = ">" not in line
            continue
        if end is not None or not line.strip() or _BREAK.match(line):
            flush()
            in_tag = bool(_OPEN_TAG.match(line))
            continue
        if line.strip().startswith("|"):
            flush()
            cells = _cells(line)
            if not header:
                header = cells
            elif not all(_RULE_CELL.match(c) for c in cells):
                row = _row_sentence(header, cells)
                if row:
                    result.append((section, row))
            continue
        header = []
        if _HEADING.match(line):
            flush()
            section += 1
            titled = _HEADING_TEXT.match(line)
            named = titled.group(1) if titled else subject
            continue
        if _LIST_ITEM.match(line):
            flush()
            is_item = True
        elif not paragraph:
            is_item = False
        paragraph.append(_MARKDOWN_LEAD.sub("", line).strip())
    flush()
    return tuple(result), frozenset(defaults)


def _field_sentence(field: re.Match[str], paragraph: str, subject: str) -> str:
    """ "Default: `false`" under `automock` reads "`automock`, default: `false`."; else ""."""
    if not subject or count_words(paragraph) > _FIELD_WORDS:
        return ""
    key, value = field.group(1).strip(), field.group(2).strip()
    subject = MARKDOWN_LINK.sub(r"\1", subject.replace("\\", "")).strip()
    sentence = f"{subject}, {key[0].lower()}{key[1:]}: {value}"
    return sentence if _CLOSED.search(sentence) else f"{sentence}."


def _paragraph_sentences(paragraph: str, is_item: bool) -> list[str]:
    found: list[str] = []
    for sentence in SENTENCE_END.split(paragraph):
        if _is_navigation(sentence):
            continue
        sentence = MARKDOWN_LINK.sub(r"\1", sentence).strip()
        # A sentence ending in ":" introduces code or a list that is not quoted; a list
        # item ending in ";" or "," is a fragment of a sentence begun elsewhere.
        if count_words(sentence) < 3 or sentence.endswith(":"):
            continue
        if is_item and sentence.endswith((";", ",")):
            continue
        # A paragraph with no closing stop that is not a list item is a title ("Preview first").
        if not is_item and not _CLOSED.search(sentence):
            continue
        found.append(sentence)
    return found


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
