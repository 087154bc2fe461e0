"""The hash-pinned requirement files that run.sh and test.sh install agree with poetry.lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.MULTILINE)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, tuple[str, set[str]]]:
    lock = tomllib.loads((ROOT / "poetry.lock").read_text())
    return {
        _canonical(p["name"]): (p["version"], set(p.get("groups", []))) for p in lock["package"]
    }


def _pins(kind: str) -> dict[str, str]:
    text = (ROOT / "backend" / "requirements" / f"{kind}.txt").read_text()
    return {_canonical(name): version for name, version in PIN.findall(text)}


@pytest.mark.parametrize(("kind", "groups"), [("runtime", {"main"}), ("dev", {"main", "dev"})])
def test_requirement_files_pin_exactly_the_locked_packages(kind: str, groups: set[str]) -> None:
    locked = _locked()
    wanted = {name: version for name, (version, g) in locked.items() if g & groups}
    assert _pins(kind) == wanted, (
        f"backend/requirements/{kind}.txt is out of date with poetry.lock: "
        "run backend/scripts/export-requirements.sh"
    )


def test_every_pin_carries_a_hash() -> None:
    for kind in ("runtime", "dev"):
        text = (ROOT / "backend" / "requirements" / f"{kind}.txt").read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
        for entry in entries:
            if entry.startswith("#"):
                continue
            assert "--hash=sha256:" in entry, f"{kind}.txt: no hash for {entry.splitlines()[0]}"


def test_lock_covers_every_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["poetry"]
    declared = set(project["dependencies"]) - {"python"}
    for group in project.get("group", {}).values():
        declared |= set(group["dependencies"])
    missing = {_canonical(n) for n in declared} - set(_locked())
    assert not missing, f"poetry.lock lacks {sorted(missing)}: relock (../shared/nix/relock.sh)"
