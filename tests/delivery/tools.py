"""External tools the delivery tests run: found on PATH or beside the interpreter."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def find_tool(name: str) -> str | None:
    """The tool's path: the venv's bin (where pip puts console scripts) first, then PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def need_tool(name: str, install: str) -> str:
    """The tool's path; without it skip, or fail when BOOKCHAT_TEST_REQUIRE_ALL is set (CI)."""
    path = find_tool(name)
    if path is not None:
        return path
    reason = f"{name} is not installed ({install})"
    if os.environ.get("BOOKCHAT_TEST_REQUIRE_ALL"):
        pytest.fail(f"{reason}, and BOOKCHAT_TEST_REQUIRE_ALL is set")
    pytest.skip(reason)
