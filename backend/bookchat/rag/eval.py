"""Retrieval and answer quality on a question set.

Retrieval: recall@k and mean reciprocal rank of the page that answers each question. Answers
(when an answerer is given): how often it refuses, how often it refuses although that page was
among its passages, and how often it cites that page. Off-topic questions (ones the book does
not answer, with no page): how often the answerer answers them anyway instead of refusing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from bookchat.rag.answerer import Answerer, AnswerRequest
from bookchat.rag.citations import cited
from bookchat.rag.prompt import is_refusal
from bookchat.rag.types import Retriever


class QuestionsError(Exception):
    """The questions file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Question:
    """A question and the page (docs-relative file path) that answers it."""

    text: str
    file: str


@dataclass(slots=True)
class EvalResult:
    """recall@k and MRR over a question set, and the questions that missed."""

    k: int
    questions: int = 0
    hits: int = 0
    reciprocal_ranks: float = 0.0
    misses: list[Question] = field(default_factory=list)
    # For each miss, in the same order, the files of the passages that were retrieved instead.
    missed_instead: list[list[str]] = field(default_factory=list)
    ranks: list[int | None] = field(default_factory=list)
    # Filled when answers are measured too.
    answered: int = 0
    refusals: list[Question] = field(default_factory=list)
    refused_with_page: list[Question] = field(default_factory=list)  # the page was a passage
    cited_page: int = 0  # the answer cites a passage from the expected page
    # Off-topic questions asked, and those answered instead of refused.
    offtopic: int = 0
    offtopic_answered: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.hits / self.questions if self.questions else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.questions if self.questions else 0.0

    @property
    def refusal_rate(self) -> float:
        return len(self.refusals) / self.answered if self.answered else 0.0

    @property
    def cited_page_rate(self) -> float:
        return self.cited_page / self.answered if self.answered else 0.0

    @property
    def offtopic_answered_rate(self) -> float:
        return len(self.offtopic_answered) / self.offtopic if self.offtopic else 0.0

    def summary(self) -> str:
        """One line, e.g. "recall@5 0.900  MRR 0.812  (20 questions)"."""
        line = (
            f"recall@{self.k} {self.recall:.3f}  MRR {self.mrr:.3f}  ({self.questions} questions)"
        )
        if self.answered:
            line += (
                f"  refusals {self.refusal_rate:.3f} ({len(self.refused_with_page)} with the page"
                f" retrieved)  cited page {self.cited_page_rate:.3f}"
            )
        if self.offtopic:
            line += (
                f"  answered off-topic {self.offtopic_answered_rate:.3f}"
                f" ({len(self.offtopic_answered)} of {self.offtopic})"
            )
        return line


def _question_rows(path: Path, columns: tuple[str, ...], header: str) -> list[dict[str, str]]:
    """The rows of a TSV whose `question` is not blank, each column stripped; QuestionsError
    (saying `header`) when the file cannot be read or its header lacks `columns`."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            if reader.fieldnames is None or not set(columns) <= set(reader.fieldnames):
                raise QuestionsError(f"{path}: the first line must be {header}")
            rows = [
                {column: (row.get(column) or "").strip() for column in columns}
                for row in reader
                if (row.get("question") or "").strip()
            ]
    except OSError as exc:
        raise QuestionsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise QuestionsError(f"{path} is not UTF-8 text") from None
    if not rows:
        raise QuestionsError(f"{path} holds no questions")
    return rows


def read_questions(path: Path) -> list[Question]:
    """Rows of a TSV with the header `question<TAB>file`."""
    rows = _question_rows(path, ("question", "file"), "the header question<TAB>file")
    for row in rows:
        if not row["file"]:
            raise QuestionsError(f"{path}: question {row['question']!r} names no file")
    return [Question(text=row["question"], file=row["file"]) for row in rows]


def read_offtopic(path: Path) -> list[str]:
    """The `question` column of a TSV of questions the book does not answer (other columns,
    such as a `kind`, are notes for people)."""
    rows = _question_rows(path, ("question",), "a header naming `question`")
    return [row["question"] for row in rows]


async def evaluate(
    *,
    retriever: Retriever,
    questions: list[Question],
    k: int = 5,
    answerer: Answerer | None = None,
    offtopic: list[str] | None = None,
) -> EvalResult:
    """Rank = position of the first passage from the answering file; MRR counts 0 past k.

    With an answerer, each question is also answered from its k passages, as the chat does,
    and so is each off-topic question: any answer but a refusal counts against it.
    """
    result = EvalResult(k=k)
    for question in questions:
        passages = await retriever.retrieve(question.text, k=k)
        if answerer is not None:
            await _judge_answer(result, answerer, question, passages)
        rank = next((i for i, p in enumerate(passages, 1) if p.file == question.file), None)
        result.questions += 1
        result.ranks.append(rank)
        if rank is None:
            result.misses.append(question)
            result.missed_instead.append([p.file for p in passages])
        else:
            result.hits += 1
            result.reciprocal_ranks += 1 / rank
    if answerer is not None:
        for text in offtopic or []:
            passages = await retriever.retrieve(text, k=k)
            request = AnswerRequest(question=text, passages=passages)
            answer = "".join([piece async for piece in answerer.stream(request)])
            result.offtopic += 1
            if not is_refusal(answer):
                result.offtopic_answered.append(text)
    return result


async def _judge_answer(
    result: EvalResult, answerer: Answerer, question: Question, passages
) -> None:

    request = AnswerRequest(question=question.text, passages=passages)
    answer = "".join([piece async for piece in answerer.stream(request)])
    result.answered += 1
    if is_refusal(answer):
        result.refusals.append(question)
        if any(p.file == question.file for p in passages):
            result.refused_with_page.append(question)
    if any(passages[n - 1].file == question.file for n in cited(answer, len(passages))):
        result.cited_page += 1
