"""backend/bench/legs.py: each leg's page MRR, and the whole retrieval's equal to eval's."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bookchat.cli import main
from bookchat.rag.eval import read_questions
from bookchat.sample_book import sample_book_path

BENCH = Path(__file__).resolve().parents[2] / "backend" / "bench"
SAMPLE_QUESTIONS = sample_book_path().parent / "questions.tsv"


@pytest.fixture(scope="module")
def legs():
    sys.path.insert(0, str(BENCH))  # the bench scripts import each other as top-level modules
    try:
        yield importlib.import_module("legs")
    finally:
        sys.path.remove(str(BENCH))


def hit(file: str, text: str) -> SimpleNamespace:
    return SimpleNamespace(payload={"file": file, "url": f"https://b.example/{file}", "text": text})


def test_page_rank_counts_distinct_pages_and_stops_at_k(legs) -> None:
    files = ["a.md", "a.md", "b.md", "c.md", "c.md", "d.md", "e.md", "f.md"]
    assert legs.page_rank(files, "a.md") == 1
    assert legs.page_rank(files, "c.md") == 3  # a.md's second passage is not a page
    assert legs.page_rank(files, "e.md") == 5
    assert legs.page_rank(files, "f.md") is None  # sixth page: past k
    assert legs.page_rank(files, "g.md") is None


def test_fusion_weighs_the_dense_leg(legs) -> None:
    lexical = [hit("a.md", "x"), hit("b.md", "y")]
    dense = [hit("b.md", "y"), hit("c.md", "z")]
    # Even weights: b.md is in both legs and wins.
    assert [h.payload["file"] for h in legs.fuse([(1, lexical), (1, dense)], 2, 3)] == [
        "b.md",
        "a.md",
        "c.md",
    ]
    # Dense alone counts: its order, the lexical-only passage last.
    assert [h.payload["file"] for h in legs.fuse([(0, lexical), (1, dense)], 2, 2)] == [
        "b.md",
        "c.md",
    ]


def test_the_whole_retrieval_leg_equals_eval_on_the_sample_book(
    legs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "sample"
    for name, value in {
        "BOOKCHAT_DATA_DIR": str(data),
        "GEMINI_API_KEY": "",
        "QDRANT_URL": "",
        "BOOKCHAT_EMBEDDER": "local",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        main(["eval", str(SAMPLE_QUESTIONS), "-k", "5"])
    assert exited.value.code == 0
    mrr = float(capsys.readouterr().out.split("MRR ")[1].split()[0])
    result = asyncio.run(legs.book_legs(data, read_questions(SAMPLE_QUESTIONS), legs.Fusion()))
    assert set(result) == {"bm25", "dense", "fused", "final"}
    assert round(result["final"], 3) == mrr
    assert all(0.0 < value <= 1.0 for value in result.values())
