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
