"""Retrieval quality on a question set: recall@k and mean reciprocal rank."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

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
    ranks: list[int | None] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.hits / self.questions if self.questions else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.questions if self.questions else 0.0

    def summary(self) -> str:
        """One line, e.g. "recall@5 0.900  MRR 0.812  (20 questions)"."""
        return (
            f"recall@{self.k} {self.recall:.3f}  MRR {self.mrr:.3f}  ({self.questions} questions)"
        )


def read_questions(path: Path) -> list[Question]:
    """Rows of a TSV with the header `question<TAB>file`."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            if reader.fieldnames is None or not {"question", "file"} <= set(reader.fieldnames):
                raise QuestionsError(f"{path}: the first line must be the header question<TAB>file")
            rows = [
                Question(text=row["question"].strip(), file=row["file"].strip())
                for row in reader
                if (row.get("question") or "").strip()
            ]
    except OSError as exc:
        raise QuestionsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise QuestionsError(f"{path} is not UTF-8 text") from None
    if not rows:
        raise QuestionsError(f"{path} holds no questions")
    for row in rows:
        if not row.file:
            raise QuestionsError(f"{path}: question {row.text!r} names no file")
    return rows


async def evaluate(*, retriever: Retriever, questions: list[Question], k: int = 5) -> EvalResult:
    """Rank = position of the first passage from the answering file; MRR counts 0 past k."""
    result = EvalResult(k=k)
    for question in questions:
        passages = await retriever.retrieve(question.text, k=k)
        rank = next((i for i, p in enumerate(passages, 1) if p.file == question.file), None)
        result.questions += 1
        result.ranks.append(rank)
        if rank is None:
            result.misses.append(question)
        else:
            result.hits += 1
            result.reciprocal_ranks += 1 / rank
    return result
