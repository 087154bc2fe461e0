"""Cut pages into chunks: one per heading section, long sections split under a token budget.

Long sections split at paragraph boundaries first (a fenced code block counts as one
paragraph), then at sentence boundaries, then between words; nothing is ever dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

from bookchat.fences import fence_parts, is_code
from bookchat.ingest.docusaurus import Page, read_docs
from bookchat.ingest.markdown import paragraphs
from bookchat.ingest.model import Chunk, ChunkedBook
from bookchat.ingest.siteconfig import Site, SiteConfig

_TOKEN_PIECES = re.compile(r"\w+|[^\w\s]")
# Every further started six characters of a word: a word of length n matches (n - 1) // 6 times.
_LONG_WORD_EXTRA = re.compile(r"\w{6}(?=\w)")
# A sentence ends at . ! or ? (with any closing quotes/brackets) followed by whitespace.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+")


def estimate_tokens(text: str) -> int:
    """Cheap, deterministic token count: each punctuation mark is one, a word one per 6 chars.

    Subword tokenizers (Gemini's, BPE) give about 1.3 tokens per English word; counting a
    word as one token per started six characters lands close to that, erring high. The count
    is additive over whitespace-separated parts, which the splitter relies on.
    """
    return len(_TOKEN_PIECES.findall(text)) + len(_LONG_WORD_EXTRA.findall(text))


def chunk_page(page: Page, *, max_tokens: int = 300) -> list[Chunk]:
    """The page's chunks in reading order; the title is not part of `heading` (it has its own)."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    chunks: list[Chunk] = []
    for section in page.sections:
        heading = " > ".join(section.headings)
        url = f"{page.url}#{section.anchor}" if section.anchor else page.url
        for text in split_text(section.text, max_tokens=max_tokens):
            chunks.append(
                Chunk(
                    file=page.file,
                    title=page.title,
                    heading=heading,
                    url=url,
                    text=text,
                    content_hash=content_hash(page.file, heading, url, text),
                    position=len(chunks),
                )
            )
    return chunks


def chunk_book(docs_dir: Path, site: SiteConfig, *, max_tokens: int = 300) -> ChunkedBook:
    """Read and chunk a whole docs tree; unreadable files are listed in `problems`."""
    pages, problems = read_docs(docs_dir, site)
    book = ChunkedBook(pages=len(pages), problems=problems)
    for page in pages:
        book.chunks.extend(chunk_page(page, max_tokens=max_tokens))
    return book


def chunk_site(site: Site, *, max_tokens: int = 300) -> ChunkedBook:
    """Read and chunk every selected docs root of a site, each chunk tagged with its root.

    `version` is set when the site has released versions; `plugin` when several docs plugin
    instances are indexed, so sources from two instances (both with `intro.md`) stay apart.
    """
    book = ChunkedBook()
    several = len(site.plugins) > 1
    for root in site.roots:
        pages, problems = read_docs(root.path, root.site, site_dir=site.site_dir)
        book.pages += len(pages)
        book.problems.extend(problems)
        plugin = root.plugin if several else None
        for page in pages:
            for chunk in chunk_page(page, max_tokens=max_tokens):
                if root.version is not None or plugin is not None:
                    chunk = dataclasses.replace(chunk, version=root.version, plugin=plugin)
                book.chunks.append(chunk)
    return book


def content_hash(file: str, heading: str, url: str, text: str) -> str:
    """sha256 hex over what a point stands for; unit separators keep the fields apart."""
    return hashlib.sha256("\x1f".join((file, heading, url, text)).encode("utf-8")).hexdigest()


def split_text(text: str, *, max_tokens: int) -> list[str]:
    """Pieces of `text`, each within `max_tokens` unless a single word is longer."""
    text = text.strip()
    if not text:
        return []
    if estimate_tokens(text) <= max_tokens:
        return [text]
    # (piece, separator that joins it to the piece before) so merging restores the layout.
    pieces: list[tuple[str, str]] = []
    for paragraph in paragraphs(text):
        if estimate_tokens(paragraph) <= max_tokens:
            pieces.append((paragraph, "\n\n"))
        elif is_code(paragraph):
            pieces.extend((part, "\n\n") for part in _split_fence(paragraph, max_tokens))
        else:
            first = True
            for sentence in _sentences(paragraph):
                parts = (
                    [sentence]
                    if estimate_tokens(sentence) <= max_tokens
                    else _pack(sentence.split(), " ", max_tokens)
                )
                for part in parts:
                    pieces.append((part, "\n\n" if first else " "))
                    first = False
    return _merge(pieces, max_tokens)


def _sentences(paragraph: str) -> list[str]:
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        out.append(paragraph[start : match.end()].strip())
        start = match.end()
    out.append(paragraph[start:].strip())
    return [s for s in out if s]


def _split_fence(block: str, max_tokens: int) -> list[str]:
    """A long fenced block as several fenced blocks, each with the opening fence (and so the
    language) and a closing fence, cut between lines."""
    opening, inner, closing = fence_parts(block)
    overhead = estimate_tokens(opening) + estimate_tokens(closing)
    parts = _pack(inner, "\n", max(1, max_tokens - overhead))
    return [f"{opening}\n{part}\n{closing}" for part in parts]


def _pack(parts: list[str], joiner: str, max_tokens: int) -> list[str]:
    """Greedily join consecutive parts while the result stays within budget."""
    out: list[str] = []
    current: list[str] = []
    used = 0
    for part in parts:
        tokens = estimate_tokens(part)
        if current and used + tokens > max_tokens:
            out.append(joiner.join(current))
            current, used = [], 0
        current.append(part)
        used += tokens
    if current:
        out.append(joiner.join(current))
    return out


def _merge(pieces: list[tuple[str, str]], max_tokens: int) -> list[str]:
    """Rejoin neighbouring pieces (paragraphs or sentences) that fit together."""
    out: list[str] = []
    used = 0
    for piece, separator in pieces:
        tokens = estimate_tokens(piece)
        if out and used + tokens <= max_tokens:
            out[-1] = f"{out[-1]}{separator}{piece}"
            used += tokens
            continue
        out.append(piece)
        used = tokens
    return out
