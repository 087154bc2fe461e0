"""Baked-index benchmark: what serving a read-only BOOKCHAT_INDEX_DIR costs at start-up.

    python backend/bench/baked_index.py [--runs 5] [--pages 1000]

Builds two indexes with `bookchat ingest` as nix/index.nix does (offline embedder, into
BOOKCHAT_INDEX_DIR): the sample book and a synthetic book of `pages` pages. For each, prints
the index size, the median time stores.index_dir takes to prepare it read-only (checking its
read snapshot's token, or copying it when the snapshot is not fresh; "copied" says which), and
the median spawn -> healthy of `bookchat serve` with the index read-only and writable.
"""

from __future__ import annotations

import argparse
import os
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from startup import free_port, spawn_to_health_env
from synthetic_book import write_book

from bookchat.backends import prepare_index
from bookchat.config import Settings
from bookchat.sample_book import sample_book_path


def build(book: Path, index: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "QDRANT_"))},
        "BOOKCHAT_DATA_DIR": str(index.parent / "build-data"),
        "BOOKCHAT_INDEX_DIR": str(index),
        "BOOKCHAT_EMBEDDER": "local",
        "PYTHONHASHSEED": "0",
    }
    subprocess.run(
        [sys.executable, "-m", "bookchat", "ingest", str(book)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (index / ".lock").unlink(missing_ok=True)


def set_writable(folder: Path, writable: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~bits)


def size(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def prepare_seconds(index: Path, data: Path, runs: int) -> tuple[float, bool]:
    settings = Settings(BOOKCHAT_DATA_DIR=data, BOOKCHAT_INDEX_DIR=str(index), QDRANT_URL="")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        served = prepare_index(settings)
        times.append(time.perf_counter() - started)
    return statistics.median(times), served.copied_from == index


def healthy_seconds(index: Path, data: Path, runs: int) -> float:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "QDRANT_"))},
        "BOOKCHAT_DATA_DIR": str(data),
        "BOOKCHAT_INDEX_DIR": str(index),
        "LOG_LEVEL": "WARNING",
    }
    return statistics.median(
        spawn_to_health_env(dict(env, PORT=str(free_port())))[1] for _ in range(runs)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    print(f"baked index start-up cost, median of {args.runs} runs ({os.cpu_count()} CPUs)")
    print(
        f"{'book':<22}{'index':>9}{'prepare':>10}{'copied':>8}{'healthy ro':>12}{'healthy rw':>12}"
    )
    with tempfile.TemporaryDirectory(prefix="bookchat-bench-") as tmp:
        root = Path(tmp)
        books = {
            "sample book": sample_book_path().parent,
            f"synthetic {args.pages} pages": write_book(root / "synthetic", pages=args.pages),
        }
        for i, (name, book) in enumerate(books.items()):
            index = root / f"index-{i}"
            build(book, index)
            set_writable(index, False)
            prepare, copied = prepare_seconds(index, root / f"copy-{i}", args.runs)
            read_only = healthy_seconds(index, root / f"serve-ro-{i}", args.runs)
            set_writable(index, True)
            in_place = healthy_seconds(index, root / f"serve-rw-{i}", args.runs)
            print(
                f"{name:<22}{size(index):>7.1f}MB{prepare:>9.3f}s{'yes' if copied else 'no':>8}"
                f"{read_only:>11.2f}s{in_place:>11.2f}s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
