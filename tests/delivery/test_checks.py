"""nix/checks.nix's smoke, imports and closure checks, evaluated with stand-ins for nixpkgs and run
as the Nix builder would run them (their env, $out, $TMPDIR, bash with -eu -o pipefail), against
this venv: a launcher rendered from nix/launcher.py, and a baked index built by nix/index.nix's
own script. What differs from the sandbox is only where the packages come from."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import fastapi
import pytest

import bookchat
from tests.delivery.test_index_build import LIB, build_index, make_read_only, nix_eval
from tests.delivery.test_launcher import PLACEHOLDERS, TEMPLATE, bare_interpreter
from tests.delivery.tools import REPO
from tests.network import free_port

STUBS = (
    "let\n"
    + LIB
    + r"""
  lib' = lib // {
    mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (builtins.attrNames attrs);
    splitString = sep: s: builtins.filter builtins.isString (builtins.split sep s);
    concatStringsSep = builtins.concatStringsSep;
  };
  pkgs = {
    lib = lib';
    runCommand = name: env: script: { inherit name env script; };
    closureInfo = _: "@closure@";
    cacert = { outPath = "/nonexistent/cacert"; };
  };
  bookchat = { outPath = PACKAGE; };
  base = import REPO/nix/runtime.nix { inherit pkgs bookchat; index = INDEX; };
  # Any free port instead of 7860: this machine is shared.
  runtime = base // {
    port = FREEPORT;
    cmd = map (a: if a == "7860" then toString FREEPORT else a) base.cmd;
    env = base.env // { PORT = toString FREEPORT; };
  };
  built = {
    inherit bookchat;
    app = throw "not used by these checks";
    py = { interpreter = INTERPRETER; sitePackages = "lib/python3.11/site-packages"; };
    siteDirs = SITEDIRS;
    sitePackages = "/nonexistent/site-packages";
  };
  checks = import REPO/nix/checks.nix {
    inherit pkgs built;
    src = REPO;
    devEnv = null;
    image = { inherit runtime; index = INDEX; };
  };
  show = c: { inherit (c) name env script; };
in { smoke = show checks.smoke; imports = show checks.imports; closure = show checks.closure; }
"""
)


def interpreter() -> str:
    # -S: no site-packages but what the launcher (or the check) adds, as in the Nix store.
    return f"{bare_interpreter()} -S"


def site_dirs() -> list[str]:
    return [str(Path(bookchat.__file__).parents[1]), str(Path(fastapi.__file__).parents[1])]


def package(root: Path) -> Path:
    """A `bookchat` store path: bin/bookchat is nix/launcher.py filled in as bookchat.nix does."""
    (root / "bin").mkdir(parents=True)
    text = TEMPLATE.read_text(encoding="utf-8")
    values = (interpreter(), *site_dirs(), "PREFIX: list[str] = []")
    for placeholder, value in zip(PLACEHOLDERS, values, strict=True):
        text = text.replace(placeholder, value)
    launcher = root / "bin" / "bookchat"
    launcher.write_text(text, encoding="utf-8")
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return root


def checks(pkg: Path, index: Path, *, dirs: list[str] | None = None) -> dict[str, Any]:
    expr = (
        STUBS.replace("REPO", str(REPO))
        .replace("PACKAGE", json.dumps(str(pkg)))
        .replace("INDEX", json.dumps(str(index)))
        .replace("INTERPRETER", json.dumps(interpreter()))
        .replace("SITEDIRS", "[ " + " ".join(json.dumps(d) for d in (dirs or site_dirs())) + " ]")
        .replace("FREEPORT", str(free_port()))
    )
    return nix_eval(expr)


def run(check: dict[str, Any], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    build = tmp / f"build-{check['name']}"
    build.mkdir(parents=True)
    environment = {
        **check["env"],
        **env,
        "out": str(tmp / f"out-{check['name']}"),
        "TMPDIR": str(build),
        "PATH": os.environ["PATH"],
    }
    return subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", check["script"]],
        env=environment,
        cwd=build,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_smoke_runs_the_image_command_with_a_read_only_baked_index(tmp_path: Path) -> None:
    index = build_index(tmp_path / "index")
    make_read_only(index)
    try:
        smoke = checks(package(tmp_path / "bookchat"), index)["smoke"]
        done = run(smoke, tmp_path)
    finally:
        index.chmod(0o755)
    assert done.returncode == 0, done.stdout + done.stderr
    probe = (tmp_path / "out-bookchat-smoke" / "probe.txt").read_text()
    assert probe.startswith("ok: http://127.0.0.1:")
    assert "index baked" in probe
    assert "stored 2 messages" in probe
    # The command is the image's (nix/runtime.nix) on loopback: serve --host 127.0.0.1.
    assert "'serve' '--host' '127.0.0.1' '--port'" in smoke["script"]
    assert "env -i " in smoke["script"]


def test_imports_names_each_module_the_launcher_dirs_lack(tmp_path: Path) -> None:
    pkg = package(tmp_path / "bookchat")
    good = run(checks(pkg, tmp_path)["imports"], tmp_path / "good")
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.strip().endswith("modules import")
    # The merged site-packages without grpcio, as buildEnv linked it before the fix.
    merged = tmp_path / "site-packages"
    merged.mkdir()
    for entry in Path(site_dirs()[1]).iterdir():
        if not entry.name.startswith("grpc"):
            (merged / entry.name).symlink_to(entry)
    bad = run(
        checks(pkg, tmp_path, dirs=[site_dirs()[0], str(merged)])["imports"], tmp_path / "bad"
    )
    assert bad.returncode == 1
    assert "qdrant_client: ModuleNotFoundError: No module named 'grpc'" in bad.stdout
    assert "grpc: ModuleNotFoundError: No module named 'grpc'" in bad.stdout
    # Without the dependencies at all, the first import that fails says which module.
    none = run(checks(pkg, tmp_path, dirs=site_dirs()[:1])["imports"], tmp_path / "none")
    assert none.returncode == 1
    assert "bookchat.backends: ModuleNotFoundError: No module named" in none.stderr


def fake_store(tmp: Path, pkg: Path) -> Path:
    """A closureInfo output: store-paths listing the package, a bash and a Python using it."""
    bash = tmp / "store" / "bash-5.2"
    (bash / "bin").mkdir(parents=True)
    (bash / "bin" / "bash").write_text("")
    python = tmp / "store" / "python3-3.11"
    (python / "bin").mkdir(parents=True)
    (python / "bin" / "python3.11-config").write_text(f"#!{bash}/bin/bash\n")
    closure = tmp / "closure"
    closure.mkdir()
    (closure / "store-paths").write_text(f"{pkg}\n{bash}\n{python}\n")
    return closure


def test_closure_lists_shells_with_what_brings_them_and_passes(tmp_path: Path) -> None:
    pkg = package(tmp_path / "bookchat")
    closure = fake_store(tmp_path, pkg)
    done = run(checks(pkg, tmp_path)["closure"], tmp_path, closure=str(closure))
    assert done.returncode == 0, done.stdout + done.stderr
    shells = (tmp_path / "out-bookchat-closure" / "shells.txt").read_text()
    assert f"{tmp_path}/store/bash-5.2/bin/bash, referenced by:" in shells
    assert f"  {tmp_path}/store/python3-3.11\n" in shells
    # The package itself does not reference bash.
    assert str(tmp_path / "bookchat") not in shells


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("sh", "", "a shell on the image's PATH"),
        ("helper", "#!/bin/sh\necho hi\n", "does not start Python"),
    ],
)
def test_closure_fails_on_a_shell_or_a_shell_script_on_path(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    pkg = package(tmp_path / "bookchat")
    (pkg / "bin" / name).write_text(text)
    closure = fake_store(tmp_path, pkg)
    done = run(checks(pkg, tmp_path)["closure"], tmp_path, closure=str(closure))
    assert done.returncode == 1
    assert message in done.stdout
