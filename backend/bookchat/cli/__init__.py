"""`bookchat serve | ingest | ask | eval | report | healthcheck | probe | release …`.

One subcommand per module.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from bookchat import __version__
from bookchat.paths import data_dir_now

# Each module exposes register(subparsers) and sets args.handler(args) -> int.
# Imported lazily by name so `bookchat healthcheck` does not pay for the web stack.
SUBCOMMANDS = ("serve", "ingest", "ask", "eval", "report", "healthcheck", "probe", "release")


EXAMPLES = """\
examples:
  bookchat serve                       the chat page and API on http://127.0.0.1:8000/
  bookchat ingest path/to/your-book    index your Docusaurus site (or its docs/ folder)
  bookchat ask "How do I install it?"  answer from the index, in the terminal
  bookchat healthcheck --port 8000     exit 0 when a running server is healthy

environment (all optional: with none, bookchat runs offline on this machine):
  GEMINI_API_KEY                  answer (and embed) with Gemini instead of offline
  QDRANT_URL, QDRANT_API_KEY      a Qdrant server instead of the embedded index
  QDRANT_COLLECTION               the collection (default: docusaurus-book)
  DATABASE_URL                    PostgreSQL for conversations instead of SQLite
  BOOKCHAT_DATA_DIR               the embedded index and SQLite (now: {data_dir})
  HOST, PORT, ALLOWED_ORIGINS, LOG_LEVEL   where and for whom `serve` answers
every variable: backend/docs/configuration.md in the repository
"""


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(
        prog="bookchat",
        description="Retrieval-augmented chat for a Docusaurus book.",
        epilog=EXAMPLES.format(data_dir=data_dir_now()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bookchat {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"bookchat.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bookchat.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `bookchat` console script and `python -m bookchat`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        sys.exit(2)
    try:
        code = args.handler(args)
    except Exception:  # a bug or a failure no command foresaw; SystemExit and Ctrl-C pass
        sys.stderr.write(unexpected_failure(args.command, traceback.format_exc()))
        sys.exit(1)
    sys.exit(code)


def unexpected_failure(command: str, trace: str) -> str:
    """The traceback an operator needs to report a bug, without the credentials it may quote.

    An exception's text is often an upstream's or a driver's (a URL with a password, a key in a
    query string); Python's own handler would print it as it is.
    """
    from bookchat.redact import escape_controls, redact

    lines = [escape_controls(line) for line in redact(trace, _configured_secrets()).splitlines()]
    return f"bookchat {command}: unexpected error (a bug; please report it)\n" + "".join(
        f"{line}\n" for line in lines
    )


def _configured_secrets() -> tuple[str, ...]:
    """The configured secret values; none if the configuration itself cannot be read (the
    credential patterns still apply then)."""
    from bookchat.config import Settings

    try:
        return Settings().secrets()
    except Exception:
        return ()
