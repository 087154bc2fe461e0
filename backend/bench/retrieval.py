"""Retrieval and offline answers on real books: one table over the sample book and a corpus.

    python backend/bench/retrieval.py [--corpus DIR] [--books jest,redux] [--misses]
                                      [--data DIR] [-k 5]

For each book it runs `bookchat eval QUESTIONS --docs SITE --answers` offline (BM25 + the
static embedder, embedded Qdrant, the offline answerer) in its own data dir, then prints
recall@k, MRR, the refusal rate, the cited-page rate and, for the questions in
books/offtopic/<book>.tsv that the book does not answer, the rate answered instead of refused,
per book, and their mean over the real books. The books, their commits and where their
question sets are: books/README.md.
`--corpus DIR` holds one checkout per book, named as the `book` column of books/books.tsv
(for example DIR/jest is a checkout of jestjs/jest); books missing there are skipped with a
note. Without `--corpus` only the sample book runs. `--data DIR` keeps each book's index
between runs (re-ingesting only changed chunks), which makes repeated runs faster.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOOKS = HERE / "books"
SAMPLE = HERE.parent / "bookchat" / "sample_book"
SUMMARY = re.compile(
    r"recall@(?P<k>\d+) (?P<recall>[\d.]+)  MRR (?P<mrr>[\d.]+)  \((?P<n>\d+) questions\)"
    r"  refusals (?P<refusals>[\d.]+) \((?P<refused_with_page>\d+) with the page retrieved\)"
    r"  cited page (?P<cited>[\d.]+)"
    r"(?:  answered off-topic [\d.]+ \((?P<offtopic_answered>\d+) of (?P<offtopic>\d+)\))?"
)
# Variables that would send eval to a remote index or to Gemini: the bench is offline.
REMOTE = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "QDRANT_URL", "QDRANT_API_KEY", "DATABASE_URL")


@dataclass(frozen=True)
class Book:
    name: str
    questions: Path
    site: Path

    @property
    def offtopic(self) -> Path:
        """Questions this book does not answer (books/README.md)."""
        return BOOKS / "offtopic" / f"{self.name}.tsv"


@dataclass(frozen=True)
class Row:
    book: str
    questions: int
    recall: float
    mrr: float
    refusals: float
    refused_with_page: int
    cited: float
    offtopic: int  # off-topic questions asked (0: the book has none)
    offtopic_answered: int


def books(corpus: Path | None, wanted: set[str] | None) -> tuple[list[Book], list[str]]:
    """The sample book and every corpus book that is checked out; notes for missing ones."""
    found = [Book("sample", SAMPLE / "questions.tsv", SAMPLE)]
    notes: list[str] = []
    with (BOOKS / "books.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            name = row["book"]
            if wanted is not None and name not in wanted:
                continue
            if corpus is None:
                continue
            site = corpus / name / row["site"]
            if not site.is_dir():
                notes.append(f"{name}: no {site} (check out {row['repository']} there)")
                continue
            found.append(Book(name, BOOKS / f"{name}.tsv", site))
    if wanted is not None:
        found = [b for b in found if b.name in wanted]
    return found, notes


def run_book(book: Book, data: Path, k: int, misses: bool) -> Row:
    env = {key: value for key, value in os.environ.items() if key not in REMOTE}
    env.update(BOOKCHAT_DATA_DIR=str(data / book.name), BOOKCHAT_EMBEDDER="local")
    command = [sys.executable, "-m", "bookchat", "eval", str(book.questions), "--docs"]
    command += [str(book.site), "--answers", "-k", str(k)]
    command += ["--offtopic", str(book.offtopic)] if book.offtopic.is_file() else []
    command += ["--verbose"] if misses else []
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{book.name}: bookchat eval failed:\n{done.stderr}")
    lines = done.stdout.splitlines()
    match = next((m for m in map(SUMMARY.search, lines) if m), None)
    if match is None:
        raise SystemExit(f"{book.name}: no summary line in:\n{done.stdout}")
    if misses:
        for line in lines:
            if not SUMMARY.search(line):
                print(f"[{book.name}] {line}")
    return Row(
        book=book.name,
        questions=int(match["n"]),
        recall=float(match["recall"]),
        mrr=float(match["mrr"]),
        refusals=float(match["refusals"]),
        refused_with_page=int(match["refused_with_page"]),
        cited=float(match["cited"]),
        offtopic=int(match["offtopic"] or 0),
        offtopic_answered=int(match["offtopic_answered"] or 0),
    )


def table(rows: list[Row], k: int) -> str:
    head = (
        f"| book | questions | recall@{k} | MRR | refusals | refused, page retrieved | cited page "
        "| answered off-topic |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.book} | {r.questions} | {r.recall:.3f} | {r.mrr:.3f} | {r.refusals:.3f} "
            f"| {r.refused_with_page} | {r.cited:.3f} "
            f"| {_offtopic(r.offtopic_answered, r.offtopic)} |"
        )
    real = [r for r in rows if r.book != "sample"]
    if len(real) > 1:
        n = len(real)
        asked = sum(r.offtopic for r in real)
        answered = sum(r.offtopic_answered for r in real)
        lines.append(
            f"| mean of {n} real books | {sum(r.questions for r in real)} "
            f"| {sum(r.recall for r in real) / n:.3f} | {sum(r.mrr for r in real) / n:.3f} "
            f"| {sum(r.refusals for r in real) / n:.3f} "
            f"| {sum(r.refused_with_page for r in real)} | {sum(r.cited for r in real) / n:.3f} "
            f"| {_offtopic(answered, asked)} |"
        )
    return "\n".join(lines)


def _offtopic(answered: int, asked: int) -> str:
    """ "0.133 (2/15)", or "-" for a book without off-topic questions."""
    return f"{answered / asked:.3f} ({answered}/{asked})" if asked else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="folder with one checkout per book")
    parser.add_argument("--books", help="comma list of books to run (default: all found)")
    parser.add_argument("--data", type=Path, help="keep each book's index here between runs")
    parser.add_argument("--misses", action="store_true", help="print misses and refusals")
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()
    wanted = {b.strip() for b in args.books.split(",")} if args.books else None
    found, notes = books(args.corpus, wanted)
    for note in notes:
        print(f"skipped {note}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bookchat-bench-") as tmp:
        data = args.data or Path(tmp)
        rows = [run_book(book, data, args.k, args.misses) for book in found]
    print(table(rows, args.k))


if __name__ == "__main__":
    main()
