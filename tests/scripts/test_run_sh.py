"""backend/scripts/run.sh: what the first run says while it installs, and what it runs.

The scripts run for real in a copy of the repository's script folder, with a stand-in Python
that makes the virtual environment and records every call instead of downloading anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# PYTHON for the scripts: `-c` checks go to the real interpreter; `-m venv DIR` makes DIR
# with this same stand-in as its python and a `bookchat` that records its arguments and
# folder; pip installs are recorded, not run.
STAND_IN = """#!/bin/sh
if [ "$1" = "-c" ]; then exec {python} "$@"; fi
echo "python $*" >> "$CALLS"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"
    cp "$0" "$3/bin/python"
    printf '#!/bin/sh\\necho "bookchat $* (in $(pwd))" >> "$CALLS"\\n' > "$3/bin/bookchat"
    chmod +x "$3/bin/bookchat"
fi
"""


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The files run.sh reads, in a fresh folder with no .venv."""
    root = tmp_path / "clone"
    for part in ("backend/scripts", "backend/requirements"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    python = tmp_path / "python3"
    python.write_text(STAND_IN.format(python=sys.executable), encoding="utf-8")
    python.chmod(0o755)
    return root


def run_sh(clone: Path, *args: str, cwd: Path | None = None) -> tuple[str, list[str]]:
    calls = clone.parent / "calls.log"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "PYTHON": str(clone.parent / "python3"), "CALLS": str(calls)}
    done = subprocess.run(
        ["sh", str(clone / "backend/scripts/run.sh"), *args],
        cwd=cwd or clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stderr, calls.read_text(encoding="utf-8").splitlines()


def test_the_first_run_says_what_it_does_before_it_does_it(clone: Path) -> None:
    stderr, calls = run_sh(clone)
    lines = stderr.splitlines()
    pins = sum(
        1
        for line in (clone / "backend/requirements/runtime.txt").read_text().splitlines()
        if line[:1].isalnum()
    )
    assert lines[0] == f"bookchat: first run: creating the Python environment in {clone}/.venv"
    assert lines[1].startswith(f"bookchat: installing the {pins} locked runtime dependencies")
    assert "about a minute" in lines[1]
    assert lines[2].startswith("bookchat: installed in ")
    assert lines[2].endswith(" s")
    assert calls[0] == "python -m venv .venv"
    assert calls[1].startswith("python -m pip install")
    assert "--require-hashes -r backend/requirements/runtime.txt" in calls[1]
    # bookchat's own bytecode, once, at install: pip compiles only the dependencies'.
    assert "python -m compileall -q -j 0 backend/bookchat" in calls
    assert calls[-1] == f"bookchat serve (in {clone})"


def test_a_later_run_installs_nothing_and_says_nothing(clone: Path) -> None:
    run_sh(clone)
    stderr, calls = run_sh(clone, "--port", "9000")
    assert stderr == ""
    assert calls == [f"bookchat serve --port 9000 (in {clone})"]


def test_after_the_test_command_the_run_command_installs_nothing(clone: Path) -> None:
    # test.sh's environment holds every runtime pin too.
    subprocess.run(
        ["sh", "-c", "deps=dev; . backend/scripts/venv.sh"],
        cwd=clone,
        env={**os.environ, "PYTHON": str(clone.parent / "python3"), "CALLS": "/dev/null"},
        check=True,
        capture_output=True,
    )
    stderr, calls = run_sh(clone)
    assert stderr == ""
    assert calls == [f"bookchat serve (in {clone})"]


def test_a_command_name_runs_that_command_from_the_callers_folder(
    clone: Path, tmp_path: Path
) -> None:
    run_sh(clone)
    elsewhere = tmp_path / "my-work"
    elsewhere.mkdir()
    _, calls = run_sh(clone, "ingest", "my-book", cwd=elsewhere)
    # Relative paths stay relative to where the reader typed the command.
    assert calls == [f"bookchat ingest my-book (in {elsewhere})"]
    _, calls = run_sh(clone, "ask", "How do I start?", cwd=elsewhere)
    assert calls == [f"bookchat ask How do I start? (in {elsewhere})"]
