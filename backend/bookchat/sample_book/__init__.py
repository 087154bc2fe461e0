"""bookchat's own user guide as a Docusaurus book: ingested at startup when nothing else is."""

from __future__ import annotations

from pathlib import Path


def sample_book_path() -> Path:
    """The sample book's docs folder (its docusaurus.config.js sits beside it)."""
    return Path(__file__).resolve().parent / "docs"
