"""Each retrieval leg's page MRR@5 on the bench books: where a miss is lost.

    python backend/bench/retrieval.py --corpus DIR --data DATA   # indexes the books first
    python backend/bench/legs.py --corpus DIR --data DATA [--books jest,cypress]
                                 [--dense-weight 1.5] [--rrf-k 2] [--candidates 30]

For each book indexed in DATA/<book> by retrieval.py, every question is searched by the BM25 leg
alone, the dense leg alone, their reciprocal-rank fusion, and the whole retrieval (fusion, then
the page ranking of rag/pages.py), and a table prints the page MRR@5 of each (the rank of the
expected file among the distinct pages of the passages, 0 past 5). `--dense-weight`, `--rrf-k`
and `--candidates` change the fusion this bench does (not the service's) to see what a weighted
fusion or a deeper candidate list would give; with the defaults the last column equals
retrieval.py's MRR. Offline and deterministic, like retrieval.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval import REMOTE, Book, books  # the same books, question sets and corpus layout

from bookchat.rag.eval import Question, read_questions

LEGS = ("bm25", "dense", "fused", "final")


@dataclass(frozen=True)
class Fusion:
    """The fusion this bench applies: RRF with a weight on the dense leg, over `candidates`."""

    dense_weight: float = 1.0
    rrf_k: float = 2.0  # the service's (stores/memory_index.py RRF_K)
    candidates: int = 30  # the service's (rag/retrieve.py CANDIDATES)


def page_rank(files: Sequence[str], expected: str, k: int = 5) -> int | None:
    """1-based rank of `expected` among the distinct files in order, None past k."""
    pages: list[str] = []
    for file in files:
        if file not in pages:
            pages.append(file)
    return pages.index(expected) + 1 if expected in pages[:k] else None


def fuse(legs: Sequence[tuple[float, Sequence[Any]]], rrf_k: float, limit: int) -> list[Any]:
    """Weighted reciprocal-rank fusion of hit lists, a passage known by its url and text."""
    scores: dict[tuple[Any, Any], float] = {}
    first: dict[tuple[Any, Any], Any] = {}
    for weight, hits in legs:
        for position, hit in enumerate(hits):
            key = (hit.payload.get("url"), hit.payload.get("text"))
            scores[key] = scores.get(key, 0.0) + weight / (position + rrf_k)
            first.setdefault(key, hit)
    return [first[key] for key in sorted(scores, key=lambda key: -scores[key])[:limit]]


async def book_legs(data_dir: Path, questions: list[Question], fusion: Fusion) -> dict[str, float]:
    """Page MRR@5 of each leg over `questions`, on the index in `data_dir` (built already)."""
    os.environ.update(BOOKCHAT_DATA_DIR=str(data_dir), BOOKCHAT_EMBEDDER="local")
    for name in REMOTE:
        os.environ.pop(name, None)
    from bookchat.backends import open_retriever
    from bookchat.config import load_settings
    from bookchat.providers.local_sparse import SparseVec
    from bookchat.rag.extractive_text import terms
    from bookchat.rag.retrieve import rank_by_page
    from bookchat.rag.values import Requirement

    retriever = await open_retriever(load_settings())
    try:
        await retriever.warm()
        # A bench-only look at the page rankings the retriever built (rag/pages.py).
        outlines = await retriever._page_outlines()
        dense_embedder = retriever.dense
        assert dense_embedder is not None, "the bench runs the offline dense leg"
        n = fusion.candidates
        totals = dict.fromkeys(LEGS, 0.0)
        for question in questions:
            requirement = Requirement.of(question.text, terms(question.text))
            lexical = requirement.query(question.text) if requirement else question.text
            sparse = retriever.sparse.encode_query(lexical)
            dense = await dense_embedder.embed_query(question.text)
            bm25 = await retriever.store.search(sparse=sparse, dense=None, limit=n, candidates=n)
            nearest = await retriever.store.search(
                sparse=SparseVec([], []), dense=dense, limit=n, candidates=n
            )
            fused = fuse([(1.0, bm25), (fusion.dense_weight, nearest)], fusion.rrf_k, n)
            final = rank_by_page(fused, outlines, question.text, dense)
            for leg, hits in zip(LEGS, (bm25, nearest, fused, final), strict=True):
                rank = page_rank([str(h.payload.get("file", "")) for h in hits], question.file)
                totals[leg] += 1 / rank if rank else 0.0
        return {leg: total / len(questions) for leg, total in totals.items()}
    finally:
        await retriever.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="folder with one checkout per book")
    parser.add_argument("--data", type=Path, required=True, help="retrieval.py's --data folder")
    parser.add_argument("--books", help="comma list of books (default: all indexed in --data)")
    parser.add_argument("--dense-weight", type=float, default=Fusion.dense_weight)
    parser.add_argument("--rrf-k", type=float, default=Fusion.rrf_k)
    parser.add_argument("--candidates", type=int, default=Fusion.candidates)
    args = parser.parse_args()
    fusion = Fusion(args.dense_weight, args.rrf_k, args.candidates)
    wanted = {b.strip() for b in args.books.split(",")} if args.books else None
    found: list[Book] = [b for b in books(args.corpus, wanted)[0] if (args.data / b.name).is_dir()]
    if not found:
        sys.exit(f"no book indexed in {args.data}: run retrieval.py --data {args.data} first")
    print(f"page MRR@5 per leg ({fusion})")
    print("| book | " + " | ".join(LEGS) + " |")
    print("|---|" + "---|" * len(LEGS))
    for book in found:
        result = asyncio.run(
            book_legs(args.data / book.name, read_questions(book.questions), fusion)
        )
        print(f"| {book.name} | " + " | ".join(f"{result[leg]:.3f}" for leg in LEGS) + " |")


if __name__ == "__main__":
    main()
