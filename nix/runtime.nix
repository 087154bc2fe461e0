# What the image runs, and with which environment: nix/image.nix writes it into the OCI config,
# and checks.smoke (nix/checks.nix) runs exactly this in the build sandbox.
{
  pkgs,
  bookchat,
  # The baked book's index (nix/index.nix), served when QDRANT_URL is unset.
  index,
}:
let
  home = "/home/user";
  caBundle = "${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt";
in
{
  inherit home;
  dataDir = "${home}/data";
  port = 7860;
  cmd = [
    "${bookchat}/bin/bookchat"
    "serve"
    # Spaces route to app_port (7860, hf/README.md) and reach the container from outside.
    "--host"
    "0.0.0.0"
    "--port"
    "7860"
  ];
  env = {
    # Only the launcher: exec-form HEALTHCHECK ["bookchat", "healthcheck"] resolves here.
    PATH = "${bookchat}/bin";
    HOME = home;
    # Explicit, so the image never depends on the app's default; writable by uid 1000.
    # Conversations (SQLite) and the served copy of the index live here: a Space with
    # persistent storage sets BOOKCHAT_DATA_DIR=/data to keep them across restarts.
    BOOKCHAT_DATA_DIR = "${home}/data";
    # The baked book, read-only in the store (served from a copy under the data dir).
    BOOKCHAT_INDEX_DIR = "${index}";
    # Read by `bookchat healthcheck` (and `serve` without --port), so both agree on 7860.
    PORT = "7860";
    # Python's ssl, httpx and OpenSSL-based libraries all honour these.
    SSL_CERT_FILE = caBundle;
    SSL_CERT_DIR = "${pkgs.cacert}/etc/ssl/certs";
    # Log lines reach the Space's log viewer as they happen, not when a buffer fills.
    PYTHONUNBUFFERED = "1";
    # Bytecode is compiled at build time and the store is read-only: never try to write .pyc.
    PYTHONDONTWRITEBYTECODE = "1";
    # glibc's built-in UTF-8 locale; no locale archive is needed.
    LANG = "C.UTF-8";
  };
}
