"""The baked index: nix/index.nix's build script, run as written against the venv's `bookchat`,
makes the same bytes twice; served read-only as BOOKCHAT_INDEX_DIR beside a separate writable
BOOKCHAT_DATA_DIR, it answers, stores the conversation, and /api/health says which book it is.
nix/mk-image.nix (which book, the labels from the commit) is evaluated with stand-ins."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

import bookchat
from bookchat.config import Settings
from bookchat.sample_book import sample_book_path
from bookchat.stores.snapshot import snapshot_is_fresh
from tests.cli.test_serve import serve_env, stop
from tests.delivery.tools import REPO, need_tool
from tests.network import free_port

# The few nixpkgs lib functions the two files use, as nixpkgs defines them.
LIB = r"""
  lib = rec {
    escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";
    escapeShellArgs = l: builtins.concatStringsSep " " (map escapeShellArg l);
    optionals = c: l: if c then l else [ ];
    optionalAttrs = c: a: if c then a else { };
  };
"""

INDEX_STUBS = (
    "let\n"
    + LIB
    + r"""
  pkgs = {
    inherit lib;
    runCommand = name: env: script: { inherit name env script; };
  };
  drv = import REPO/nix/index.nix {
    inherit pkgs;
    bookchat = BOOKCHAT;
    book = BOOK;
    revision = "0123456789abcdef";
  };
in { inherit (drv) name env script; }
"""
)


def nix_eval(expr: str) -> Any:
    nix_instantiate = need_tool("nix-instantiate", "apt-get install nix-bin")
    done = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "--expr", expr],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fake_bookchat(root: Path) -> Path:
    """A `bookchat` store path whose bin/bookchat is the venv's console script."""
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "bookchat").symlink_to(Path(sys.executable).with_name("bookchat"))
    return root


@cache
def derivation(bookchat_dir: str, book: str) -> dict[str, Any]:
    expr = (
        INDEX_STUBS.replace("REPO", str(REPO))
        .replace("BOOKCHAT", json.dumps(bookchat_dir))
        .replace("BOOK", json.dumps(book))
    )
    return nix_eval(expr)


def build_index(tmp: Path) -> Path:
    """Run nix/index.nix's script as the Nix builder would: its env, $out, $TMPDIR, bash."""
    tmp.mkdir(parents=True)
    package = fake_bookchat(tmp / "bookchat")
    drv = derivation(str(package), str(sample_book_path().parent))
    out = tmp / "out"
    build = tmp / "build"
    build.mkdir()
    # The builder's environment: the derivation's attributes and what Nix sets, nothing else
    # from this process (no QDRANT_URL, no GEMINI_API_KEY, no data dir).
    env = {**drv["env"], "out": str(out), "TMPDIR": str(build), "PATH": os.environ["PATH"]}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", drv["script"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_derivation_runs_bookchat_ingest_offline_into_out(tmp_path: Path) -> None:
    package = fake_bookchat(tmp_path / "bookchat")
    drv = derivation(str(package), "/books/site")
    assert (
        f"{package}/bin/bookchat ingest /books/site '--source-revision' '0123456789abcdef'"
        in (drv["script"])
    )
    assert 'BOOKCHAT_INDEX_DIR="$out"' in drv["script"]
    assert drv["env"]["BOOKCHAT_EMBEDDER"] == "local"
    assert drv["env"]["QDRANT_URL"] == ""
    assert drv["env"]["GEMINI_API_KEY"] == ""


@pytest.mark.slow
def test_the_build_script_makes_the_same_index_twice(tmp_path: Path) -> None:
    first = build_index(tmp_path / "one")
    second = build_index(tmp_path / "two")
    assert (first / "meta.json").is_file()
    assert not (first / ".lock").exists()
    manifest = json.loads((first / "bookchat-index.json").read_text())
    assert manifest["chunks"] > 20
    assert manifest["site_url"] == "http://localhost:3000/"
    assert manifest["source_revision"] == "0123456789abcdef"
    # Same book and same code, same bytes: what makes the image's digest reproducible.
    assert digest(first) == digest(second)


def make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.mark.slow
def test_a_read_only_baked_index_is_served_beside_a_writable_data_dir(tmp_path: Path) -> None:
    index = build_index(tmp_path / "build")
    assert snapshot_is_fresh(index, Settings().qdrant_collection)
    make_read_only(index)
    before = digest(index)
    data = tmp_path / "data"
    port = free_port()
    script = Path(sys.executable).with_name("bookchat")
    # The owner's view of health: it names the prebuilt index's path.
    env = serve_env(data, BOOKCHAT_INDEX_DIR=str(index), BOOKCHAT_HEALTH_DETAIL="full")
    process = subprocess.Popen(
        [str(script), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        probe = subprocess.run(
            [str(script), "probe", f"http://127.0.0.1:{port}", "--question", "How do I ingest?"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10).json()
    finally:
        stderr = stop(process)
        index.chmod(0o755)
    assert probe.returncode == 0, probe.stdout + stderr[-3000:]
    assert "index baked" in probe.stdout
    assert health["status"] == "healthy"
    served = health["index"]
    assert served["source"] == "baked"
    assert served["site_url"] == "http://localhost:3000/"
    assert served["source_revision"] == "0123456789abcdef"
    assert served["chunks"] == health["services"]["vector_store"]["points"]
    assert served["prebuilt"] == str(index)
    # `bookchat ingest` left a read snapshot: the index is read in place, with no copy.
    assert "copy_seconds" not in served
    assert not (data / "served-index").exists()
    # Nothing was written to the prebuilt index (no lock, no SQLite side files); the
    # conversations are in the data dir.
    assert digest(index) == before
    assert (data / "bookchat.sqlite3").is_file()
    # The sample book was not ingested on top: the baked book is the whole index.
    assert (
        health["services"]["vector_store"]["points"]
        == json.loads((index / "bookchat-index.json").read_text())["chunks"]
    )


MK_IMAGE_STUBS = (
    "let\n"
    + LIB
    + r"""
  drv = name: { inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  pkgs = {
    inherit lib;
    runCommand = name: env: script: drv name // { inherit env script; };
    buildEnv = args: drv args.name;
    cacert = drv "nss-cacert";
  };
  nix2container = {
    buildLayer = args: { layer = args; };
    buildImage = args: args;
  };
  bookchat = drv "bookchat" // {
    passthru = {
      app = drv "bookchat-app" // { version = "0.1.0"; meta.description = "bookchat"; };
      py = drv "python3" // { sitePackages = "lib/python3.11/site-packages"; };
      sitePackages = drv "bookchat-site-packages";
    };
  };
  mkImage = import REPO/nix/mk-image.nix {
    inherit pkgs nix2container bookchat;
    self = { rev = "c0ffee"; lastModifiedDate = "20261130123456"; };
  };
  show = image: {
    inherit (image) created;
    labels = image.config.Labels;
    script = image.index.script;
  };
in {
  sample = show (mkImage { });
  own = show (mkImage {
    book = REPO/tests/delivery;
    siteUrl = "https://docs.example.org";
    revision = "feed";
    sourceUrl = "https://github.com/example/bookchat";
  });
}
"""
)


def test_mk_image_bakes_the_sample_book_by_default_with_labels_from_the_commit() -> None:
    result = nix_eval(MK_IMAGE_STUBS.replace("REPO", str(REPO)))
    sample, own = result["sample"], result["own"]
    app = "/nix/store/00000000000000000000000000000000-bookchat-app"
    # Root-relative, as at run time: the sample book's citations open bookchat's own pages.
    sample_book = f"{app}/lib/python3.11/site-packages/bookchat/sample_book"
    assert f"ingest {sample_book} '--site-url' ''\n" in sample["script"]
    assert sample["created"] == "2026-11-30T12:34:56Z"
    assert sample["labels"] == {
        "org.opencontainers.image.title": "bookchat",
        "org.opencontainers.image.description": "bookchat",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.revision": "c0ffee",
        "org.opencontainers.image.version": "0.1.0",
        "org.opencontainers.image.created": "2026-11-30T12:34:56Z",
    }
    # A book owner's folder is copied under a fixed name (the digest must not depend on it).
    assert (
        "-book '--site-url' 'https://docs.example.org' '--source-revision' 'feed'" in own["script"]
    )
    assert own["labels"]["org.opencontainers.image.source"] == "https://github.com/example/bookchat"


def test_the_sample_book_the_image_bakes_is_in_the_package() -> None:
    # mk-image.nix names it inside the installed package: it must ship there.
    site = Path(bookchat.__file__).parent / "sample_book"
    assert (site / "docusaurus.config.js").is_file()
    assert (site / "docs").is_dir()
    assert shutil.which("bash"), "the build script test runs bash"
