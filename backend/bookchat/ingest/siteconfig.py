"""Where a Docusaurus site serves its docs: url, baseUrl, trailingSlash, docs instances, versions.

The values come from `docusaurus.config.{ts,js,mjs,...}`, read by the static evaluator in
`jseval` (node is never run), and command-line flags override them. Reading never fails: a
value that cannot be known statically falls back to Docusaurus's default, and the fallback is
named in one warning line.

Versions follow `@docusaurus/plugin-content-docs` (`src/versions/{files,version}.ts`):
`versions.json` (`<id>_versions.json` for another instance) lists released versions, newest
first; `current` (the docs folder) comes first unless `includeCurrentVersion: false`;
`onlyIncludeVersions` filters; `lastVersion` defaults to the first released version; a version
is served at `versions.<name>.path`, else at `` for the last version, `next` for current and
its name for the others, below `baseUrl` + `routeBasePath`. A released version's files live in
`versioned_docs/version-<name>/` (`<id>_versioned_docs/` for another instance).
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bookchat.ingest.jseval import UNDEFINED, EnvValue, Unknown, default_export

CONFIG_NAMES = (
    "docusaurus.config.js",
    "docusaurus.config.ts",
    "docusaurus.config.mjs",
    "docusaurus.config.cjs",
    "docusaurus.config.mts",
    "docusaurus.config.cts",
)
# What `docusaurus start` serves when nothing says otherwise.
DEFAULT_SITE_URL = "http://localhost:3000"
CURRENT = "current"
DEFAULT_PLUGIN = "default"
_DOCS_PLUGIN_NAMES = ("@docusaurus/plugin-content-docs", "docusaurus-plugin-content-docs")


@dataclass(frozen=True)
class SiteConfig:
    """The parts of a Docusaurus config that decide a doc's public URL in one docs root."""

    site_url: str
    base_url: str = "/"
    # routeBasePath joined with the version's path part ("docs", "docs/next", "docs/2.0").
    route_base_path: str = "docs"
    # Docusaurus's `trailingSlash`: None leaves paths as routed, True adds, False removes.
    trailing_slash: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "site_url", self.site_url.rstrip("/"))
        object.__setattr__(self, "base_url", _normalise_base_url(self.base_url))
        object.__setattr__(self, "route_base_path", _normalise_route(self.route_base_path))


def _normalise_base_url(value: str) -> str:
    stripped = value.strip("/")
    return f"/{stripped}/" if stripped else "/"


def _normalise_route(value: str) -> str:
    return value.strip("/") or "/"


@dataclass(frozen=True)
class DocsRoot:
    """One folder of docs as Docusaurus serves it: a version of one docs plugin instance."""

    path: Path
    site: SiteConfig
    plugin: str = DEFAULT_PLUGIN  # the docs plugin instance id
    version: str | None = None  # None when the instance has no released versions
    label: str | None = None  # the version's label ("Next", "2.0", ...)
    last: bool = True  # the version readers land on


@dataclass
class Site:
    """A resolved site: where it is served and which docs roots to index."""

    site_url: str
    base_url: str
    trailing_slash: bool | None
    config_file: Path | None = None
    folder: Path | None = None  # the site folder when it has no config (Docusaurus's defaults)
    found_inside: Path | None = None  # the repository folder the site was found in
    roots: list[DocsRoot] = field(default_factory=list)  # selected for indexing
    other_versions: list[DocsRoot] = field(default_factory=list)  # known, not selected
    warnings: list[str] = field(default_factory=list)

    @property
    def site_dir(self) -> Path | None:
        """The site folder (`@site/` in imports), when one was found."""
        return self.config_file.parent if self.config_file else self.folder

    @property
    def plugins(self) -> set[str]:
        """The docs plugin instances that serve the selected roots."""
        return {root.plugin for root in self.roots}

    def describe(self) -> list[str]:
        """Lines that show what was resolved, so a wrong guess is visible before indexing."""
        source = self.config_file.name if self.config_file else "no docusaurus.config found"
        slash = {None: "as routed", True: "added", False: "removed"}[self.trailing_slash]
        lines = [
            f"site {self.site_url}{self.base_url} ({source}; trailing slash {slash})",
        ]
        if self.found_inside is not None and self.site_dir is not None:
            lines.append(
                f"site folder {relative_to_cwd(self.site_dir)} "
                f"(the Docusaurus site inside {relative_to_cwd(self.found_inside)})"
            )
        for root in self.roots:
            what = [f"plugin {root.plugin}"] if len(self.plugins) > 1 else []
            if root.version is not None:
                what.append(f"version {root.version}")
            route = "/" if root.site.route_base_path == "/" else f"/{root.site.route_base_path}/"
            suffix = f" ({', '.join(what)})" if what else ""
            lines.append(
                f"docs {relative_to_cwd(root.path)} -> {self.base_url.rstrip('/')}{route}{suffix}"
            )
        if self.other_versions:
            names = ", ".join(
                sorted({r.version or "" for r in self.other_versions}, key=_version_key)
            )
            lines.append(f"not indexed (--versions all to include): versions {names}")
        return lines


def _version_key(name: str) -> tuple[int, str]:
    return (0 if name == CURRENT else 1, name)


def find_config(folder: Path) -> Path | None:
    """The docusaurus.config.* in `folder`, if any."""
    return next((folder / n for n in CONFIG_NAMES if (folder / n).is_file()), None)


def read_config(config_file: Path) -> tuple[dict[str, Any], list[str]]:
    """The config object, read statically, and a warning when it could not be read at all."""
    where = config_file.name
    try:
        value = default_export(config_file, root=config_file.parent)
    except UnicodeDecodeError as exc:
        return {}, [f"{where}: not UTF-8 text (byte {exc.start}); using Docusaurus's defaults"]
    except (OSError, RecursionError, ValueError) as exc:
        return {}, [f"{where}: cannot read it ({exc}); using Docusaurus's defaults"]
    if isinstance(value, dict):
        return value, []
    shown = value.text if isinstance(value, Unknown) else type(value).__name__
    return {}, [f"{where}: cannot read its exported config ({shown}); using Docusaurus's defaults"]


class _Reader:
    """Takes typed values out of the config, warning once per unreadable value."""

    def __init__(self, where: str, warnings: list[str]) -> None:
        self.where = where
        self.warnings = warnings

    def get(self, obj: dict[str, Any], key: str, kinds: tuple[type, ...], default: Any, name=""):
        value = obj.get(key, UNDEFINED)
        if value is UNDEFINED:
            return default
        if isinstance(value, kinds) and not (bool not in kinds and isinstance(value, bool)):
            return value
        if isinstance(value, EnvValue):
            shown = f"process.env.{value.name}, unset when read without the build's environment"
        else:
            shown = value.text if isinstance(value, Unknown) else repr(value)
        self.warnings.append(
            f"{self.where}: cannot read `{name or key}` ({shown}); "
            f"using Docusaurus's default ({_js(default)})"
        )
        return default


def _js(value: Any) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value)


@dataclass
class _Instance:
    id: str
    path: str
    route_base_path: str
    options: dict[str, Any]


def _docs_instances(config: dict[str, Any], reader: _Reader) -> list[_Instance]:
    """The classic preset's docs and every plugin-content-docs instance, in config order."""
    found: list[tuple[dict[str, Any], str]] = []
    presets = config.get("presets", UNDEFINED)
    for entry in presets if isinstance(presets, list) else []:
        name, options = _plugin_entry(entry)
        docs = options.get("docs", {}) if isinstance(options, dict) else {}
        # A preset that wraps the classic one passes its `docs` options through (Meta's
        # docusaurus-plugin-internaldocs-fb preset, used by facebook/metro): read them alike.
        wraps_classic = isinstance(docs, dict) and isinstance(options, dict) and "docs" in options
        if not isinstance(name, str) or not (_is_classic_preset(name) or wraps_classic):
            continue
        if docs is False:
            continue
        found.append((docs if isinstance(docs, dict) else {}, "presets > classic > docs"))
    plugins = config.get("plugins", [])
    for entry in plugins if isinstance(plugins, list) else []:
        name, options = _plugin_entry(entry)
        if isinstance(name, str) and _is_docs_plugin(name):
            found.append((options if isinstance(options, dict) else {}, "plugins > docs"))
    if not found and not isinstance(presets, list):
        found.append(({}, "docs"))
    instances = []
    for options, where in found:
        plugin_id = reader.get(options, "id", (str,), DEFAULT_PLUGIN, f"{where} id")
        instances.append(
            _Instance(
                id=plugin_id,
                path=reader.get(options, "path", (str,), "docs", f"{where} path"),
                route_base_path=reader.get(
                    options, "routeBasePath", (str,), "docs", f"{where} routeBasePath"
                ),
                options=options,
            )
        )
    return instances


def _plugin_entry(entry: Any) -> tuple[Any, Any]:
    if isinstance(entry, list) and entry:
        return entry[0], entry[1] if len(entry) > 1 else {}
    return entry, {}


def _is_classic_preset(name: str) -> bool:
    return name in ("classic", "@docusaurus/preset-classic") or name.endswith(
        ("preset-classic", "preset-classic/")
    )


def _is_docs_plugin(name: str) -> bool:
    base = name.rstrip("/")
    return (
        base in ("content-docs", *_DOCS_PLUGIN_NAMES)
        or base.endswith(_DOCS_PLUGIN_NAMES)
        or base.endswith("/plugin-content-docs")
    )


@dataclass(frozen=True)
class _Version:
    name: str
    path: Path
    route: str  # routeBasePath + path part
    label: str
    last: bool


def _versions(site_dir: Path, inst: _Instance, reader: _Reader) -> tuple[list[_Version], bool]:
    """The versions this instance serves, newest first, and whether it has released ones."""
    opts = inst.options
    where = "docs" if inst.id == DEFAULT_PLUGIN else f"docs {inst.id}"
    prefix = "" if inst.id == DEFAULT_PLUGIN else f"{inst.id}_"
    names: list[str] = []
    versions_file = site_dir / f"{prefix}versions.json"
    if versions_file.is_file():
        try:
            data = json.loads(versions_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            reader.warnings.append(f"{versions_file.name}: cannot read it ({exc}); ignored")
            data = []
        names = (
            [str(v) for v in data if isinstance(v, str | int | float)]
            if isinstance(data, list)
            else []
        )
    if reader.get(opts, "disableVersioning", (bool,), False, f"{where} disableVersioning"):
        names = []
    released = bool(names)
    with_current = reader.get(
        opts, "includeCurrentVersion", (bool,), True, f"{where} includeCurrentVersion"
    )
    if with_current and CURRENT not in names:
        names.insert(0, CURRENT)
    only = reader.get(opts, "onlyIncludeVersions", (list,), None, f"{where} onlyIncludeVersions")
    if isinstance(only, list):
        names = [n for n in names if n in only]
    last_name = reader.get(opts, "lastVersion", (str,), None, f"{where} lastVersion")
    if last_name is None:
        last_name = next((n for n in names if n != CURRENT), CURRENT)
    options = opts.get("versions", {})
    per_version = options if isinstance(options, dict) else {}
    out = []
    for name in names:
        own = per_version.get(name, {})
        own = own if isinstance(own, dict) else {}
        default_part = "" if name == last_name else ("next" if name == CURRENT else name)
        part = reader.get(own, "path", (str,), default_part, f"{where} versions.{name}.path")
        label = reader.get(
            own, "label", (str,), "Next" if name == CURRENT else name, f"{where} versions label"
        )
        if name == CURRENT:
            folder = (site_dir / inst.path).resolve()
        else:
            folder = site_dir / f"{prefix}versioned_docs" / f"version-{name}"
        route = "/".join(p.strip("/") for p in (inst.route_base_path, part) if p.strip("/"))
        out.append(_Version(name, folder, route or "/", label, name == last_name))
    return out, released


def _stands_in(missing: _Version, current: Path, found: list[_Version]) -> bool:
    """Whether the current docs folder is read in place of the missing landing version: it is
    on disk and not already indexed as a version of its own."""
    return (
        missing.last
        and missing.name != CURRENT
        and current.is_dir()
        and not any(v.name == CURRENT for v in found)
    )


def _select(names: str, version: _Version) -> bool:
    if names == "last":
        return version.last
    if names == "all":
        return True
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    return any(fnmatch.fnmatchcase(version.name, w) for w in wanted) or (
        "last" in wanted and version.last
    )


def resolve_site(
    path: Path,
    *,
    site_url: str | None = None,
    base_url: str | None = None,
    route_base_path: str | None = None,
    versions: str = "last",
) -> Site:
    """Resolve a site folder (with docusaurus.config.*) or a docs folder into docs roots.

    `versions` is "last" (the version readers land on; the default), "all", or a comma list
    of version names or shell patterns (`current`, `3.*`); instances without released versions
    always give their one folder. A docs folder is routed as the version it holds when a
    nearby config serves it (its parent, grandparent, or a sibling site folder such as
    `website/` for a `docs/` kept beside it).
    """
    path = path.resolve()
    options: dict[str, Any] = dict(
        site_url=site_url, base_url=base_url, route_base_path=route_base_path, versions=versions
    )
    config_file = find_config(path)
    if config_file is not None:
        return _resolve_site_folder(config_file, **options)
    # A repository's root: the site is a folder inside it (website/, docs-site/, ...).
    inner, others = _site_inside(path)
    if inner is not None:
        site = _resolve_site_folder(inner, **options)
        site.found_inside = path
        if others:
            names = ", ".join(relative_to_cwd(o.parent) for o in others)
            site.warnings.append(
                f"{relative_to_cwd(path)} holds several Docusaurus sites ({names} too); "
                f"using {relative_to_cwd(inner.parent)} (give a site folder to choose)"
            )
        return site
    for candidate in _nearby_configs(path):
        site = _resolve_site_folder(
            candidate, site_url=site_url, base_url=base_url, route_base_path=route_base_path
        )
        every = site.roots + site.other_versions
        match = [r for r in every if _same(r.path, path)]
        if match:
            site.roots, site.other_versions = match[:1], []
            return site
    if _looks_like_site_folder(path):
        # A site folder without a config (it lives elsewhere, or was not copied): its docs/
        # is served as Docusaurus serves it by default, not this folder as a docs folder
        # (which gave /docs/docs/... URLs).
        warnings = [
            f"no docusaurus.config.* in {relative_to_cwd(path)}: reading it as a site folder "
            "with Docusaurus's defaults (docs/ served at /docs/)"
        ]
        return _resolve_site_dir(path, {}, warnings, None, **options)
    # A docs folder whose config does not list it: the parent's config still says where the
    # site is served; the folder is routed as the default docs instance's current version.
    parent_config = find_config(path.parent)
    warnings: list[str] = []
    config: dict[str, Any] = {}
    if parent_config is not None:
        config, warnings = read_config(parent_config)
    reader = _Reader(parent_config.name if parent_config else "", warnings)
    instances = _docs_instances(config, reader) if parent_config else []
    route = route_base_path or (instances[0].route_base_path if instances else "docs")
    site = _site(config, reader, parent_config, site_url, base_url)
    site.roots = [DocsRoot(path=path, site=_url_maker(site, route))]
    return site


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _nearby_configs(docs_dir: Path) -> list[Path]:
    found: list[Path] = []
    for folder in (docs_dir.parent, docs_dir.parent.parent, docs_dir.parent.parent.parent):
        config = find_config(folder)
        if config is not None:
            found.append(config)
    try:
        siblings = sorted(p for p in docs_dir.parent.iterdir() if p.is_dir())
    except OSError:
        siblings = []
    for sibling in siblings:
        config = find_config(sibling)
        if config is not None and config not in found:
            found.append(config)
    return found


def _site(
    config: dict[str, Any],
    reader: _Reader,
    config_file: Path | None,
    site_url: str | None,
    base_url: str | None,
) -> Site:
    # An empty site_url is meaningful: URLs relative to the server's own origin.
    url = site_url if site_url is not None else reader.get(config, "url", (str,), DEFAULT_SITE_URL)
    base = base_url if base_url is not None else reader.get(config, "baseUrl", (str,), "/")
    slash = reader.get(config, "trailingSlash", (bool,), None)
    return Site(
        site_url=url.rstrip("/"),
        base_url=_normalise_base_url(base),
        trailing_slash=slash,
        config_file=config_file,
        warnings=reader.warnings,
    )


def _url_maker(site: Site, route: str) -> SiteConfig:
    return SiteConfig(
        site_url=site.site_url,
        base_url=site.base_url,
        route_base_path=route,
        trailing_slash=site.trailing_slash,
    )


# Folders of a repository that are never the site (and can be huge).
_NOT_SITES = frozenset({"node_modules", "build", "dist", "vendor"})
# What a Docusaurus site folder holds besides its config.
_SITE_MARKS = ("sidebars.js", "sidebars.ts", "sidebars.json", "sidebars.cjs", "sidebars.mjs")


def _site_inside(folder: Path) -> tuple[Path | None, list[Path]]:
    """The config of the Docusaurus site in a child folder (website/ first), and any others."""
    try:
        children = sorted(
            p
            for p in folder.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name not in _NOT_SITES
        )
    except OSError:
        return None, []
    found = [c for c in (find_config(child) for child in children) if c is not None]
    found.sort(key=lambda c: c.parent.name != "website")
    return (found[0], found[1:]) if found else (None, [])


def docusaurus1_hint(folder: Path) -> str | None:
    """For a Docusaurus 1 site folder (website/siteConfig.js, docs kept in the repository's
    docs/ by default), what to pass instead; None for anything else. Its config is not read:
    version 1 routes pages as `<id>.html`, which bookchat does not reproduce."""
    if not (folder / "siteConfig.js").is_file() or find_config(folder) is not None:
        return None
    docs = folder.parent / "docs"
    where = relative_to_cwd(docs) if docs.is_dir() else "its docs folder (customDocsPath)"
    return (
        "it is a Docusaurus 1 site (siteConfig.js), whose config bookchat does not read; "
        f"pass {where} instead, with --site-url and --base-url"
    )


def _looks_like_site_folder(folder: Path) -> bool:
    """A folder with docs/ beside a sidebars file, versions.json or a package.json that
    depends on Docusaurus: a site folder, not a docs folder."""
    if not (folder / "docs").is_dir():
        return False
    if any((folder / mark).is_file() for mark in (*_SITE_MARKS, "versions.json")):
        return True
    try:
        package = (folder / "package.json").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "@docusaurus/" in package


def _resolve_site_folder(
    config_file: Path,
    *,
    site_url: str | None,
    base_url: str | None,
    route_base_path: str | None,
    versions: str = "last",
) -> Site:
    config, warnings = read_config(config_file)
    return _resolve_site_dir(
        config_file.parent,
        config,
        warnings,
        config_file,
        site_url=site_url,
        base_url=base_url,
        route_base_path=route_base_path,
        versions=versions,
    )


def _resolve_site_dir(
    site_dir: Path,
    config: dict[str, Any],
    warnings: list[str],
    config_file: Path | None,
    *,
    site_url: str | None,
    base_url: str | None,
    route_base_path: str | None,
    versions: str = "last",
) -> Site:
    where = config_file.name if config_file else "Docusaurus's defaults"
    reader = _Reader(where, warnings)
    site = _site(config, reader, config_file, site_url, base_url)
    site.folder = site_dir
    instances = _docs_instances(config, reader)
    for inst in instances:
        if route_base_path is not None:
            inst.route_base_path = route_base_path
        found, released = _versions(site_dir, inst, reader)
        current = (site_dir / inst.path).resolve()
        for version in found:
            chosen = _select(versions, version) if released else True
            if not version.path.is_dir():
                missing = relative_to_cwd(version.path)
                if chosen and _stands_in(version, current, found):
                    # Some sites keep the released docs only in docs/ and copy them to this
                    # folder at build time (pnpm.io's `copy-docs`): Docusaurus itself cannot
                    # build such a checkout, and skipping it would index nothing readers see.
                    warnings.append(
                        f"{where}: no docs folder at {missing} (the version readers land on; "
                        f"a build step may make it from {relative_to_cwd(current)}): indexing "
                        f"{relative_to_cwd(current)} in its place"
                    )
                    version = replace(version, path=current)
                else:
                    if chosen:
                        warnings.append(f"{where}: no docs folder at {missing}; skipped")
                    continue
            root = DocsRoot(
                path=version.path,
                site=_url_maker(site, version.route),
                plugin=inst.id,
                version=version.name if released else None,
                label=version.label if released else None,
                last=version.last,
            )
            (site.roots if chosen else site.other_versions).append(root)
    return site


def read_site_config(
    docs_dir: Path,
    *,
    site_url: str | None = None,
    base_url: str | None = None,
    route_base_path: str | None = None,
) -> SiteConfig:
    """How the docs in `docs_dir` are served (its site config found nearby); flags override."""
    site = resolve_site(
        docs_dir, site_url=site_url, base_url=base_url, route_base_path=route_base_path
    )
    match = [r for r in site.roots if _same(r.path, docs_dir)]
    if match:
        return match[0].site
    route = route_base_path or "docs"
    return _url_maker(site, route)


def relative_to_cwd(path: Path) -> str:
    """A short path for messages: relative below the current folder, else absolute."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


__all__ = [
    "CONFIG_NAMES",
    "CURRENT",
    "DEFAULT_SITE_URL",
    "DocsRoot",
    "Site",
    "SiteConfig",
    "read_config",
    "read_site_config",
    "resolve_site",
]
