# The application, built by poetry2nix from pyproject.toml + poetry.lock, and the two small
# launchers everything else runs (`bookchat`, and `bookchat-serve` for `nix run`).
{
  pkgs,
  poetry2nix,
  src,
}:
let
  inherit (pkgs) lib;
  p2n = poetry2nix.lib.mkPoetry2Nix { inherit pkgs; };
  # pyproject.nix as vendored in the pinned poetry2nix: the lock filter must use the same tag
  # parser and CPU table that poetry2nix's wheel selection uses.
  pyproject-nix = import "${poetry2nix}/vendor/pyproject.nix" { inherit lib; };

  # The interpreter the team develops and tests on (the venv is 3.11); pyproject allows 3.11-3.13.
  python = pkgs.python311;

  common = {
    projectDir = src;
    inherit python;
    # Wheels, not sdists: every locked runtime and dev package has a manylinux wheel for
    # x86_64 and aarch64 (nix/wheelcheck.nix lists them), so nothing needs a Rust or C build,
    # and poetry2nix's per-version source overrides (cargo hashes for cryptography, ruff, ...)
    # stop mattering for packages released after poetry2nix stopped being maintained.
    preferWheels = true;
    poetrylock = import ./poetry-lock.nix {
      inherit lib pyproject-nix;
      lockFile = src + "/poetry.lock";
    };
    overrides = p2n.overrides.withDefaults (
      _final: prev: {
        # playwright's wheel bundles a node binary linked against libstdc++; autoPatchelf must
        # find it. Dev group only (browser tests), never in the image.
        playwright = prev.playwright.overridePythonAttrs (old: {
          buildInputs = (old.buildInputs or [ ]) ++ [ pkgs.stdenv.cc.cc.lib ];
        });
      }
    );
  };

  app = p2n.mkPoetryApplication (
    common
    // {
      # Only what the wheel is built from, so editing tests, workflows or hf/ (the release
      # commit rewrites hf/Dockerfile) does not change the application's store path or the image.
      src = lib.fileset.toSource {
        root = src;
        fileset = lib.fileset.unions [
          (src + "/pyproject.toml")
          (src + "/README.md")
          (src + "/backend/bookchat")
        ];
      };
      # pytest runs as its own check (checks.pytest) against the installed package.
      doCheck = false;
      # The app's own bin/ scripts are never run (the launchers below are), and the wrappers
      # wrapPythonPrograms would write are bash scripts: they would put bash in the closure.
      dontWrapPythonPrograms = true;
      # Bytecode that is never checked against its source: the store is immutable, so a
      # start neither compiles (cold start is about twice as slow without .pyc) nor hashes
      # sources. checks.bytecode verifies every module `serve` loads has usable bytecode.
      postFixup = ''
        python -m compileall -q -f -o 0 --invalidation-mode unchecked-hash \
          "$out/${python.sitePackages}/bookchat"
      '';
      # Fails the build, not the first request, when a runtime import is missing.
      pythonImportsCheck = [
        "bookchat.cli"
        "bookchat.app"
      ];
    }
  );

  # poetry2nix's interpreter: pkgs.python311 with the locked packages as its package set.
  py = app.passthru.python;

  # Site-packages of every runtime dependency, merged, without the interpreter wrappers that
  # python.withPackages adds (those are shell scripts and would pull bash into the image).
  # It is built from the app's own dependency list so the image's dependency layer holds exactly
  # the store paths the app references.
  runtimeModules = builtins.filter (p: p != py) (
    py.pkgs.requiredPythonModules app.propagatedBuildInputs
  );
  sitePackages = pkgs.buildEnv {
    name = "bookchat-site-packages";
    paths = runtimeModules;
    pathsToLink = [ "/${py.sitePackages}" ];
    # Link every module's `out`, where its site-packages are. mkDerivation records each
    # propagated input as `getDev input`, so a package with a dev output (poetry2nix gives
    # grpcio `outputs = [ "out" "dev" ]`, wheels included) reaches this list as its dev
    # output, and buildEnv links only the output an entry names: without this, `grpc` is
    # missing and qdrant-client cannot be imported. python.withPackages passes the same.
    extraOutputsToInstall = [ "out" ];
  };

  # The launcher's sys.path additions, in order; checks.imports imports through exactly these.
  siteDirs = [
    "${app}/${py.sitePackages}"
    "${sitePackages}/${py.sitePackages}"
  ];

  # A Python script the kernel starts from its shebang: no shell, no wrapper (./launcher.py,
  # whose placeholders are filled in here; tests/delivery runs the same file).
  launcher =
    name: prefix:
    pkgs.writeTextFile {
      inherit name;
      destination = "/bin/${name}";
      executable = true;
      text =
        builtins.replaceStrings
          [
            "@interpreter@"
            "@app@"
            "@dependencies@"
            "PREFIX: list[str] = []"
          ]
          [
            py.interpreter
            (builtins.elemAt siteDirs 0)
            (builtins.elemAt siteDirs 1)
            "PREFIX: list[str] = ${builtins.toJSON prefix}"
          ]
          (builtins.readFile ./launcher.py);
    };

  bookchat = pkgs.symlinkJoin {
    name = "bookchat-${app.version}";
    paths = [
      (launcher "bookchat" [ ])
      # `nix run` starts the server on the embedded defaults (SQLite, embedded Qdrant,
      # offline embedder and answerer under ~/.local/share/bookchat): nothing to configure first.
      (launcher "bookchat-serve" [ "serve" ])
    ];
    passthru = {
      inherit
        app
        sitePackages
        siteDirs
        py
        ;
    };
    meta = {
      description = "Retrieval-augmented chat backend for a Docusaurus book";
      mainProgram = "bookchat-serve";
      platforms = lib.platforms.linux;
    };
  };
in
{
  inherit
    p2n
    common
    app
    py
    bookchat
    sitePackages
    siteDirs
    ;
}
