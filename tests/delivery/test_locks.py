"""poetry.lock is current for pyproject.toml and gives the Nix build a wheel for every package."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from tests.delivery.tools import REPO

# What flake.nix builds with: CPython 3.11 from the pinned nixpkgs, whose glibc is 2.40.
PYTHON = Version("3.11.10")
GLIBC_MINOR = 40
ARCHES = ("x86_64", "aarch64")


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


@cache
def lock() -> dict[str, Any]:
    return tomllib.loads((REPO / "poetry.lock").read_text(encoding="utf-8"))


def content_hash(data: dict[str, Any]) -> str:
    """Poetry 2's content-hash of a [tool.poetry]-layout pyproject (poetry/packages/locker.py)."""
    poetry = data.get("tool", {}).get("poetry", {})
    relevant = {}
    for key in ("dependencies", "source", "extras", "dev-dependencies", "group"):
        value = poetry.get(key)
        if value is None and key == "group":
            continue
        relevant[key] = value
    return sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def dependencies(group: str) -> dict[str, Any]:
    poetry = pyproject()["tool"]["poetry"]
    if group == "main":
        return {k: v for k, v in poetry["dependencies"].items() if k != "python"}
    return poetry["group"][group]["dependencies"]


def specifier(constraint: Any) -> SpecifierSet:
    """A Poetry version constraint as a PEP 440 specifier set (the forms Poetry documents)."""
    text = (constraint.get("version", "*") if isinstance(constraint, dict) else constraint).strip()
    if text in ("", "*"):
        return SpecifierSet()
    if text[0] in "^~":
        parts = [int(p) for p in text[1:].split(".")]
        if text[0] == "^":
            first = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        else:
            first = 0 if len(parts) == 1 else 1
        upper = [*parts[:first], parts[first] + 1]
        return SpecifierSet(f">={text[1:]},<{'.'.join(map(str, upper))}")
    if re.fullmatch(r"[0-9][0-9a-z.+!-]*", text):
        return SpecifierSet(f"=={text}")
    return SpecifierSet(text)


def locked_for_this_python(name: str) -> list[dict[str, Any]]:
    found = [
        p
        for p in lock()["package"]
        if canonicalize_name(p["name"]) == canonicalize_name(name)
        and PYTHON in SpecifierSet(_python_versions(p["python-versions"]))
    ]
    return found


def _python_versions(text: str) -> str:
    return "" if text.strip() == "*" else text


def test_lock_content_hash_matches_pyproject() -> None:
    # Fails when a dependency was added to pyproject.toml without regenerating poetry.lock
    # (../shared/nix/relock.sh writes it on machines whose mirror lacks PyPI's JSON API).
    assert lock()["metadata"]["content-hash"] == content_hash(pyproject())
    assert lock()["metadata"]["lock-version"].startswith("2.")


@pytest.mark.parametrize("group", ["main", "dev"])
def test_every_dependency_is_locked_at_an_allowed_version(group: str) -> None:
    for name, constraint in dependencies(group).items():
        entries = locked_for_this_python(name)
        assert entries, f"{name} is not in poetry.lock for Python {PYTHON}"
        for entry in entries:
            assert Version(entry["version"]) in specifier(constraint), (name, entry["version"])
            assert group in entry.get("groups", ["main"]), (name, entry.get("groups"))


def supported_tags(arch: str) -> set[Tag]:
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 4, -1)]
    platforms += {
        "x86_64": ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
        "aarch64": ["manylinux2014_aarch64"],
    }[arch]
    version = (PYTHON.major, PYTHON.minor)
    return set(cpython_tags(version, abis=["cp311", "abi3", "none"], platforms=platforms)) | set(
        compatible_tags(version, "cp311", platforms)
    )


def imported_modules(package: Path) -> set[str]:
    """Every absolute import in the package's source, lazy ones in functions included."""
    found: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from google import genai` is google.genai: what names the distribution.
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def providing_distribution(module: str) -> str | None:
    """The installed distribution that holds `module`; None for the standard library."""
    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        return None
    candidates = importlib.metadata.packages_distributions().get(top, [])
    if len(candidates) > 1:  # a namespace package (google.*): the one holding the subpackage
        folder = "/".join(module.split(".")[:2]) + "/"
        candidates = [
            name
            for name in candidates
            if any(str(f).startswith(folder) for f in importlib.metadata.files(name) or ())
        ]
    assert len(candidates) == 1, f"cannot tell which distribution provides {module}: {candidates}"
    return candidates[0]


def test_every_imported_distribution_is_declared() -> None:
    """What bookchat imports itself is a declared dependency, not one that another package
    happens to bring: an upgrade of that package could drop it (httpx and httpcore, say)."""
    declared = {canonicalize_name(name) for name in dependencies("main")}
    undeclared = {
        f"{module} (from {dist})"
        for module in imported_modules(REPO / "backend" / "bookchat")
        if not module.startswith("bookchat")
        and (dist := providing_distribution(module)) is not None
        and canonicalize_name(dist) not in declared
    }
    assert not undeclared, f"imported but not in [tool.poetry.dependencies]: {sorted(undeclared)}"


@pytest.mark.parametrize("arch", ARCHES)
def test_every_locked_package_has_a_wheel_for_the_nix_build(arch: str) -> None:
    # flake.nix builds with preferWheels = true: a package with no matching wheel would be
    # built from its sdist, which needs build systems and overrides nobody has written.
    tags = supported_tags(arch)
    missing = []
    for entry in lock()["package"]:
        if PYTHON not in SpecifierSet(_python_versions(entry["python-versions"])):
            continue
        wheels = [f["file"] for f in entry["files"] if f["file"].endswith(".whl")]
        if not any(parse_wheel_filename(w)[3] & tags for w in wheels):
            missing.append(f"{entry['name']}-{entry['version']}")
    assert missing == [], f"no wheel for CPython 3.11 on {arch} linux: {missing}"


def test_poetry_agrees_that_the_lock_is_current() -> None:
    try:
        import poetry  # noqa: F401
    except ImportError:
        pytest.skip("Poetry is not installed here (test_lock_content_hash_matches_pyproject ran)")
    done = subprocess.run(
        [sys.executable, "-m", "poetry", "check", "--lock", "--no-interaction"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
