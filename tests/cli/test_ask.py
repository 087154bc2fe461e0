"""`bookchat ask QUESTION`: one answer from the indexed book in the terminal, with sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bookchat.cli import main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    for name, value in {
        "BOOKCHAT_DATA_DIR": str(data),
        "GEMINI_API_KEY": "",
        "QDRANT_URL": "",
        "BOOKCHAT_EMBEDDER": "local",
        # Never read by ask: a bad value must not stop it.
        "DATABASE_URL": "not-a-url",
    }.items():
        monkeypatch.setenv(name, value)
    return data


def ask(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(["ask", *argv])
    return int(exited.value.code or 0)


def test_an_empty_index_answers_from_the_sample_book(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ask("How do I install bookchat?") == 0
    out = capsys.readouterr().out
    answer, _, sources = out.partition("\nsources:\n")
    assert "[1]" in answer
    assert "pip install" in answer
    first = sources.splitlines()[0]
    assert first.startswith("[1] ")
    # The sample book's pages are served by `bookchat serve` itself (HOST, PORT).
    assert "http://127.0.0.1:8000/docs/getting-started/installation" in first


def test_it_answers_from_the_book_that_was_ingested(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["ingest", str(small_book)])
    capsys.readouterr()
    assert ask("How do I calibrate the motors?") == 0
    out = capsys.readouterr().out
    assert "https://robots.example.org/" in out.partition("\nsources:\n")[2]
    assert "127.0.0.1:8000" not in out


def test_a_refusal_lists_no_sources_and_uncited_passages_are_related_reading(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ask("How do I bake sourdough bread?") == 0
    out = capsys.readouterr().out
    assert out.startswith("The book does not seem to cover this.")
    assert "sources:" not in out
    assert "related reading:" not in out
    assert ask("How do I install bookchat?") == 0
    out = capsys.readouterr().out
    cited = set(re.findall(r"\[(\d+)\]", out.partition("\nsources:\n")[0]))
    listed = re.findall(r"^\[(\d+)\] ", out.partition("\nsources:\n")[2], re.MULTILINE)
    # Every passage once: the cited ones under sources, the rest under related reading.
    assert sorted(listed, key=int) == [str(n) for n in range(1, len(listed) + 1)]
    sources, _, related = out.partition("\nsources:\n")[2].partition("related reading:\n")
    assert set(re.findall(r"^\[(\d+)\] ", sources, re.MULTILINE)) == cited
    assert cited.isdisjoint(re.findall(r"^\[(\d+)\] ", related, re.MULTILINE))


def test_an_empty_question_is_bad_usage(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ask("   ") == 2
    assert capsys.readouterr().err == "bookchat ask: the question is empty\n"


def test_a_locked_index_is_one_line_saying_what_to_do(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qdrant_client import QdrantClient

    (env / "qdrant").mkdir(parents=True)
    holder = QdrantClient(path=str(env / "qdrant"))
    try:
        assert ask("Anyone there?") == 1
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("bookchat ask: The embedded Qdrant in ")
    assert "Stop that process first" in err
