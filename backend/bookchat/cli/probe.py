"""`bookchat probe URL`: the end-to-end probe of bookchat.probe as a subcommand.

In the image there is no shell and no python on PATH, only `bookchat`: this is how the probe runs
there (`docker exec … bookchat probe http://127.0.0.1:7860`) and in checks.smoke.
"""

from __future__ import annotations

import argparse

from bookchat.probe import build_parser, report


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `probe` subcommand."""

    parser = subparsers.add_parser(
        "probe", help="wait for healthy, ask one question, check the answer's events"
    )
    build_parser(parser)
    parser.set_defaults(handler=report)
