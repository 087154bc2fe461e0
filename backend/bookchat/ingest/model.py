"""What ingestion produces: chunks of a page, each ready to embed and cite."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of the book, with its citation."""

    file: str  # relative to its version's docs root, POSIX separators: "module-01/chapter-01.md"
    title: str  # page title
    heading: str  # heading path joined with " > " ("" for the text before the first heading)
    url: str  # absolute public URL of the page, with "#anchor" when under a heading
    text: str  # the passage's prose, as embedded and shown
    content_hash: str  # sha256 hex of what determines the point (heading path, url, text)
    position: int  # order of the chunk within its page, from 0
    version: str | None = None  # the docs version, when the site has released versions
    plugin: str | None = None  # the docs plugin instance id, when the site has several


@dataclass(slots=True)
class ChunkedBook:
    """Every chunk of a docs tree, plus the files that could not be read and why."""

    chunks: list[Chunk] = field(default_factory=list)
    pages: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
