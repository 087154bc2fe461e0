"""flake.lock is a genuine, complete lock of flake.nix's inputs; the Nix files parse."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from typing import Any

import pytest

from tests.delivery.tools import REPO, need_tool

NIX_INSTALL = "apt-get install nix-bin"
# The nixpkgs poetry2nix's own lock pins (its CI last passed on it, 2024-10-28).
POETRY2NIX_NIXPKGS = "75e28c029ef2605f9841e0baa335d70065fe7ae2"


@cache
def lock() -> dict[str, Any]:
    return json.loads((REPO / "flake.lock").read_text(encoding="utf-8"))


def node(name: str) -> dict[str, Any]:
    return lock()["nodes"][name]


def resolve(reference: str | list[str]) -> str:
    """The node a lock input points at: a node name, or a `follows` path from the root."""
    if isinstance(reference, str):
        return reference
    current = lock()["root"]
    for step in reference:
        current = resolve(node(current)["inputs"][step])
    return current


def test_lock_shape() -> None:
    data = lock()
    assert data["version"] == 7
    assert set(node(data["root"])["inputs"]) == {"nixpkgs", "poetry2nix", "nix2container"}


def test_every_input_is_locked_to_a_revision_with_a_nar_hash() -> None:
    # With rev, narHash and lastModified everywhere, Nix never has to fetch to read the lock.
    for name, entry in lock()["nodes"].items():
        if name == lock()["root"]:
            continue
        locked = entry["locked"]
        assert locked["type"] == "github", name
        assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"]), name
        assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", locked["narHash"]), name
        assert isinstance(locked["lastModified"], int), name
        assert {"owner", "repo"} <= set(entry["original"]), name
        for reference in entry.get("inputs", {}).values():
            assert resolve(reference) in lock()["nodes"], (name, reference)


def test_nixpkgs_is_the_revision_poetry2nix_was_tested_with() -> None:
    root = node(lock()["root"])["inputs"]
    nixpkgs = node(resolve(root["nixpkgs"]))
    assert nixpkgs["locked"]["rev"] == POETRY2NIX_NIXPKGS
    assert nixpkgs["original"]["rev"] == POETRY2NIX_NIXPKGS
    assert f"github:NixOS/nixpkgs/{POETRY2NIX_NIXPKGS}" in (REPO / "flake.nix").read_text()
    # poetry2nix builds with that same nixpkgs ...
    assert resolve(["poetry2nix", "nixpkgs"]) == resolve(root["nixpkgs"])
    # ... while nix2container keeps its own, newer one (its Go code needs Go >= 1.24).
    own = resolve(["nix2container", "nixpkgs"])
    assert own != resolve(root["nixpkgs"])
    assert node(own)["locked"]["lastModified"] > nixpkgs["locked"]["lastModified"]


@pytest.mark.parametrize(
    "path", ["flake.nix", *sorted(p.relative_to(REPO).as_posix() for p in REPO.glob("nix/*.nix"))]
)
def test_nix_files_parse(path: str) -> None:
    nix_instantiate = need_tool("nix-instantiate", NIX_INSTALL)
    done = subprocess.run(
        [nix_instantiate, "--parse", str(REPO / path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_nix_accepts_the_lock_without_changing_it() -> None:
    nix = need_tool("nix", NIX_INSTALL)
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("a flake is read from its git tree; this checkout has none")
    env = {
        **os.environ,
        # No network, no binary cache, no build users: reading the lock needs none of them.
        "NIX_CONFIG": "experimental-features = nix-command flakes\nsubstituters =\n"
        "build-users-group =\n",
    }
    done = subprocess.run(
        [nix, "flake", "metadata", "--json", "--no-update-lock-file", str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    metadata = json.loads(done.stdout)
    assert metadata["locks"]["nodes"] == lock()["nodes"]
