{
  description = "bookchat: retrieval-augmented chat for a Docusaurus book, shipped as an OCI image";

  inputs = {
    # The revision poetry2nix's own flake.lock pins and its CI last passed on (nixos-small-unstable,
    # 2024-10-28). poetry2nix has been unmaintained since November 2024; newer nixpkgs breaks it
    # (2026 unstable: its wheel fetcher fails with "NIX_CURL_FLAGS: unbound variable"), so the
    # application is built with the nixpkgs it was tested against. Python 3.11.10, glibc 2.40.
    nixpkgs.url = "github:NixOS/nixpkgs/75e28c029ef2605f9841e0baa335d70065fe7ae2";
    poetry2nix = {
      url = "github:nix-community/poetry2nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    # Not following nixpkgs, deliberately: nix2container's current Go code needs Go >= 1.24 and a
    # recent skopeo, which the 2024 pin lacks. Its nixpkgs builds only the image tooling (and the
    # dev shell's Poetry 2); nothing from it ends up in the image.
    nix2container.url = "github:nlewo/nix2container";
  };

  outputs =
    {
      self,
      nixpkgs,
      poetry2nix,
      nix2container,
    }:
    let
      inherit (nixpkgs) lib;
      # Hugging Face Spaces run amd64; aarch64 builds on ARM runners and Apple-silicon Linux VMs.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      perSystem =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          # The flake's own tree as a path value (lib.fileset needs paths, not the flake attrset).
          src = ./.;
          built = import ./nix/bookchat.nix { inherit pkgs poetry2nix src; };
          # The image for one book. `nix build .#image` bakes the sample book; a book owner
          # bakes theirs with `bookchat.lib.${system}.mkImage { book = ./.; }` in their own
          # flake (backend/docs/deploying.md: a function, not a flake input, because a book
          # needs arguments beside its path and an input would need a lock entry and a default).
          mkImage = import ./nix/mk-image.nix {
            inherit pkgs self;
            inherit (nix2container.packages.${system}) nix2container;
            inherit (built) bookchat;
          };
          image = mkImage { };
          # Runtime and dev dependencies (pytest, ruff, ...) at their locked versions; bookchat
          # itself comes from the working tree (`PYTHONPATH=backend`, set by the dev shell).
          devEnv = built.p2n.mkPoetryEnv (
            built.common
            // {
              groups = [
                "main"
                "dev"
              ];
            }
          );
          # Poetry 2, which wrote poetry.lock (lock-version 2.1); the 2024 pin only has Poetry 1.8.
          toolPkgs = nix2container.inputs.nixpkgs.legacyPackages.${system};
        in
        {
          packages = {
            default = built.bookchat;
            app = built.app;
            inherit image;
            # The sample book's index as the image bakes it.
            inherit (image) index;
          };
          lib = { inherit mkImage; };
          apps.default = {
            type = "app";
            program = "${built.bookchat}/bin/bookchat-serve";
          };
          devShells.default = pkgs.mkShell {
            packages = [
              devEnv
              toolPkgs.poetry
              pkgs.nixfmt-rfc-style
            ];
            shellHook = ''
              export PYTHONPATH="$PWD/backend''${PYTHONPATH:+:$PYTHONPATH}"
            '';
          };
          checks = import ./nix/checks.nix {
            inherit
              pkgs
              src
              built
              image
              devEnv
              ;
          };
          formatter = pkgs.nixfmt-rfc-style;
        };
      each = lib.genAttrs systems perSystem;
    in
    {
      packages = lib.mapAttrs (_: s: s.packages) each;
      apps = lib.mapAttrs (_: s: s.apps) each;
      devShells = lib.mapAttrs (_: s: s.devShells) each;
      checks = lib.mapAttrs (_: s: s.checks) each;
      # bookchat.lib.<system>.mkImage { book = ./my-site; siteUrl = "…"; revision = …; }
      lib = lib.mapAttrs (_: s: s.lib) each;
      formatter = lib.mapAttrs (_: s: s.formatter) each;
    };
}
