"""`bookchat release pin sha256:…`: point hf/Dockerfile at a pushed image digest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `release` subcommand and its `pin` action."""
    parser = subparsers.add_parser("release", help="release helpers (pin the Space's image digest)")
    actions = parser.add_subparsers(dest="release_command", metavar="ACTION", required=True)
    pin = actions.add_parser(
        "pin",
        help="rewrite the digest in hf/Dockerfile",
        description=(
            "Rewrite the FROM line of the Space's Dockerfile to ghcr.io/<owner>/bookchat@DIGEST. "
            "Refuses anything but a sha256 digest of the expected image."
        ),
    )
    pin.add_argument("digest", help="sha256:<64 hex>, or ghcr.io/<owner>/bookchat@sha256:<64 hex>")
    pin.add_argument(
        "--image",
        help="expected image, ghcr.io/<owner>/bookchat (default: the one in the Dockerfile)",
    )
    pin.add_argument(
        "--dockerfile",
        type=Path,
        default=Path("hf/Dockerfile"),
        help="Dockerfile to rewrite (default: hf/Dockerfile)",
    )
    pin.set_defaults(handler=pin_digest)


def pin_digest(args: argparse.Namespace) -> int:
    """Pin the digest; 0 on success (also when already pinned), 2 when refused."""
    # ~20 ms of imports for a command run only at release time.
    from bookchat.release import PinError, pin_file

    try:
        result = pin_file(args.dockerfile, args.digest, image=args.image)
    except PinError as exc:
        print(f"bookchat release pin: {exc}", file=sys.stderr)
        return 2
    if result.changed:
        print(f"{args.dockerfile}: FROM {result.image}@{result.digest} (was {result.previous})")
    else:
        print(f"{args.dockerfile}: already FROM {result.image}@{result.digest}")
    return 0
