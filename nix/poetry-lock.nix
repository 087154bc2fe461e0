# poetry.lock as poetry2nix can read it: the same lock minus the wheels whose file names
# poetry2nix's vendored pyproject.nix cannot parse or classify.
#
# Why: poetry2nix (last commit 2025-04-03) runs every wheel of a package through its tag parser
# and its table of manylinux CPUs, and a tag it does not know is an evaluation error for the whole
# build, not a non-match:
#   - a CPU missing from the table ("attribute 'riscv64' missing"): since mid-2025
#     charset-normalizer, greenlet, psycopg-binary, pydantic-core, sqlalchemy, tokenizers and
#     websockets publish riscv64 wheels (fixed upstream in pyproject-nix/pyproject.nix#336, #359);
#   - an ABI tag outside its pattern ("assertion '(m != null)' failed"): cryptography's
#     `abi3.abi3t` wheels and pydantic-core's `graalpy250_312_native` wheels.
# poetry2nix is unmaintained and never picked up the fixes. The dropped wheels could never have
# been selected for CPython 3.11 on x86_64/aarch64 glibc, so the build is the same; the parser and
# the CPU table are poetry2nix's own, so the filter becomes a no-op once they know the tag.
#
# Pure evaluation, no import-from-derivation: the filtered lock is written with builtins.toFile.
{
  lib,
  pyproject-nix,
  lockFile,
}:
let
  inherit (pyproject-nix.lib) pypa pep599;
  lock = builtins.fromTOML (builtins.readFile lockFile);

  # manylinux1_x86_64, manylinux_2_17_aarch64, musllinux_1_2_riscv64 -> the CPU part.
  tagCpu =
    tag:
    let
      m = builtins.match "(many|musl)linux(_[0-9]+_[0-9]+|[0-9]+)_(.+)" tag;
    in
    if m == null then null else builtins.elemAt m 2;
  knownTag =
    tag:
    let
      cpu = tagCpu tag;
    in
    cpu == null || pep599.manyLinuxTargetMachines ? ${cpu};
  # An assertion inside the parser is catchable; a missing attribute (the CPU table) is not,
  # hence the explicit lookup in knownTag.
  parses =
    wheel: (builtins.tryEval (builtins.deepSeq [ wheel.languageTags wheel.abiTag ] true)).success;
  usableWheel = wheel: parses wheel && lib.all knownTag wheel.platformTags;
  usableFile = f: !(pypa.isWheelFileName f.file) || usableWheel (pypa.parseWheelFileName f.file);
  filterPackage = p: p // lib.optionalAttrs (p ? files) { files = builtins.filter usableFile p.files; };

  # A TOML writer for the shapes a lock holds: tables of scalars, lists and inline tables.
  # JSON strings are valid TOML basic strings; every key is quoted, which TOML allows.
  value =
    v:
    if builtins.isAttrs v then
      "{" + lib.concatStringsSep ", " (lib.mapAttrsToList (k: x: "${builtins.toJSON k} = ${value x}") v) + "}"
    else if builtins.isList v then
      "[" + lib.concatMapStringsSep ", " value v + "]"
    else if builtins.isBool v then
      lib.boolToString v
    else if builtins.isInt v then
      toString v
    else
      builtins.toJSON v;
  body = t: lib.concatStrings (lib.mapAttrsToList (k: v: "${builtins.toJSON k} = ${value v}\n") t);
  section =
    name: v:
    if builtins.isList v then
      lib.concatMapStrings (t: "[[${name}]]\n${body t}\n") v
    else
      "[${name}]\n${body v}\n";
  filtered = lock // {
    package = map filterPackage lock.package;
  };
in
builtins.toFile "poetry.lock" (lib.concatStrings (lib.mapAttrsToList section filtered))
