# Reports, per target system, which locked package poetry2nix (preferWheels = true) would
# install from a wheel and which it would have to build from an sdist (an sdist needs its build
# system from nixpkgs and sometimes an override). It runs poetry2nix's own wheel selection with
# nixpkgs' lib only, so it works on a machine that cannot fetch nixpkgs:
#   nix eval --impure --json --expr 'import ./nix/wheelcheck.nix { projectDir = ./.; lib = import <nixpkgs.lib>/lib; p2nSrc = <poetry2nix>; }'
# It reads the lock through ./poetry-lock.nix, as flake.nix does (raw = true reads it unfiltered,
# which shows the riscv64 evaluation error that filter exists for).
# The interpreter and glibc are described, not built: python 3.11.10 and glibc 2.40 are what the
# pinned nixpkgs (75e28c0, 2024-10-28) ships.
{
  projectDir,
  lib,
  p2nSrc,
  raw ? false,
  pythonVersion ? "3.11.10",
  glibcVersion ? "2.40",
  systems ? [
    "x86_64-linux"
    "aarch64-linux"
  ],
}:
let
  pyproject-nix = import (p2nSrc + "/vendor/pyproject.nix") { inherit lib; };
  poetryLib = import (p2nSrc + "/lib.nix") {
    inherit lib pyproject-nix;
    pkgs = throw "pkgs not available";
  };
  inherit (pyproject-nix.lib) pypa;
  lockFile =
    if raw then
      projectDir + "/poetry.lock"
    else
      import ./poetry-lock.nix {
        inherit lib pyproject-nix;
        lockFile = projectDir + "/poetry.lock";
      };
  lock = poetryLib.readTOML lockFile;
  pyVersion = pyproject-nix.lib.pep440.parseVersion pythonVersion;
  parts = lib.splitVersion pythonVersion;
  # Runtime and dev packages both: the checks build the dev group too.
  runtime = builtins.filter (p: poetryLib.checkPythonVersions pyVersion p.python-versions) lock.package;
  # Only the attributes poetry2nix's wheel selection reads from an interpreter derivation.
  fakePython = system: {
    passthru = {
      implementation = "cpython";
      sourceVersion = {
        major = builtins.elemAt parts 0;
        minor = builtins.elemAt parts 1;
      };
    };
    stdenv.cc.libc = {
      pname = "glibc";
      version = glibcVersion;
    };
  };
  pick =
    system: p:
    let
      platform = lib.systems.elaborate system;
      wheels = builtins.filter (f: pypa.isWheelFileName f.file) p.files;
      selected = pypa.selectWheels platform (fakePython system) (
        map (f: pypa.parseWheelFileName f.file) wheels
      );
    in
    if selected == [ ] then "sdist" else (builtins.head selected).filename;
  report =
    system:
    let
      picks = map (p: {
        name = p.name;
        file = pick system p;
      }) runtime;
    in
    {
      sdist = map (x: x.name) (builtins.filter (x: x.file == "sdist") picks);
      wheels = builtins.listToAttrs (
        map (x: lib.nameValuePair x.name x.file) (builtins.filter (x: x.file != "sdist") picks)
      );
    };
in
lib.genAttrs systems report
