# mkImage { book, siteUrl, revision, sourceUrl }: the image with that book's index baked in.
# Defaults: the sample book shipped in the package, and labels from this flake's commit.
{
  pkgs,
  self,
  nix2container,
  bookchat,
}:
{
  # A Docusaurus site folder (docusaurus.config.* + docs/) or its docs folder; null: the sample.
  book ? null,
  siteUrl ? null,
  # The book's commit, shown by /api/health; for a path in a git flake, that flake's rev.
  revision ? null,
  # The repository the image is built from (org.opencontainers.image.source): GHCR links the
  # package to it. The release workflow passes https://github.com/<owner>/<repo>.
  sourceUrl ? null,
}:
let
  inherit (pkgs) lib;
  inherit (bookchat.passthru) app py;
  # Only what ingestion reads, under a fixed name: a site's node_modules or build output never
  # reaches the store, and the folder's own name does not change the digest.
  bookSource =
    if book == null then
      "${app}/${py.sitePackages}/bookchat/sample_book"
    else if builtins.isPath book then
      builtins.path {
        path = book;
        name = "book";
        filter =
          path: _type:
          !(builtins.elem (baseNameOf path) [
            "node_modules"
            ".git"
            "build"
            ".docusaurus"
            ".cache-loader"
          ]);
      }
    else
      book;
  index = import ./index.nix {
    inherit pkgs bookchat revision;
    # The sample book's pages are served by bookchat itself (GET /docs/…): indexed root-relative,
    # as at run time, its citations get the server's own origin instead of its config's
    # http://localhost:3000, which a Space's reader cannot open.
    siteUrl = if book == null && siteUrl == null then "" else siteUrl;
    book = bookSource;
  };
  runtime = import ./runtime.nix { inherit pkgs bookchat index; };
  # The commit's time (lastModifiedDate is YYYYMMDDHHMMSS, UTC): real, and the same on rebuild.
  stamp = self.lastModifiedDate or "19700101000001";
  part = start: length: builtins.substring start length stamp;
  created = "${part 0 4}-${part 4 2}-${part 6 2}T${part 8 2}:${part 10 2}:${part 12 2}Z";
  labels = {
    "org.opencontainers.image.revision" = self.rev or self.dirtyRev or "unknown";
    "org.opencontainers.image.version" = app.version;
    "org.opencontainers.image.created" = created;
  }
  // lib.optionalAttrs (sourceUrl != null) { "org.opencontainers.image.source" = sourceUrl; };
  image = import ./image.nix {
    inherit
      pkgs
      nix2container
      bookchat
      runtime
      index
      labels
      created
      ;
  };
in
# The image derivation, plus what checks.smoke runs and what the image bakes.
image // { inherit index runtime; }
