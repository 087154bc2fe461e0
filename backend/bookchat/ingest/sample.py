"""Telling the bundled sample book apart from a reader's own book in a collection."""

from __future__ import annotations

import functools
from collections.abc import Collection


@functools.cache
def sample_book_ids() -> frozenset[str]:
    """The point ids the sample book has when ingested (they depend only on its text)."""
    from bookchat.ingest.pipeline import read_book
    from bookchat.sample_book import sample_book_path
    from bookchat.stores.identity import point_id

    book = read_book(sample_book_path())
    return frozenset(point_id(c.file, c.content_hash, c.title) for c in book.chunks)


def sample_share(ids: Collection[str]) -> int:
    """How many of these point ids are the sample book's."""
    return len(sample_book_ids().intersection(ids))


def holds_only_the_sample_book(ids: Collection[str]) -> bool:
    """Whether a collection with these point ids holds the sample book and nothing else."""
    return bool(ids) and sample_share(ids) == len(ids)
