# The OCI image the Hugging Face Space runs (hf/Dockerfile is a FROM of it by digest).
# Layers, from least to most often changed, so a code change re-pushes one small layer:
#   1. Python, the locked dependencies (site-packages) and CA certificates;
#   2. the baked book's index (changes with the book, not with the code);
#   3. /etc/passwd, /etc/group, /home/user, /tmp and /etc/ssl: a few hundred bytes;
#   4. (buildImage's own layer) the application and its launcher.
{
  pkgs,
  nix2container,
  bookchat,
  # nix/runtime.nix: the command and environment (checks.smoke runs the same).
  runtime,
  # nix/index.nix: the baked book.
  index,
  # OCI annotations from the commit (source, revision, version, created).
  labels ? { },
  # The commit's time, so that the image's date is real and two builds still agree.
  created ? "1970-01-01T00:00:01Z",
}:
let
  inherit (bookchat.passthru) app sitePackages py;
  uid = 1000;
  gid = 1000;
  inherit (runtime) home dataDir;

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

  # Its own layer: the index references no other store path, and a code change leaves it be.
  book = nix2container.buildLayer { deps = [ index ]; };

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
    layers = [
      dependencies
      book
    ];
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
  inherit created;
  # A content-derived tag (nix2container's default) so two builds never fight over `latest`;
  # the release workflow pushes by this tag and pins the registry's digest.
  layers = [
    dependencies
    book
    system
  ];
  config = {
    # Numeric, so the runtime never has to resolve a name; the passwd layer still names it.
    User = "${toString uid}:${toString gid}";
    WorkingDir = home;
    Cmd = runtime.cmd;
    ExposedPorts = {
      "${toString runtime.port}/tcp" = { };
    };
    Env = builtins.attrValues (builtins.mapAttrs (name: value: "${name}=${value}") runtime.env);
    Labels = {
      "org.opencontainers.image.title" = "bookchat";
      "org.opencontainers.image.description" = app.meta.description or "bookchat";
      "org.opencontainers.image.licenses" = "Apache-2.0";
    }
    // labels;
  };
}
