"""Telling the bundled sample book apart from a reader's own book in a collection."""

from __future__ import annotations

import functools
from collections.abc import Collection


@functools.cache
def sample_book_ids(site_url: str = "") -> frozenset[str]:
    """The sample book's point ids, as served (site_url) or as its own config says.

    Ids hash each chunk's URL, so both forms count: the one `bookchat serve` indexes
    (BOOKCHAT_SAMPLE_BOOK_URL, root-relative by default) and `bookchat ingest` of its folder.
    """
    # The ingest pipeline (~0.2 s), only when asked: every CLI command imports this module.
    from bookchat.ingest.pipeline import read_book
    from bookchat.sample_book import sample_book_path
    from bookchat.stores.identity import point_id

    ids: set[str] = set()
    for book in (read_book(sample_book_path(), site_url=site_url), read_book(sample_book_path())):
        ids.update(point_id(c.file, c.content_hash, c.title) for c in book.chunks)
    return frozenset(ids)


def sample_share(ids: Collection[str], site_url: str = "") -> int:
    """How many of these point ids are the sample book's."""
    return len(sample_book_ids(site_url).intersection(ids))


def holds_only_the_sample_book(ids: Collection[str], site_url: str = "") -> bool:
    """Whether a collection with these point ids holds the sample book and nothing else."""
    return bool(ids) and sample_share(ids, site_url) == len(ids)
