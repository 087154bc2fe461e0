"""flake.nix's outputs, evaluated with stand-ins for its three inputs (nixpkgs cannot be fetched
here): every package, check and the mkImage function are wired to the files they name, and the
default image serves the sample book's index with labels from the commit."""

from __future__ import annotations

from functools import cache
from typing import Any

from tests.delivery.test_index_build import LIB, nix_eval
from tests.delivery.test_site_packages import STUBS as PACKAGE_STUBS
from tests.delivery.tools import REPO

# The package set of test_site_packages (python, the poetry2nix stand-in), plus what the flake,
# the image and the checks call; every result is an attribute set with a store-like outPath.
FLAKE = r"""
  lib' = pkgs.lib // lib // {
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    mapAttrs = builtins.mapAttrs;
    mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (builtins.attrNames attrs);
    splitString = sep: s: builtins.filter builtins.isString (builtins.split sep s);
    concatStringsSep = builtins.concatStringsSep;
  };
  pkgs' = pkgs // {
    lib = lib';
    runCommand = name: env: script: {
      inherit name env script;
      outPath = "/nix/store/rc-${name}";
    };
    closureInfo = _: "/nix/store/closure-info";
    cacert = { outPath = "/nix/store/nss-cacert"; };
    mkShell = args: args;
  };
  nix2container-pkg = {
    buildLayer = args: { layer = args; };
    buildImage = args: args // { outPath = "/nix/store/image-${args.name}.json"; };
  };
  perSystem = {
    nix2container = nix2container-pkg;
  };
  inputs = {
    self = { rev = "c0ffee"; lastModifiedDate = "20261130123456"; };
    nixpkgs = {
      lib = lib';
      legacyPackages = { x86_64-linux = pkgs'; aarch64-linux = pkgs'; };
    };
    inherit poetry2nix;
    nix2container = {
      packages = { x86_64-linux = perSystem; aarch64-linux = perSystem; };
      inputs.nixpkgs.legacyPackages.x86_64-linux.poetry = { };
      inputs.nixpkgs.legacyPackages.aarch64-linux.poetry = { };
    };
  };
  out = (import REPO/flake.nix).outputs inputs;
  x86 = out.packages.x86_64-linux;
in {
  packages = builtins.attrNames x86;
  checks = builtins.attrNames out.checks.x86_64-linux;
  systems = builtins.attrNames out.packages;
  env = x86.image.config.Env;
  labels = x86.image.config.Labels;
  created = x86.image.created;
  index = x86.index.outPath;
  indexScript = x86.index.script;
  ownScript = (out.lib.x86_64-linux.mkImage { siteUrl = "https://docs.example.org"; }).index.script;
  smoke = out.checks.x86_64-linux.smoke.script;
  program = out.apps.x86_64-linux.default.program;
}
"""


@cache
def outputs() -> dict[str, Any]:
    head = PACKAGE_STUBS.split("  built = import")[0]
    return nix_eval(head + LIB + FLAKE.replace("REPO", str(REPO)))


def test_packages_checks_and_systems() -> None:
    result = outputs()
    assert result["systems"] == ["aarch64-linux", "x86_64-linux"]
    assert result["packages"] == ["app", "default", "image", "index"]
    assert set(result["checks"]) == {
        "build",
        "image",
        "pytest",
        "ruff",
        "bytecode",
        "launcher",
        "smoke",
        "imports",
        "closure",
    }
    assert result["program"].endswith("/bin/bookchat-serve")


def test_the_default_image_serves_the_sample_books_index_it_builds() -> None:
    result = outputs()
    env = dict(item.split("=", 1) for item in result["env"])
    assert env["BOOKCHAT_INDEX_DIR"] == result["index"]
    assert "/bookchat/sample_book " in result["indexScript"]
    assert result["labels"]["org.opencontainers.image.revision"] == "c0ffee"
    assert result["created"] == "2026-11-30T12:34:56Z"
    # The smoke check runs that image's environment, index included.
    assert f"'BOOKCHAT_INDEX_DIR={result['index']}'" in result["smoke"]


def test_mk_image_is_exported_per_system() -> None:
    assert "'--site-url' 'https://docs.example.org'" in outputs()["ownScript"]
