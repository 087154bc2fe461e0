"""`bookchat eval`: recall@k and MRR, on the sample book and on exact hand-made rankings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bookchat.backends import make_sparse_encoder, open_vector_store
from bookchat.cli import main
from bookchat.rag.eval import Question, QuestionsError, evaluate, read_offtopic, read_questions
from bookchat.rag.retrieve import BookRetriever
from bookchat.rag.types import Passage
from bookchat.sample_book import sample_book_path
from tests.books import index_into, make_settings

QUESTIONS_TSV = sample_book_path().parent / "questions.tsv"
RESULT = re.compile(r"recall@(\d+) ([\d.]+)  MRR ([\d.]+)  \((\d+) questions\)")


class RankedRetriever:
    """Returns passages from the given files in order, whatever the question."""

    def __init__(self, ranking: dict[str, list[str]]) -> None:
        self.ranking = ranking

    async def retrieve(self, question: str, k: int = 5) -> list[Passage]:
        return [
            Passage(file=f, title="", heading="", url="", text="", score=0.5)
            for f in self.ranking[question][:k]
        ]

    async def check(self, timeout: float) -> dict[str, object]:
        return {}


async def test_recall_and_mrr_are_computed_from_first_hit_ranks() -> None:
    retriever = RankedRetriever(
        {
            "q1": ["a.md", "b.md"],  # rank 1
            "q2": ["x.md", "b.md", "b.md"],  # rank 2 (first passage of b.md)
            "q3": ["x.md", "y.md", "z.md"],  # miss
            "q4": ["x.md", "y.md", "z.md", "w.md"],  # rank 4
        }
    )
    questions = [
        Question("q1", "a.md"),
        Question("q2", "b.md"),
        Question("q3", "c.md"),
        Question("q4", "w.md"),
    ]
    result = await evaluate(retriever=retriever, questions=questions, k=3)
    assert result.ranks == [1, 2, None, None]  # w.md is past k=3
    assert result.recall == pytest.approx(2 / 4)
    assert result.mrr == pytest.approx((1 + 1 / 2) / 4)
    assert [q.text for q in result.misses] == ["q3", "q4"]
    # What ranked instead of each miss, for profiling.
    assert result.missed_instead == [["x.md", "y.md", "z.md"], ["x.md", "y.md", "z.md"]]
    result = await evaluate(retriever=retriever, questions=questions, k=4)
    assert result.mrr == pytest.approx((1 + 1 / 2 + 1 / 4) / 4)


def test_questions_file_needs_its_header(tmp_path: Path) -> None:
    bad = tmp_path / "q.tsv"
    bad.write_text("What is it?\tintro.md\n", encoding="utf-8")
    with pytest.raises(QuestionsError, match="header"):
        read_questions(bad)
    with pytest.raises(QuestionsError, match="cannot read"):
        read_questions(tmp_path / "missing.tsv")


def test_sample_questions_parse() -> None:
    questions = read_questions(QUESTIONS_TSV)
    assert len(questions) >= 20
    assert all(q.file.endswith((".md", ".mdx")) for q in questions)


def test_eval_command_on_the_sample_book(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "BOOKCHAT_DATA_DIR": str(tmp_path / "data"),
        "GEMINI_API_KEY": "",
        "QDRANT_URL": "",
        "BOOKCHAT_EMBEDDER": "local",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        main(["eval", str(QUESTIONS_TSV), "-k", "5"])
    assert exited.value.code == 0
    captured = capsys.readouterr()
    print(captured.out)  # the numbers, for whoever runs pytest -s
    match = RESULT.search(captured.out)
    assert match, captured.out
    assert "ingested" in captured.err  # the empty embedded collection got the sample book
    assert "legs: bm25+dense" in captured.out
    k, recall, mrr, count = int(match[1]), float(match[2]), float(match[3]), int(match[4])
    assert (k, count) == (5, len(read_questions(QUESTIONS_TSV)))
    assert recall >= 0.6
    assert mrr >= 0.4


async def test_lexical_leg_alone_on_the_sample_book(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    retriever = BookRetriever(
        store=open_vector_store(settings),
        dense=None,
        sparse=make_sparse_encoder(),
    )
    try:
        await index_into(retriever, sample_book_path())
        result = await evaluate(retriever=retriever, questions=read_questions(QUESTIONS_TSV), k=5)
    finally:
        await retriever.aclose()
    print(result.summary())
    assert result.recall >= 0.6
    assert result.mrr >= 0.4


def test_eval_with_a_bad_questions_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOOKCHAT_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as exited:
        main(["eval", str(tmp_path / "nope.tsv")])
    assert exited.value.code == 2
    assert "cannot read" in capsys.readouterr().err


def test_eval_ingests_the_docs_it_is_given(
    tmp_path: Path,
    small_book: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BOOKCHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BOOKCHAT_EMBEDDER", "local")
    monkeypatch.setenv("GEMINI_API_KEY", "")
    monkeypatch.setenv("QDRANT_URL", "")
    questions = tmp_path / "q.tsv"
    questions.write_text(
        "question\tfile\n"
        "Which motor holds its position without feedback?\thardware/motors.md\n"
        "What does the A* planner search?\tsoftware/navigation.md\n",
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as exited:
        main(["eval", str(questions), "-k", "1", "--docs", str(small_book)])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "recall@1 1.000  MRR 1.000  (2 questions)" in out


def test_eval_verbose_lists_what_was_retrieved_instead_of_a_miss(
    tmp_path: Path,
    small_book: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BOOKCHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BOOKCHAT_EMBEDDER", "local")
    monkeypatch.setenv("GEMINI_API_KEY", "")
    monkeypatch.setenv("QDRANT_URL", "")
    questions = tmp_path / "q.tsv"
    questions.write_text(
        "question\tfile\nWhich motor holds its position without feedback?\tnowhere.md\n",
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as exited:
        main(["eval", str(questions), "-k", "1", "--docs", str(small_book), "--verbose"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "miss: Which motor holds its position without feedback?" in out
    assert "  retrieved instead: hardware/motors.md" in out


class ScriptedAnswerer:
    """Answers each question with a fixed text (citing by [n]), as a real answerer streams."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def describe(self) -> dict[str, str]:
        return {"backend": "scripted"}

    async def stream(self, request):  # type: ignore[no-untyped-def]
        for word in self.answers[request.question].split(" "):
            yield word + " "

    async def check(self, timeout: float) -> dict[str, object]:
        return {}

    async def aclose(self) -> None:
        return None


async def test_answers_are_judged_for_refusals_and_the_cited_page() -> None:
    from bookchat.rag.prompt import NO_ANSWER

    retriever = RankedRetriever(
        {"q1": ["x.md", "a.md"], "q2": ["b.md"], "q3": ["x.md"], "q4": ["d.md", "x.md"]}
    )
    answerer = ScriptedAnswerer(
        {
            "q1": "It is so [2].",  # cites a.md, the expected page
            "q2": f"{NO_ANSWER} The passages found do not address it.",  # b.md was retrieved
            "q3": f"{NO_ANSWER}",  # c.md was not retrieved: a fair refusal
            "q4": "Wrong page [2], and `code[1]` is no citation.",
        }
    )
    questions = [Question("q1", "a.md"), Question("q2", "b.md"), Question("q3", "c.md")]
    questions.append(Question("q4", "d.md"))
    result = await evaluate(retriever=retriever, questions=questions, k=5, answerer=answerer)
    assert result.answered == 4
    assert [q.text for q in result.refusals] == ["q2", "q3"]
    assert [q.text for q in result.refused_with_page] == ["q2"]
    assert result.cited_page == 1
    assert result.refusal_rate == pytest.approx(0.5)
    assert result.cited_page_rate == pytest.approx(0.25)
    assert "refusals 0.500 (1 with the page retrieved)  cited page 0.250" in result.summary()


def test_eval_answers_on_a_site_folder(
    tmp_path: Path, small_book: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for name, value in {
        "BOOKCHAT_DATA_DIR": str(tmp_path / "data"),
        "BOOKCHAT_EMBEDDER": "local",
        "GEMINI_API_KEY": "",
        "QDRANT_URL": "",
    }.items():
        monkeypatch.setenv(name, value)
    questions = tmp_path / "q.tsv"
    questions.write_text(
        "question\tfile\n"
        "Which motor holds its position without feedback?\thardware/motors.md\n"
        "How do I bake sourdough bread?\tintro.md\n",
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as exited:
        main(["eval", str(questions), "--answers", "--docs", str(small_book.parent)])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("site https://robots.example.org/handbook/")
    # One fair refusal (the bread question): refusal rate 0.5, the motor answer cites its page.
    assert "refusals 0.500 (1 with the page retrieved)  cited page 0.500" in out
    assert "refused: How do I bake sourdough bread?  (intro.md was retrieved)" in out


def test_the_bench_question_sets_parse_and_hold_thirty_questions_each() -> None:
    import csv

    books = Path(__file__).resolve().parents[2] / "backend" / "bench" / "books"
    with (books / "books.tsv").open(encoding="utf-8", newline="") as handle:
        names = [row["book"] for row in csv.DictReader(handle, delimiter="\t")]
    assert len(names) >= 4
    for name in names:
        questions = read_questions(books / f"{name}.tsv")
        assert len(questions) >= 30, name
        assert len({q.text for q in questions}) == len(questions), name


class FixedRetriever:
    """Returns the same real passage (the sample book's installation page) for any question."""

    async def retrieve(self, question: str, k: int = 5) -> list[Passage]:
        text = (
            "bookchat is a Python package with a command-line program called `bookchat`. It "
            "needs Python 3.11 or newer."
        )
        return [
            Passage(file="install.md", title="Installing", heading="", url="", text=text, score=0.3)
        ]

    async def check(self, timeout: float) -> dict[str, object]:
        return {}


async def test_off_topic_questions_count_when_answered_instead_of_refused() -> None:
    from bookchat.rag.extractive import OfflineAnswerer

    result = await evaluate(
        retriever=FixedRetriever(),
        questions=[Question("Which Python version do I need?", "install.md")],
        answerer=OfflineAnswerer(),
        offtopic=["Which Windows version does my printer need?", "Which Python version do I need?"],
    )
    assert result.offtopic == 2
    # The printer question is refused; the second, which the passage does answer, is counted.
    assert result.offtopic_answered == ["Which Python version do I need?"]
    assert "answered off-topic 0.500 (1 of 2)" in result.summary()
    # In-scope questions are judged as before, apart from the off-topic ones.
    assert result.answered == 1
    assert result.cited_page == 1
    # Without an answerer there is nothing to judge.
    plain = await evaluate(
        retriever=FixedRetriever(),
        questions=[Question("Which Python version do I need?", "install.md")],
        offtopic=["Which Windows version does my printer need?"],
    )
    assert plain.offtopic == 0
    assert "off-topic" not in plain.summary()


def test_off_topic_files_need_a_question_column(tmp_path: Path) -> None:
    good = tmp_path / "off.tsv"
    good.write_text("question\tkind\nHow do I bake bread?\tfar\n\t\n", encoding="utf-8")
    assert read_offtopic(good) == ["How do I bake bread?"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("How do I bake bread?\n", encoding="utf-8")
    with pytest.raises(QuestionsError, match="header"):
        read_offtopic(bad)
    empty = tmp_path / "empty.tsv"
    empty.write_text("question\n", encoding="utf-8")
    with pytest.raises(QuestionsError, match="no questions"):
        read_offtopic(empty)


def test_the_bench_s_off_topic_files_parse() -> None:
    folder = Path(__file__).resolve().parents[2] / "backend" / "bench" / "books" / "offtopic"
    for name in ("sample", "jest", "redux", "react-native", "prettier", "pnpm"):
        assert len(read_offtopic(folder / f"{name}.tsv")) >= 15
    for name in ("metro", "testing-library", "cypress", "detox", "ionic"):
        assert read_offtopic(folder / f"{name}.tsv")


def test_offtopic_needs_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOOKCHAT_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as exited:
        main(["eval", str(QUESTIONS_TSV), "--offtopic", str(QUESTIONS_TSV)])
    assert exited.value.code == 2
    assert "--offtopic needs --answers" in capsys.readouterr().err
