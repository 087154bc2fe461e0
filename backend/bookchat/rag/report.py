"""The owner's report: what readers asked that the book did not answer well, and what it cites.

Built from stored answers (stores.insights); rendered as text, CSV or JSON by `bookchat report`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag

from bookchat.rag.citations import cited
from bookchat.rag.prompt import is_refusal
from bookchat.redact import escape_controls

if TYPE_CHECKING:
    # Types only: `bookchat --help` builds every subcommand and must not load SQLAlchemy.
    from bookchat.stores.insights import AnsweredQuestion

# Below this cosine the passages behind an answer are only loosely about the question.
DEFAULT_MIN_SIMILARITY = 0.5
EXCERPT_CHARS = 160
# Questions and vote reasons are typed by strangers. A spreadsheet runs a cell that starts with
# one of these (OWASP's CSV injection list), and a terminal obeys escape sequences.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _key(question: str) -> str:
    # One entry per question however it was capitalised or spaced.
    return " ".join(question.lower().split()).rstrip("?!. ")


def refused(answer: AnsweredQuestion) -> bool:
    """Whether the answerer said the book does not cover the question."""
    return is_refusal(answer.answer)


def cited_sources(answer: AnsweredQuestion) -> list[dict[str, Any]]:
    """The sources the answer cites by [n]."""
    return [answer.sources[n - 1] for n in cited(answer.answer, len(answer.sources))]


def best_similarity(answer: AnsweredQuestion) -> float | None:
    """The best similarity among the passages the answer rests on (cited, else all shown)."""
    sources = cited_sources(answer) or answer.sources
    scores = [
        float(s["similarity"]) for s in sources if isinstance(s.get("similarity"), int | float)
    ]
    return max(scores) if scores else None


@dataclass
class Entry:
    """One question (or page) in a section, counted."""

    text: str
    count: int = 0
    last: datetime | None = None
    details: list[str] = field(default_factory=list)
    score: float | None = None
    url: str | None = None

    def seen(self, at: datetime) -> None:
        self.count += 1
        self.last = at if self.last is None or at > self.last else self.last

    def to_dict(self, kind: str, *, reasons: bool = False) -> dict[str, Any]:
        """JSON-ready form; `kind` names the text (question or page)."""
        out: dict[str, Any] = {kind: self.text, "count": self.count}
        if self.url is not None:
            out["url"] = self.url
        if self.score is not None:
            out["best_similarity"] = round(self.score, 4)
        if reasons:
            out["reasons"] = self.details
        if self.last is not None:
            out["last"] = self.last.isoformat()
        return out


def _ranked(entries: Iterable[Entry]) -> list[Entry]:
    # Most frequent first; among equals the most recent first.
    return sorted(entries, key=lambda e: (-e.count, -(e.last.timestamp() if e.last else 0)))


@dataclass
class Report:
    """The four lists, most frequent first, over answers between since and until."""

    since: datetime
    until: datetime
    answers: int
    min_similarity: float
    refused: list[Entry]
    low_similarity: list[Entry]
    thumbed_down: list[Entry]
    most_cited: list[Entry]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "answers": self.answers,
            "min_similarity": self.min_similarity,
            "refused": [e.to_dict("question") for e in self.refused],
            "low_similarity": [e.to_dict("question") for e in self.low_similarity],
            "thumbed_down": [e.to_dict("question", reasons=True) for e in self.thumbed_down],
            "most_cited": [e.to_dict("page") for e in self.most_cited],
        }


def build_report(
    answers: Iterable[AnsweredQuestion],
    *,
    since: datetime,
    until: datetime,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
) -> Report:
    """Count what the stored answers say about the book."""
    refusals: dict[str, Entry] = {}
    loose: dict[str, Entry] = {}
    down: dict[str, Entry] = {}
    pages: dict[str, Entry] = {}
    total = 0
    for answer in answers:
        in_window = answer.answered_at >= since
        key = _key(answer.question)
        if answer.rating == "down":
            entry = down.setdefault(key, Entry(answer.question))
            entry.seen(answer.answered_at)
            if answer.reason:
                entry.details.append(answer.reason)
        if not in_window or answer.status == "failed":
            continue
        total += 1
        if refused(answer):
            refusals.setdefault(key, Entry(answer.question)).seen(answer.answered_at)
            continue
        score = best_similarity(answer)
        if score is not None and score < min_similarity:
            entry = loose.setdefault(key, Entry(answer.question))
            entry.seen(answer.answered_at)
            entry.score = score if entry.score is None else max(entry.score, score)
        for source in cited_sources(answer):
            url = urldefrag(str(source.get("url") or "")).url or str(source.get("file") or "")
            title = str(source.get("title") or source.get("file") or url)
            pages.setdefault(url, Entry(title, url=url)).seen(answer.answered_at)
    return Report(
        since=since,
        until=until,
        answers=total,
        min_similarity=min_similarity,
        refused=_ranked(refusals.values()),
        low_similarity=_ranked(loose.values()),
        thumbed_down=_ranked(down.values()),
        most_cited=_ranked(pages.values()),
    )


def _excerpt(text: str) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def _cell(text: str) -> str:
    # The writer quotes only fields holding its line terminator ("\n"): a bare CR would end the
    # row unquoted and start a forged one. A leading apostrophe shows a formula as text.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def render_text(report: Report, *, limit: int = 20) -> str:
    """The report for a terminal: four short sections, most frequent first."""
    lines = [
        f"bookchat report: {report.answers} answers from {report.since:%Y-%m-%d %H:%M} "
        f"to {report.until:%Y-%m-%d %H:%M} UTC",
    ]

    def section(title: str, entries: list[Entry], describe) -> None:
        lines.append("")
        lines.append(f"{title} ({len(entries)})")
        if not entries:
            lines.append("  (none)")
        for entry in entries[:limit]:
            lines.append(f"  {entry.count:>4}  {describe(entry)}")
        if len(entries) > limit:
            lines.append(f"        … {len(entries) - limit} more (--format csv or json for all)")

    section("Questions the book does not answer", report.refused, lambda e: _excerpt(e.text))
    section(
        f"Answered only from loosely related passages (similarity < {report.min_similarity})",
        report.low_similarity,
        lambda e: f"{_excerpt(e.text)}  (best {e.score:.2f})",
    )

    def thumbs(entry: Entry) -> str:
        reasons = "; ".join(_excerpt(r) for r in entry.details)
        return _excerpt(entry.text) + (f"  — {reasons}" if reasons else "")

    section("Answers readers thumbed down", report.thumbed_down, thumbs)
    section("Pages cited most", report.most_cited, lambda e: f"{e.text}  {e.url}")
    return "\n".join(escape_controls(line) for line in lines) + "\n"


def render_csv(report: Report) -> str:
    """Every entry as one CSV row: section, text, url, count, best_similarity, reasons, last."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "text", "url", "count", "best_similarity", "reasons", "last"])
    sections = [
        ("refused", report.refused),
        ("low_similarity", report.low_similarity),
        ("thumbed_down", report.thumbed_down),
        ("most_cited", report.most_cited),
    ]
    for name, entries in sections:
        for e in entries:
            writer.writerow(
                [
                    name,
                    _cell(e.text),
                    _cell(e.url or ""),
                    e.count,
                    "" if e.score is None else f"{e.score:.4f}",
                    _cell(" | ".join(e.details)),
                    e.last.isoformat() if e.last else "",
                ]
            )
    return out.getvalue()


def render_json(report: Report) -> str:
    """The report as one JSON document."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
