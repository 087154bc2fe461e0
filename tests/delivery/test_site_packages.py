"""nix/bookchat.nix evaluated with stand-ins that follow the pinned nixpkgs rules (which cannot be
fetched here): the merged site-packages the launcher adds must hold every runtime module's `out`.

The stand-ins model exactly three rules, each from the pinned sources:
- mkDerivation records each propagated input as `getDev input` (stdenv/generic/make-derivation.nix,
  `propagatedDependencies`), and `lib.getDev` picks an output with `outputSpecified = true`;
- python's requiredPythonModules walks `propagatedBuildInputs` as recorded
  (interpreters/python/python-packages-base.nix);
- buildEnv links `[ drv ]` for an entry with `outputSpecified`, else its `meta.outputsToInstall`,
  plus `drv.${o}` for each of `extraOutputsToInstall` (build-support/buildenv, `chosenOutputs`).
poetry2nix gives grpcio `outputs = [ "out" "dev" ]` (overrides/default.nix, the grpcio entry), and
nixpkgs adds a `dist` output to every wheel-built package.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from typing import Any

from tests.delivery.tools import REPO, need_tool

STUBS = r"""
let
  getDev = d: if !(d ? outputSpecified) || !d.outputSpecified then d.dev or d.out or d else d;
  requiredPythonModules = drvs:
    let modules = builtins.filter (d: d ? pythonModule && d.pythonModule == py) drvs;
    in unique ([ py ] ++ modules ++ builtins.concatLists (map (m: m.requiredPythonModules)
      modules));
  unique = builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
  py = {
    type = "derivation";
    name = "python3";
    outPath = "/nix/store/py-python3";
    sitePackages = "lib/python3.11/site-packages";
    interpreter = "/nix/store/py-python3/bin/python3.11";
    pkgs = { inherit requiredPythonModules; };
  };
  # A buildPythonPackage result: `outputs`, one attribute per output, propagated inputs as
  # mkDerivation records them.
  pkg = name: outputs: deps:
    let
      recorded = map getDev deps;
      has = o: builtins.elem o outputs;
      base = {
        type = "derivation";
        inherit name outputs;
        pythonModule = py;
        propagatedBuildInputs = recorded;
        requiredPythonModules = requiredPythonModules recorded;
        meta.outputsToInstall =
          [ (builtins.head (builtins.filter has ([ "bin" "out" ] ++ outputs))) ];
      } // perOutput;
      at = o: base // { outPath = "/nix/store/p-${name}-${o}"; outputName = o; };
      perOutput = builtins.listToAttrs
        (map (o: { name = o; value = at o // { outputSpecified = true; }; }) outputs);
    in at (builtins.head outputs);
  grpcio = pkg "grpcio" [ "out" "dev" "dist" ] [ ];
  protobuf = pkg "protobuf" [ "out" "dist" ] [ ];
  qdrant-client = pkg "qdrant-client" [ "out" "dist" ] [ grpcio protobuf ];
  fastapi = pkg "fastapi" [ "out" "dist" ] [ ];
  app = pkg "bookchat-app" [ "out" "dist" ] [ fastapi qdrant-client ] // {
    version = "0";
    passthru.python = py;
  };
  pkgs = {
    lib = { platforms.linux = [ ]; };
    python311 = py;
    buildEnv = args: {
      inherit (args) name pathsToLink;
      outPath = "/nix/store/env-${args.name}";
      linked = builtins.concatMap (d:
        (if (!(d ? outputSpecified) || !d.outputSpecified)
            && d.meta.outputsToInstall or null != null
         then map (o: d.${o}) d.meta.outputsToInstall else [ d ])
        ++ builtins.filter (p: p != null)
          (map (o: d.${o} or null) (args.extraOutputsToInstall or [ ]))
      ) args.paths;
    };
    writeTextFile = args: args // { outPath = "/nix/store/w-${args.name}"; };
    symlinkJoin = args: args // { outPath = "/nix/store/j-${args.name}"; };
  };
  poetry2nix = {
    outPath = "/var/empty";
    lib.mkPoetry2Nix = _: {
      overrides.withDefaults = f: f;
      mkPoetryApplication = _: app;
    };
  };
  built = import REPO/nix/bookchat.nix { inherit pkgs poetry2nix; src = REPO; };
  env = built.sitePackages;
in {
  linked = map (d: d.outPath) env.linked;
  pathsToLink = env.pathsToLink;
  modules = map (d: d.name)
    (builtins.filter (d: d != py) (requiredPythonModules app.propagatedBuildInputs));
  launcher = (builtins.head built.bookchat.paths).text;
}
"""


@cache
def evaluated() -> dict[str, Any]:
    nix_instantiate = need_tool("nix-instantiate", "apt-get install nix-bin")
    done = subprocess.run(
        [
            nix_instantiate,
            "--eval",
            "--strict",
            "--json",
            "--expr",
            STUBS.replace("REPO", str(REPO)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_grpcio_arrives_as_its_dev_output_the_way_mkderivation_records_it() -> None:
    # The premise of the fix: without extraOutputsToInstall, grpcio would be linked as `dev`.
    modules = evaluated()["modules"]
    assert set(modules) == {"grpcio", "protobuf", "qdrant-client", "fastapi"}


def test_every_runtime_module_links_its_out_output() -> None:
    linked = set(evaluated()["linked"])
    for name in ("grpcio", "protobuf", "qdrant-client", "fastapi"):
        assert f"/nix/store/p-{name}-out" in linked, name
    # The wheels' `dist` output (the .whl files) is never part of the environment.
    assert not any(path.endswith("-dist") for path in linked)


def test_only_site_packages_are_linked_and_the_launcher_adds_them() -> None:
    result = evaluated()
    assert result["pathsToLink"] == ["/lib/python3.11/site-packages"]
    launcher = result["launcher"]
    env = "/nix/store/env-bookchat-site-packages/lib/python3.11/site-packages"
    assert f'DEPENDENCIES = "{env}"' in launcher
    assert 'APP = "/nix/store/p-bookchat-app-out/lib/python3.11/site-packages"' in launcher
    assert launcher.startswith("#!/nix/store/py-python3/bin/python3.11\n")
