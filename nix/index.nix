# A book's embedded Qdrant index, built inside the Nix sandbox by the same `bookchat ingest` the
# CLI runs, with the offline embedder: no network and no key, and the same book and lock give
# the same bytes (tests/delivery/test_index_build.py runs this script against the venv).
{
  pkgs,
  bookchat,
  # A Docusaurus site folder (with docusaurus.config.* and docs/) or its docs folder.
  book,
  # The site's public URL, when docusaurus.config does not say it (or says it wrongly).
  siteUrl ? null,
  # The book's source revision (a git commit), shown by /api/health; null when unknown.
  revision ? null,
}:
let
  inherit (pkgs) lib;
in
pkgs.runCommand "bookchat-index"
  {
    # The launcher and nothing else: no shell tools, no network, no key.
    BOOKCHAT_EMBEDDER = "local";
    BOOKCHAT_SAMPLE_BOOK = "0";
    GEMINI_API_KEY = "";
    QDRANT_URL = "";
    # The points are pickled pydantic models, and pickle writes their `__pydantic_fields_set__`
    # in set order, which follows string hashing: a fixed seed makes two builds byte-identical.
    PYTHONHASHSEED = "0";
    PYTHONDONTWRITEBYTECODE = "1";
  }
  ''
    export HOME="$TMPDIR/home" BOOKCHAT_DATA_DIR="$TMPDIR/data" BOOKCHAT_INDEX_DIR="$out"
    ${bookchat}/bin/bookchat ingest ${book} ${
      lib.escapeShellArgs (
        lib.optionals (siteUrl != null) [
          "--site-url"
          siteUrl
        ]
        ++ lib.optionals (revision != null) [
          "--source-revision"
          revision
        ]
      )
    }
    # Local mode's lock file belongs to the process that holds it, not to the index.
    rm -f "$out/.lock"
  ''
