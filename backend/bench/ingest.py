"""Ingestion and retrieval benchmark, offline (embedded Qdrant, BM25 + static embedder).

    python backend/bench/ingest.py [--pages 1000] [--chunks 10000] [--queries 60]

Prints: sample book ingest and its eval (lexical only, and hybrid when the static embedder is
installed); a generated N-page book ingested and re-run with no change; retrieval latency at
M chunks. Targets on a 2-core machine: 1,000 pages < 60 s, no-change re-run < 5 s, retrieval
p50 < 20 ms at 10,000 chunks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_book import COMMON, TECH, VERBS, synthetic_chunks, write_book

from bookchat.backends import make_dense_embedder, make_sparse_encoder, open_vector_store
from bookchat.config import Settings
from bookchat.ingest.indexer import ingest
from bookchat.ingest.model import ChunkedBook
from bookchat.ingest.pipeline import index_docs
from bookchat.rag.retrieve import BookRetriever


def settings_for(data_dir: Path, collection: str) -> Settings:
    return Settings(
        BOOKCHAT_DATA_DIR=data_dir,
        GEMINI_API_KEY="",
        QDRANT_URL="",
        BOOKCHAT_EMBEDDER="local",
        QDRANT_COLLECTION=collection,
    )


async def ingest_docs(retriever: BookRetriever, docs: Path) -> tuple[float, str]:
    started = time.perf_counter()
    report = await index_docs(
        docs, store=retriever.store, dense=retriever.dense, sparse=retriever.sparse
    )
    return time.perf_counter() - started, report.summary()


async def sample_book(data_dir: Path, dense_on: bool) -> None:
    from bookchat.rag.eval import evaluate, read_questions
    from bookchat.sample_book import sample_book_path

    settings = settings_for(data_dir, "bench-sample-" + ("hybrid" if dense_on else "bm25"))
    dense = make_dense_embedder(settings) if dense_on else None
    retriever = BookRetriever(
        store=open_vector_store(settings),
        dense=dense,
        sparse=make_sparse_encoder(),
    )
    try:
        seconds, summary = await ingest_docs(retriever, sample_book_path())
        legs = "+".join(retriever.describe()["legs"])
        print(f"sample book [{legs}]: ingest {seconds:.2f} s ({summary})")
        questions_file = sample_book_path().parent / "questions.tsv"
        if questions_file.exists():
            questions = read_questions(questions_file)
            result = await evaluate(retriever=retriever, questions=questions, k=5)
            print(f"sample book [{legs}]: {result.summary()}")
    finally:
        await retriever.aclose()


async def big_book(data_dir: Path, pages: int) -> None:
    settings = settings_for(data_dir, "bench-book")
    retriever = BookRetriever(
        store=open_vector_store(settings),
        dense=make_dense_embedder(settings),
        sparse=make_sparse_encoder(),
    )
    legs = "+".join(retriever.describe()["legs"])
    try:
        docs = write_book(data_dir / "book", pages=pages)
        seconds, summary = await ingest_docs(retriever, docs)
        print(f"{pages}-page book [{legs}]: first ingest {seconds:.1f} s ({summary})")
        seconds, summary = await ingest_docs(retriever, docs)
        print(f"{pages}-page book [{legs}]: no-change re-run {seconds:.2f} s ({summary})")
    finally:
        await retriever.aclose()
    # What a user waits for: a new `bookchat ingest` process, reopening the embedded folder.
    env = dict(
        os.environ,
        BOOKCHAT_DATA_DIR=str(data_dir),
        QDRANT_COLLECTION="bench-book",
        BOOKCHAT_EMBEDDER="local",
        GEMINI_API_KEY="",
        QDRANT_URL="",
    )
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bookchat",
        "ingest",
        str(docs),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out = (await proc.communicate())[0].decode().strip()
    seconds = time.perf_counter() - started
    print(f"{pages}-page book: `bookchat ingest` no-change re-run {seconds:.2f} s ({out})")


async def latency(data_dir: Path, chunks: int, queries: int, dense_on: bool) -> None:
    import random

    settings = settings_for(data_dir, f"bench-{chunks}-{'hybrid' if dense_on else 'bm25'}")
    retriever = BookRetriever(
        store=open_vector_store(settings),
        dense=make_dense_embedder(settings) if dense_on else None,
        sparse=make_sparse_encoder(),
    )
    legs = "+".join(retriever.describe()["legs"])
    try:
        book = ChunkedBook(chunks=synthetic_chunks(chunks), pages=chunks // 10)
        started = time.perf_counter()
        await ingest(
            chunked_book=book,
            store=retriever.store,
            dense=retriever.dense,
            sparse=retriever.sparse,
        )
        print(f"{chunks} chunks [{legs}]: ingest {time.perf_counter() - started:.1f} s")
        rng = random.Random(3)
        questions = [
            f"how do I {rng.choice(VERBS)} the {rng.choice(TECH)} {rng.choice(COMMON)} "
            f"{rng.choice(TECH)}?"
            for _ in range(queries)
        ]
        await retriever.aclose()
        # A new process: the first query loads the vectors into memory (stores/memory_index.py).
        retriever = BookRetriever(
            store=open_vector_store(settings),
            dense=retriever.dense,
            sparse=retriever.sparse,
        )
        started = time.perf_counter()
        await retriever.retrieve(questions[0])
        first = (time.perf_counter() - started) * 1000
        print(f"{chunks} chunks [{legs}]: first query after opening {first:.0f} ms")
        times = []
        for q in questions:
            started = time.perf_counter()
            await retriever.retrieve(q, k=5)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        print(
            f"{chunks} chunks [{legs}]: retrieve p50 {statistics.median(times):.1f} ms, "
            f"p95 {p95:.1f} ms ({queries} queries)"
        )
    finally:
        await retriever.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description="offline ingestion and retrieval benchmark")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--only", choices=["sample", "book", "latency"])
    args = parser.parse_args()
    dense_available = make_dense_embedder(settings_for(Path("."), "x")) is not None
    with tempfile.TemporaryDirectory(prefix="bookchat-bench-") as tmp:
        data = Path(tmp)
        if args.only in (None, "sample"):
            await sample_book(data, dense_on=False)
            if dense_available:
                await sample_book(data, dense_on=True)
        if args.only in (None, "book"):
            await big_book(data, args.pages)
        if args.only in (None, "latency"):
            await latency(data, args.chunks, args.queries, dense_on=False)
            if dense_available:
                await latency(data, args.chunks, args.queries, dense_on=True)


if __name__ == "__main__":
    asyncio.run(main())
