"""`bookchat report` on both stores, after real questions and votes through the HTTP API."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bookchat.cli import main
from bookchat.cli.report import parse_since
from bookchat.config import Settings
from tests.api.conftest import app_client, widget_events
from tests.books import base_env

INSTALL = "How do I install bookchat?"
OFF_TOPIC = "What is the capital of France?"


def report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["report", *argv])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


async def ask(client: Any, question: str) -> list[dict[str, Any]]:
    response = await client.post("/api/chat", json={"message": question})
    assert response.status_code == 200
    return widget_events(response.text)


async def test_report_lists_refusals_thumbs_down_and_cited_pages(
    tmp_path: Path, ingested_qdrant: Path, database_url, monkeypatch, capsys
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(ingested_qdrant, data_dir / "qdrant")
    async with app_client(Settings(**base_env(data_dir, database_url))) as (_, client):
        answered = await ask(client, INSTALL)
        assert answered[-1]["citations"], "the install question is answered from the book"
        for question in (OFF_TOPIC, "what is the capital of france", OFF_TOPIC):
            refused = await ask(client, question)
            assert refused[-1]["citations"] == [], refused[-1]
        vote = await client.post(
            "/api/feedback",
            json={
                "message_id": answered[-1]["message_id"],
                "rating": "down",
                "reason": "no word on virtual environments",
            },
        )
        assert vote.status_code == 200

    for name, value in base_env(data_dir, database_url).items():
        monkeypatch.setenv(name, str(value))
    code, out, err = await asyncio.to_thread(report, capsys, "--format", "json")
    assert code == 0, err
    body = json.loads(out)
    assert body["answers"] == 4
    # The same question asked three ways is one entry, counted three times.
    assert [(e["question"], e["count"]) for e in body["refused"]] == [(OFF_TOPIC, 3)]
    assert body["thumbed_down"] == [
        {
            "question": INSTALL,
            "count": 1,
            "reasons": ["no word on virtual environments"],
            "last": body["thumbed_down"][0]["last"],
        }
    ]
    cited = body["most_cited"]
    assert cited
    # The sample book's pages are served by bookchat itself, at the client's origin.
    assert all(e["url"].startswith("http://bookchat.test/docs/") for e in cited)
    assert all("#" not in e["url"] for e in cited)  # pages, not their sections
    assert sum(e["count"] for e in cited) == len(answered[-1]["citations"])

    # Every answered question falls under a threshold above any similarity.
    code, out, _ = await asyncio.to_thread(
        report, capsys, "--format", "json", "--min-similarity", "1.01"
    )
    loose = json.loads(out)["low_similarity"]
    assert [e["question"] for e in loose] == [INSTALL]
    assert 0 < loose[0]["best_similarity"] <= 1

    code, out, _ = await asyncio.to_thread(report, capsys)
    assert code == 0
    assert "Questions the book does not answer (1)" in out
    assert f"     3  {OFF_TOPIC}" in out
    assert "Answers readers thumbed down (1)" in out
    assert "no word on virtual environments" in out
    assert "Pages cited most (" in out

    code, out, _ = await asyncio.to_thread(report, capsys, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["section"] for r in rows} >= {"refused", "thumbed_down", "most_cited"}
    assert next(r for r in rows if r["section"] == "refused")["count"] == "3"

    # Nothing was asked after tomorrow.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    code, out, _ = await asyncio.to_thread(report, capsys, "--since", tomorrow, "--format", "json")
    empty = json.loads(out)
    assert (empty["answers"], empty["refused"], empty["most_cited"]) == (0, [], [])


def test_an_empty_store_gives_an_empty_report(tmp_path, monkeypatch, capsys) -> None:
    for name, value in base_env(tmp_path / "data").items():
        monkeypatch.setenv(name, str(value))
    code, out, _ = report(capsys)
    assert code == 0
    assert out.startswith("bookchat report: 0 answers from ")
    assert out.count("(none)") == 4


def test_since_values(capsys) -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("24h", now=now) == now - timedelta(hours=24)
    assert parse_since("30m", now=now) == now - timedelta(minutes=30)
    assert parse_since("2w", now=now) == now - timedelta(weeks=2)
    assert parse_since("2026-11-01", now=now) == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(SystemExit) as exited:
        main(["report", "--since", "last tuesday"])
    assert exited.value.code == 2
    assert "not a period or a date" in capsys.readouterr().err


def test_an_unreachable_store_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    env = base_env(tmp_path / "data", "postgresql://reader:s3cret-pw@127.0.0.1:9/books")
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    code, out, err = report(capsys)
    assert code == 1
    assert out == ""
    assert err.startswith("bookchat report: cannot read the conversation store: ")
    assert "s3cret-pw" not in err
    assert len(err.strip().splitlines()) == 1
