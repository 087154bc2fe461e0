"""nix/launcher.py, the `bookchat` command of the Nix build and the image, run from a bare
interpreter with no PATH, as in the image (which has no shell)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import fastapi
import pytest

import bookchat
from tests.delivery.tools import REPO

TEMPLATE = REPO / "nix" / "launcher.py"
PLACEHOLDERS = ("@interpreter@", "@app@", "@dependencies@", "PREFIX: list[str] = []")


def bare_interpreter() -> str:
    """The real interpreter binary (not a venv or Nix env wrapper)."""
    for candidate in (getattr(sys, "_base_executable", ""), os.path.realpath(sys.executable)):
        if candidate and Path(candidate).is_file():
            with open(candidate, "rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    return candidate
    pytest.skip("no ELF interpreter to start the launcher with")


def render(tmp_path: Path, name: str, prefix: list[str]) -> Path:
    """The launcher as nix/bookchat.nix writes it, pointing at this environment's packages."""
    text = TEMPLATE.read_text(encoding="utf-8")
    # -I -S: no user or system site-packages, so everything must come through addsitedir.
    values = (
        f"{bare_interpreter()} -IS",
        str(Path(bookchat.__file__).parents[1]),
        str(Path(fastapi.__file__).parents[1]),
        f"PREFIX: list[str] = {json.dumps(prefix)}",
    )
    for placeholder, value in zip(PLACEHOLDERS, values, strict=True):
        text = text.replace(placeholder, value)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def start(launcher: Path, *argv: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/var/empty", "HOME": str(tmp_path), "PORT": "7860"}
    return subprocess.run(
        [str(launcher), *argv], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_each_placeholder_occurs_exactly_once() -> None:
    # builtins.replaceStrings replaces silently: a renamed placeholder would ship unfilled.
    text = TEMPLATE.read_text(encoding="utf-8")
    assert [text.count(p) for p in PLACEHOLDERS] == [1, 1, 1, 1]
    assert text.startswith("#!@interpreter@\n")


def test_launcher_runs_the_cli_without_a_shell(tmp_path: Path) -> None:
    launcher = render(tmp_path, "bookchat", [])
    done = start(launcher, "--help", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "healthcheck" in done.stdout
    assert "release" in done.stdout


def test_launcher_healthcheck_reads_port_and_fails_plainly(tmp_path: Path) -> None:
    launcher = render(tmp_path, "bookchat", [])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = start(launcher, "healthcheck", "--port", str(port), tmp_path=tmp_path)
    assert done.returncode == 1
    assert done.stdout.startswith(f"unhealthy: cannot reach http://127.0.0.1:{port}/api/health")


def test_serve_launcher_prefixes_serve(tmp_path: Path) -> None:
    launcher = render(tmp_path, "bookchat-serve", ["serve"])
    done = start(launcher, "--help", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "usage: bookchat serve" in done.stdout
