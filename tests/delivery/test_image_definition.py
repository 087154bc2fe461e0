"""nix/image.nix evaluated with stand-ins for nixpkgs and nix2container (which cannot be fetched
here): the OCI config, the layers and the permissions the image is built with."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from typing import Any

from tests.delivery.tools import REPO, need_tool

STUBS = """
let
  drv = name: { inherit name; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
  pkgs = {
    runCommand = name: env: script: drv name // { inherit script; };
    buildEnv = args: drv args.name // { inherit (args) paths pathsToLink; };
    cacert = drv "nss-cacert";
  };
  nix2container = {
    buildLayer = args: { layer = args; };
    buildImage = args: args;
  };
  bookchat = drv "bookchat" // {
    passthru = {
      app = drv "bookchat-app" // { meta.description = "bookchat"; };
      sitePackages = drv "bookchat-site-packages";
      py = drv "python3";
    };
  };
  index = drv "bookchat-index";
  runtime = import REPO/nix/runtime.nix { inherit pkgs bookchat index; };
  image = import REPO/nix/image.nix {
    inherit pkgs nix2container bookchat runtime index;
    labels."org.opencontainers.image.revision" = "0123abc";
    created = "2026-11-30T12:00:00Z";
  };
  names = map (d: d.name);
in {
  inherit (image) name config created;
  layers = map (l: {
    deps = names (l.layer.deps or [ ]);
    copyToRoot = names (l.layer.copyToRoot or [ ]);
    layers = builtins.length (l.layer.layers or [ ]);
    perms = map (p: p // { path = p.path.name; }) (l.layer.perms or [ ]);
  }) image.layers;
  accounts = (builtins.head (builtins.elemAt image.layers 2).layer.copyToRoot).script;
}
"""


@cache
def image() -> dict[str, Any]:
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


def env() -> dict[str, str]:
    return dict(item.split("=", 1) for item in image()["config"]["Env"])


def test_runs_as_uid_1000_serving_7860_on_all_interfaces() -> None:
    config = image()["config"]
    assert config["User"] == "1000:1000"
    assert config["ExposedPorts"] == {"7860/tcp": {}}
    assert config["Cmd"][1:] == ["serve", "--host", "0.0.0.0", "--port", "7860"]
    assert config["Cmd"][0].endswith("-bookchat/bin/bookchat")
    assert env()["PORT"] == "7860"


def test_environment_points_at_writable_home_data_and_certificates() -> None:
    variables = env()
    assert variables["HOME"] == "/home/user"
    assert image()["config"]["WorkingDir"] == "/home/user"
    assert variables["BOOKCHAT_DATA_DIR"] == "/home/user/data"
    assert re.fullmatch(
        r"/nix/store/\w+-nss-cacert/etc/ssl/certs/ca-bundle\.crt", variables["SSL_CERT_FILE"]
    )
    # `bookchat` (the exec-form HEALTHCHECK) resolves on PATH, and nothing else is on it.
    assert variables["PATH"].endswith("-bookchat/bin")
    assert ":" not in variables["PATH"]
    assert variables["PYTHONDONTWRITEBYTECODE"] == "1"


def test_dependencies_book_and_application_are_separate_layers() -> None:
    dependencies, book, system = image()["layers"]
    assert dependencies["deps"] == ["python3", "bookchat-site-packages", "nss-cacert"]
    # The baked index changes with the book, not with the code.
    assert book["deps"] == ["bookchat-index"]
    # The small layer skips what the other two have; the app itself is in none of them:
    # it goes in buildImage's own layer, the only one a code change re-pushes.
    assert system["layers"] == 2
    assert system["copyToRoot"] == ["bookchat-accounts", "bookchat-certificates"]
    assert "bookchat" not in dependencies["deps"] + system["copyToRoot"]


def test_passwd_and_group_name_uid_and_gid_1000() -> None:
    script = image()["accounts"]
    assert "user:x:1000:1000:bookchat:/home/user:/noshell" in script
    assert "user:x:1000:" in script
    assert "mkdir -p $out/etc $out/tmp $out/home/user/data" in script


def test_tmp_is_sticky_and_home_belongs_to_uid_1000() -> None:
    _, _, system = image()["layers"]
    store = "/nix/store/00000000000000000000000000000000-bookchat-accounts"

    def applied(path: str) -> dict[str, Any]:
        # nix2container applies every rule whose regex matches the store path, in order.
        result: dict[str, Any] = {"uid": 0, "gid": 0, "mode": None}
        for rule in system["perms"]:
            if rule["path"] == "bookchat-accounts" and re.search(rule["regex"], store + path):
                result = {
                    "uid": rule.get("uid", 0),
                    "gid": rule.get("gid", 0),
                    "mode": rule["mode"],
                }
        return result

    assert applied("/tmp") == {"uid": 0, "gid": 0, "mode": "1777"}
    assert applied("/home/user") == {"uid": 1000, "gid": 1000, "mode": "0755"}
    assert applied("/home/user/data") == {"uid": 1000, "gid": 1000, "mode": "0755"}
    assert applied("/etc/passwd") == {"uid": 0, "gid": 0, "mode": None}
    assert applied("/home") == {"uid": 0, "gid": 0, "mode": None}


def test_the_baked_index_is_served_and_the_data_dir_is_explicit() -> None:
    variables = env()
    assert (
        variables["BOOKCHAT_INDEX_DIR"]
        == "/nix/store/00000000000000000000000000000000-bookchat-index"
    )
    # Explicit, so the image never depends on the app's default data dir.
    assert variables["BOOKCHAT_DATA_DIR"] == "/home/user/data"
    assert "QDRANT_URL" not in variables


def test_labels_and_creation_time_come_from_the_commit() -> None:
    config = image()["config"]
    assert config["Labels"]["org.opencontainers.image.revision"] == "0123abc"
    assert config["Labels"]["org.opencontainers.image.title"] == "bookchat"
    assert image()["created"] == "2026-11-30T12:00:00Z"
