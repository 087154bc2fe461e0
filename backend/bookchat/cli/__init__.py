"""`bookchat serve | ingest | eval | report | healthcheck | probe | release …`.

One subcommand per module.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module exposes register(subparsers) and sets args.handler(args) -> int.
# Imported lazily by name so `bookchat healthcheck` does not pay for the web stack.
SUBCOMMANDS = ("serve", "ingest", "eval", "report", "healthcheck", "probe", "release")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bookchat", description="Retrieval-augmented chat for a Docusaurus book."
    )
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
    sys.exit(args.handler(args))
