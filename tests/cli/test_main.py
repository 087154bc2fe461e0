"""`bookchat` itself: --version, and help that shows examples, variables and the data dir."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bookchat.cli import main

REPO = Path(__file__).resolve().parents[2]


def output(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_version_is_the_packaged_one(capsys: pytest.CaptureFixture[str]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert output(["--version"], capsys) == f"bookchat {project['tool']['poetry']['version']}\n"


def test_the_console_script_answers_version() -> None:
    script = Path(sys.executable).with_name("bookchat")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("bookchat ")


def test_help_shows_examples_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOOKCHAT_DATA_DIR", str(tmp_path / "books"))
    text = output(["--help"], capsys)
    for command in ("bookchat serve", "bookchat ingest path/to/your-book", "bookchat ask"):
        assert f"\n  {command}" in text
    for name in ("GEMINI_API_KEY", "QDRANT_URL", "DATABASE_URL", "BOOKCHAT_DATA_DIR", "PORT"):
        assert name in text
    assert f"now: {tmp_path / 'books'}" in text


def test_serve_help_says_where_data_lives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BOOKCHAT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    text = output(["serve", "--help"], capsys)
    assert "where data lives:" in text
    assert f"now {tmp_path / 'xdg' / 'bookchat'}" in text
    assert "~/.local/share/bookchat" in text
    assert "BOOKCHAT_DATA_DIR" in text


def test_help_works_with_a_broken_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "eighty")
    monkeypatch.setenv("DATABASE_URL", "nonsense")
    assert "where data lives:" in output(["serve", "--help"], capsys)


def test_an_unexpected_failure_prints_a_traceback_without_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bookchat.cli.report as report

    monkeypatch.setenv("GEMINI_API_KEY", "configured-gemini-key-1234")

    def crash(args: object) -> int:
        raise RuntimeError(
            "driver said: postgresql://reader:hunter2@db.internal:5432/book refused; "
            "retry with key=configured-gemini-key-1234\x1b[2J"
        )

    monkeypatch.setattr(report, "run", crash)
    with pytest.raises(SystemExit) as exited:
        main(["report"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("bookchat report: unexpected error (a bug; please report it)\n")
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: driver said" in err
    assert "in crash" in err  # the frames an operator needs are kept
    assert "hunter2" not in err
    assert "configured-gemini-key-1234" not in err
    assert "db.internal:5432" in err  # where it failed stays: this is the owner's terminal
    assert "\x1b" not in err


def test_an_unexpected_failure_with_a_broken_configuration_still_masks_patterns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bookchat.cli.report as report

    monkeypatch.setenv("PORT", "not-a-port")  # Settings() itself fails now

    def crash(args: object) -> int:
        raise ValueError("GET https://host/v1?key=AIzaSyA1234567890abcdefghijklmnopqrstuv")

    monkeypatch.setattr(report, "run", crash)
    with pytest.raises(SystemExit):
        main(["report"])
    err = capsys.readouterr().err
    assert "unexpected error" in err
    assert "AIzaSy" not in err
