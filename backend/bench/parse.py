"""Parser and chunker speed: read and chunk a generated N-page Docusaurus book, no embedding.

    python backend/bench/parse.py [--pages 1000] [--repeat 3]

Prints pages, chunks, megabytes of text and the best of `repeat` timings. Target on a 2-core
machine: 1,000 pages well under a few seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_book import write_book

from bookchat.ingest.chunker import chunk_book
from bookchat.ingest.siteconfig import read_site_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        docs = write_book(Path(tmp), pages=args.pages)
        site = read_site_config(docs)
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            book = chunk_book(docs, site)
            timings.append(time.perf_counter() - start)
    megabytes = sum(len(c.text.encode()) for c in book.chunks) / 1e6
    print(
        f"parse+chunk: {book.pages} pages, {len(book.chunks)} chunks, {megabytes:.1f} MB text, "
        f"best {min(timings):.2f} s ({book.pages / min(timings):.0f} pages/s), "
        f"problems {len(book.problems)}"
    )


if __name__ == "__main__":
    main()
