"""`bookchat ingest PATH`: parse, chunk, embed and index a Docusaurus docs folder."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bookchat.cli.places import index_place, old_data_dir_note
from bookchat.ingest.sample import sample_share
from bookchat.redact import escape_controls, redact
from bookchat.stores.errors import StoreError
from bookchat.stores.identity import IndexIdentity, point_id
from bookchat.stores.index_dir import write_manifest

if TYPE_CHECKING:
    from bookchat.config import Settings
    from bookchat.ingest.indexer import IngestReport
    from bookchat.ingest.siteconfig import Site


# Variables for the server only; see load_settings(unused=...).
UNUSED_SETTINGS = ("DATABASE_URL", "ALLOWED_ORIGINS", "HOST", "PORT")


T = TypeVar("T")


class CommandError(Exception):
    """Ends the command with one line on stderr and a non-zero exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        # Its text often quotes an upstream's (Qdrant's, Gemini's): credentials are masked,
        # hosts and paths kept, since the owner running the command needs to know where.
        super().__init__(redact(message))
        self.code = code


def run_command(name: str, work: Coroutine[Any, Any, T], *, interrupted: str = "interrupted") -> T:
    """Run a command's work; a CommandError or Ctrl-C ends the process with one stderr line."""
    try:
        return asyncio.run(work)
    except CommandError as exc:
        sys.stderr.write(f"bookchat {name}: {exc}\n")
        raise SystemExit(exc.code) from None
    except KeyboardInterrupt:
        sys.stderr.write(f"bookchat {name}: {interrupted}\n")
        raise SystemExit(130) from None


def register(subparsers: Any) -> None:
    """Add the `ingest` subcommand."""
    parser = subparsers.add_parser(
        "ingest",
        help="index a Docusaurus docs folder into Qdrant",
        description="Parse, chunk, embed and index a Docusaurus book. Unchanged chunks are "
        "skipped; chunks of changed or deleted pages are replaced or removed.",
    )
    parser.add_argument(
        "path",
        type=Path,
        help="the site folder (with docusaurus.config.*; its docs come from the config) "
        "or one docs folder",
    )
    add_site_options(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="parse and chunk, report what would change"
    )
    parser.add_argument(
        "--source-revision",
        help="the book's source revision (e.g. a git commit), recorded beside an embedded "
        "index and shown by /api/health",
    )
    parser.set_defaults(handler=run)


def add_site_options(parser: Any) -> None:
    """The flags that say where and which docs a book serves (ingest and eval share them)."""
    parser.add_argument("--site-url", help="the site's public URL (default: docusaurus.config)")
    parser.add_argument("--base-url", help="the site's baseUrl (default: docusaurus.config, /)")
    parser.add_argument(
        "--route-base-path", help="the docs routeBasePath (default: docusaurus.config, docs)"
    )
    parser.add_argument(
        "--versions",
        default="last",
        metavar="WHICH",
        help="docs versions to index: last (the one readers land on; default), all, or a "
        "comma list of names or patterns such as current,3.*",
    )


def resolve_site_arg(path: Path, args: argparse.Namespace) -> Site:
    """The site a PATH argument names, as Docusaurus serves it; says what it resolved."""
    # The site-config reader (~40 ms): not needed to build the parser.
    from bookchat.ingest.siteconfig import resolve_site

    if not path.exists():
        raise CommandError(f"{path} does not exist", code=2)
    if not path.is_dir():
        raise CommandError(f"{path} is not a folder: give the site or docs folder", code=2)
    site = resolve_site(
        path,
        site_url=getattr(args, "site_url", None),
        base_url=getattr(args, "base_url", None),
        route_base_path=getattr(args, "route_base_path", None),
        versions=getattr(args, "versions", None) or "last",
    )
    if not site.roots:
        for warning in site.warnings:
            sys.stderr.write(f"warning: {escape_controls(warning)}\n")
        raise CommandError(f"{path}: the site's config serves no docs folder to index", code=2)
    return site


def show_site(site: Site, prefix: str) -> None:
    """Print what was resolved (stdout) and what fell back to defaults (stderr)."""
    for warning in site.warnings:
        sys.stderr.write(f"{prefix}: warning: {escape_controls(warning)}\n")
    for line in site.describe():
        print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    """Handler: exit 0 when the book is indexed (bad files are reported and skipped)."""
    # pydantic-settings (~0.2 s), deferred: every command's module loads for --help.
    from bookchat.config import load_settings

    # Ingesting touches only Qdrant and the embedders: a malformed DATABASE_URL (or PORT)
    # meant for the server must not stop it.
    settings = load_settings(unused=UNUSED_SETTINGS)
    for line in old_data_dir_note(settings):
        sys.stderr.write(f"bookchat ingest: {line}\n")
    report = run_command(
        "ingest", _ingest(args, settings), interrupted="interrupted; run it again to finish"
    )
    for file, reason in report.problems:
        # A file name and a parser's message quote the book: no terminal escapes from it.
        sys.stderr.write(f"bookchat ingest: skipped {escape_controls(f'{file}: {reason}')}\n")
    print(report.summary())
    for line in outcome_lines(report, settings):
        print(line)
    return 0


def outcome_lines(report: IngestReport, settings: Settings) -> list[str]:
    """After the summary: where the chunks went, and in words what the deletions were."""

    would = report.dry_run
    lines = [f"{'would go into' if would else 'into'} {index_place(settings)}"]
    sample = sample_share(report.deleted_ids, settings.sample_book_url)
    if sample:
        lines.append(
            f"{'this would replace' if would else 'this replaced'} the sample book "
            f"(its {sample} chunks are the ones {'to delete' if would else 'deleted'}): "
            f"`bookchat serve` {'would answer' if would else 'now answers'} from this book"
        )
    others = report.deleted - sample
    if others:
        lines.append(
            f"{'would delete' if would else 'deleted'} {others} chunks of pages that changed "
            "or are not in this folder"
        )
    return lines


async def _ingest(args: argparse.Namespace, settings: Settings) -> IngestReport:
    # The backends and the ingest pipeline (~0.3 s), only once a command runs.
    from bookchat.backends import (
        ConfigurationError,
        make_dense_embedder,
        make_sparse_encoder,
        open_vector_store,
    )
    from bookchat.ingest.indexer import (
        IngestReport,
        fingerprint,
        ingest,
        unchanged_since_last_ingest,
    )
    from bookchat.ingest.pipeline import read_site
    from bookchat.ingest.siteconfig import docusaurus1_hint
    from bookchat.providers.gemini_embedder import EmbeddingError

    site = resolve_site_arg(args.path, args)
    show_site(site, "bookchat ingest")
    book = read_site(site)
    if not book.chunks and book.pages == 0 and not book.problems:
        hint = docusaurus1_hint(args.path)
        raise CommandError(
            f"{args.path} holds no Markdown pages (.md or .mdx)" + (f": {hint}" if hint else ""),
            code=2,
        )
    try:
        dense = make_dense_embedder(settings)
    except ConfigurationError as exc:
        raise CommandError(str(exc), code=2) from None
    sparse = make_sparse_encoder()

    if settings.embedded_qdrant and not args.dry_run and not args.source_revision:
        # Nothing changed since the last ingest into this index: done, without opening it.
        mark = fingerprint(book, IndexIdentity.of(dense, sparse), settings.qdrant_collection)
        if unchanged_since_last_ingest(settings.qdrant_path, mark):
            unique = {point_id(c.file, c.content_hash, c.title) for c in book.chunks}
            return IngestReport(files=book.pages, chunks=len(book.chunks), unchanged=len(unique))

    if args.dry_run and settings.embedded_qdrant and not settings.qdrant_path.exists():
        # Nothing stored yet, and opening embedded Qdrant would create its folder.
        unique = {point_id(c.file, c.content_hash, c.title) for c in book.chunks}
        return IngestReport(
            files=book.pages,
            chunks=len(book.chunks),
            embedded=len(unique),
            problems=list(book.problems),
            dry_run=True,
        )

    try:
        store = open_vector_store(settings)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    bar = _progress_bar()
    try:
        report = await ingest(
            chunked_book=book,
            store=store,
            dense=dense,
            sparse=sparse,
            progress=bar.update if bar else None,
            dry_run=args.dry_run,
        )
        if store.embedded and not args.dry_run:
            # What /api/health reports about a prebuilt (baked) index.
            write_manifest(
                settings.qdrant_path,
                site_url=f"{site.site_url}{site.base_url}",
                collection=settings.qdrant_collection,
                pages=book.pages,
                chunks=await store.count(exact=True),
                source_revision=args.source_revision,
                embedder=getattr(dense, "name", None),
            )
        return report
    except (StoreError, EmbeddingError) as exc:
        raise CommandError(str(exc)) from None
    finally:
        if bar:
            bar.close()
        await store.close()
        close = getattr(dense, "aclose", None)
        if close is not None:
            await close()


class _Bar:
    """tqdm on a terminal only: a log file gets the summary line, not carriage returns."""

    def __init__(self) -> None:
        self._bar: Any = None

    def update(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            if total == 0:
                return
            self._bar = tqdm(total=total, unit="chunk", desc="embedding", file=sys.stderr)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _progress_bar() -> _Bar | None:
    return _Bar() if sys.stderr.isatty() else None
