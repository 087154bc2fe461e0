"""The one ingest pipeline: a site or docs folder read, chunked and indexed, for the CLI and
the runtime."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bookchat.ingest.chunker import chunk_site
from bookchat.ingest.indexer import IngestReport, ingest
from bookchat.ingest.siteconfig import Site, resolve_site
from bookchat.sample_book import sample_book_path

if TYPE_CHECKING:
    from bookchat.ingest.model import ChunkedBook
    from bookchat.providers.embedding import DenseEmbedder
    from bookchat.providers.local_sparse import Bm25Encoder
    from bookchat.stores.vectors import VectorStore

log = logging.getLogger(__name__)

# The sample book's citation URLs are root-relative ("/docs/intro"): served by bookchat itself.
SAMPLE_BOOK_ORIGIN = ""


def read_site(site: Site) -> ChunkedBook:
    """Every selected docs root of a resolved site as chunks."""
    return chunk_site(site)


def read_book(path: Path, **options: str | None) -> ChunkedBook:
    """A site or docs folder's pages as chunks, with URLs as its site config routes them.

    `options` are resolve_site's overrides (site_url, base_url, route_base_path, versions);
    never raises for a config it cannot read (resolve_site falls back and warns).
    """
    given = {k: v for k, v in options.items() if v is not None}
    return read_site(resolve_site(path, **given))  # type: ignore[arg-type]


async def index_docs(
    path: Path,
    *,
    store: VectorStore,
    dense: DenseEmbedder | None,
    sparse: Bm25Encoder,
    **options: str | None,
) -> IngestReport:
    """Read, chunk and index a site or docs folder; unchanged chunks cost nothing.

    (`bookchat ingest`, which reports progress and can dry-run, calls ingest() itself.)
    """
    return await ingest(
        chunked_book=read_book(path, **options), store=store, dense=dense, sparse=sparse
    )


async def ensure_sample_book(
    *,
    store: VectorStore,
    dense: DenseEmbedder | None,
    sparse: Bm25Encoder,
    site_url: str = SAMPLE_BOOK_ORIGIN,
) -> IngestReport | None:
    """Index the bundled sample book into an empty embedded collection; else do nothing.

    Never writes into a configured Qdrant server (QDRANT_URL set), nor into a collection that
    already has points. Returns None when it did nothing.
    """
    if not store.embedded or await store.count(exact=True) > 0:
        return None
    # By default its citations point at bookchat's own origin, which serves these pages
    # (api/book_pages.py): the config's http://localhost:3000 is where `docusaurus start`
    # would serve them, and in the demo nothing runs there.
    report = await index_docs(
        sample_book_path(), store=store, dense=dense, sparse=sparse, site_url=site_url
    )
    log.info("sample book ingested: %s", report.summary())
    return report
