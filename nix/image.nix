# The OCI image the Hugging Face Space runs (hf/Dockerfile is a FROM of it by digest).
# Layers, from least to most often changed, so a code change re-pushes one small layer:
#   1. Python, the locked dependencies (site-packages) and CA certificates;
#   2. /etc/passwd, /etc/group, /home/user, /tmp and /etc/ssl: a few hundred bytes;
#   3. (buildImage's own layer) the application and its launcher.
{
  pkgs,
  nix2container,
  bookchat,
}:
let
  inherit (bookchat.passthru) app sitePackages py;
  uid = 1000;
  gid = 1000;
  home = "/home/user";
  dataDir = "${home}/data";
  caBundle = "${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt";

  dependencies = nix2container.buildLayer {
    deps = [
      py
      sitePackages
      pkgs.cacert
    ];
  };

  # Hugging Face runs Space containers as uid 1000; a passwd entry makes that uid a named user
  # with a home (Python's getpass/pathlib.home and libpq's ~/.pgpass lookup read it). root is
  # listed because tools that inspect the image expect it. The shell field points nowhere on
  # purpose: there is no shell in the image.
  accounts = pkgs.runCommand "bookchat-accounts" { } ''
    mkdir -p $out/etc $out/tmp $out${dataDir}
    cat > $out/etc/passwd <<EOF
    root:x:0:0:root:/root:/noshell
    user:x:${toString uid}:${toString gid}:bookchat:${home}:/noshell
    EOF
    cat > $out/etc/group <<EOF
    root:x:0:
    user:x:${toString gid}:
    EOF
  '';

  # /etc/ssl/certs/ca-certificates.crt for libraries that look at the conventional path instead
  # of SSL_CERT_FILE (libpq with sslrootcert=system, gRPC).
  certificates = pkgs.buildEnv {
    name = "bookchat-certificates";
    paths = [ pkgs.cacert ];
    pathsToLink = [ "/etc/ssl" ];
  };

  system = nix2container.buildLayer {
    copyToRoot = [
      accounts
      certificates
    ];
    layers = [ dependencies ];
    perms = [
      {
        # Sticky and world-writable like any /tmp: tempfile, SQLite journals and uvicorn use it.
        path = accounts;
        regex = "/tmp$";
        mode = "1777";
      }
      {
        # HOME and the data directory belong to the runtime user: the app writes its SQLite
        # database and embedded Qdrant there, and the store (everything else) is read-only.
        path = accounts;
        regex = "${home}(/data)?$";
        mode = "0755";
        inherit uid gid;
        uname = "user";
        gname = "user";
      }
    ];
  };
in
nix2container.buildImage {
  name = "bookchat";
  # A content-derived tag (nix2container's default) so two builds never fight over `latest`;
  # the release workflow pushes by this tag and pins the registry's digest.
  layers = [
    dependencies
    system
  ];
  config = {
    # Numeric, so the runtime never has to resolve a name; the passwd layer still names it.
    User = "${toString uid}:${toString gid}";
    WorkingDir = home;
    Cmd = [
      "${bookchat}/bin/bookchat"
      "serve"
      # Spaces route to app_port (7860, hf/README.md) and reach the container from outside.
      "--host"
      "0.0.0.0"
      "--port"
      "7860"
    ];
    ExposedPorts = {
      "7860/tcp" = { };
    };
    Env = [
      # Only the launcher: exec-form HEALTHCHECK ["bookchat", "healthcheck"] resolves here.
      "PATH=${bookchat}/bin"
      "HOME=${home}"
      # The app's default is ~/.local/share/bookchat; make the location explicit and writable by uid 1000.
      "BOOKCHAT_DATA_DIR=${dataDir}"
      # Read by `bookchat healthcheck` (and `serve` without --port), so both agree on 7860.
      "PORT=7860"
      # Python's ssl, httpx and OpenSSL-based libraries all honour these.
      "SSL_CERT_FILE=${caBundle}"
      "SSL_CERT_DIR=${pkgs.cacert}/etc/ssl/certs"
      # Log lines reach the Space's log viewer as they happen, not when a buffer fills.
      "PYTHONUNBUFFERED=1"
      # Bytecode is compiled at build time and the store is read-only: never try to write .pyc.
      "PYTHONDONTWRITEBYTECODE=1"
      # glibc's built-in UTF-8 locale; no locale archive is needed.
      "LANG=C.UTF-8"
    ];
    Labels = {
      "org.opencontainers.image.title" = "bookchat";
      "org.opencontainers.image.description" = app.meta.description or "bookchat";
      "org.opencontainers.image.licenses" = "Apache-2.0";
    };
  };
}
