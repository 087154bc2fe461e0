"""The one ingest pipeline: a docs folder read, chunked and indexed, for the CLI and the runtime."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bookchat.ingest.chunker import chunk_book
from bookchat.ingest.indexer import IngestReport, Progress, ingest
from bookchat.ingest.siteconfig import read_site_config
from bookchat.sample_book import sample_book_path

if TYPE_CHECKING:
    from bookchat.ingest.model import ChunkedBook
    from bookchat.providers.embedding import DenseEmbedder
    from bookchat.providers.local_sparse import Bm25Encoder
    from bookchat.stores.vectors import VectorStore

log = logging.getLogger(__name__)


def read_book(docs_dir: Path, **site: str | None) -> ChunkedBook:
    """The docs folder's pages as chunks, with URLs from its site config (overrides in `site`).

    Raises SiteConfigError when the site config cannot be read.
    """
    return chunk_book(docs_dir, read_site_config(docs_dir, **site))


async def index_docs(
    docs_dir: Path,
    *,
    store: VectorStore,
    dense: DenseEmbedder | None,
    sparse: Bm25Encoder,
    progress: Progress | None = None,
    dry_run: bool = False,
    **site: str | None,
) -> IngestReport:
    """Read, chunk and index a docs folder; unchanged chunks cost nothing."""
    return await ingest(
        chunked_book=read_book(docs_dir, **site),
        store=store,
        dense=dense,
        sparse=sparse,
        progress=progress,
        dry_run=dry_run,
    )


async def ensure_sample_book(
    *, store: VectorStore, dense: DenseEmbedder | None, sparse: Bm25Encoder
) -> IngestReport | None:
    """Index the bundled sample book into an empty embedded collection; else do nothing.

    Never writes into a configured Qdrant server (QDRANT_URL set), nor into a collection that
    already has points. Returns None when it did nothing.
    """
    if not store.embedded or await store.count(exact=True) > 0:
        return None
    report = await index_docs(sample_book_path(), store=store, dense=dense, sparse=sparse)
    log.info("sample book ingested: %s", report.summary())
    return report
