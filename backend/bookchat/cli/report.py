"""`bookchat report [--since 7d] [--format text|csv|json]`: what the book is missing."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bookchat.rag.report import (
    DEFAULT_MIN_SIMILARITY,
    build_report,
    render_csv,
    render_json,
    render_text,
)

if TYPE_CHECKING:
    from bookchat.config import Settings
    from bookchat.rag.report import Report

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """`7d`, `24h`, `30m`, `2w` back from now, or an ISO date/time (UTC unless it says)."""
    now = now or datetime.now(UTC)
    text = value.strip()
    match = re.fullmatch(r"(\d{1,6})\s*([mhdw])", text.lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a period or a date: use e.g. 7d, 24h, 30m, 2w or 2026-11-01"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def register(subparsers: Any) -> None:
    """Add the `report` subcommand."""

    parser = subparsers.add_parser(
        "report",
        help="what readers asked that the book does not answer well, and what it cites",
        description="Reads the conversation store (DATABASE_URL, or the SQLite file under the "
        "data dir): questions the answerer refused, questions answered only from "
        "low-similarity passages, answers thumbed down with their reasons, and the pages "
        "cited most; each list most frequent first.",
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        default="7d",
        help="how far back: 7d, 24h, 30m, 2w, or a date such as 2026-11-01 (default 7d)",
    )
    parser.add_argument("--format", choices=("text", "csv", "json"), default="text")
    parser.add_argument(
        "--min-similarity",
        type=float,
        default=DEFAULT_MIN_SIMILARITY,
        help=f"answers whose best passage is below this are listed (default "
        f"{DEFAULT_MIN_SIMILARITY})",
    )
    parser.add_argument(
        "--limit", type=int, default=20, help="entries per section in text format (default 20)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: print the report; 1 when the store cannot be read."""
    # pydantic-settings (~0.2 s), deferred: every command's module loads for --help.
    from bookchat.config import load_settings

    settings = load_settings()
    try:
        report = asyncio.run(_report(settings, args.since, args.min_similarity))
    except StoreUnreadable as exc:
        sys.stderr.write(f"bookchat report: cannot read the conversation store: {exc}\n")
        return 1
    if args.format == "json":
        sys.stdout.write(render_json(report))
    elif args.format == "csv":
        sys.stdout.write(render_csv(report))
    else:
        sys.stdout.write(render_text(report, limit=max(1, args.limit)))
    return 0


class StoreUnreadable(Exception):
    """The conversation store could not be read; the message says why, without secrets."""


async def _report(settings: Settings, since: datetime, min_similarity: float) -> Report:
    # SQLAlchemy (~0.5 s), only once the report runs.
    from bookchat.stores.conversation_store import STORE_ERRORS, ConversationStore

    store = ConversationStore(settings.sqlalchemy_url)
    try:
        await store.create_tables()  # a store nobody has asked anything yet: an empty report
        answers = await store.answered_since(since)
    except STORE_ERRORS as exc:
        # describe_failure names host and cause, never the password or the driver's text.
        raise StoreUnreadable(store.describe_failure(exc)) from None
    finally:
        await store.aclose()
    return build_report(
        answers, since=since, until=datetime.now(UTC), min_similarity=min_similarity
    )
