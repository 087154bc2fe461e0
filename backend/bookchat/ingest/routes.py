"""Docusaurus's routing rules: a doc's slug, its public URL, and heading anchors.

Ported from facebook/docusaurus `plugin-content-docs/src/{numberPrefix,slug,docs}.ts` and
`docusaurus-utils/src/slugger.ts` (github-slugger), so citations land where the site serves them.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata

from bookchat.ingest.siteconfig import SiteConfig

# numberPrefix.ts: "7.0-foo" and "2021-11-foo" look like versions and dates, not prefixes.
_IGNORED_PREFIX = re.compile(r"^\d+[-_.]\d+")
_NUMBER_PREFIX = re.compile(r"^(?P<number>\d+)\s*[-_.]+\s*(?P<suffix>[^-_.\s].*)$", re.DOTALL)


def strip_number_prefix(name: str) -> str:
    """`01-intro` -> `intro`; dates and versions (`2024-01-01-x`, `1.2-x`) stay as they are."""
    if _IGNORED_PREFIX.match(name):
        return name
    match = _NUMBER_PREFIX.match(name)
    return match.group("suffix") if match else name


def _strip_path_number_prefixes(path: str) -> str:
    return "/".join(strip_number_prefix(segment) for segment in path.split("/"))


def is_category_index(source: str) -> bool:
    """docs.ts isCategoryIndex: index.md, readme.md, or a doc named like its folder."""
    directory, filename = posixpath.split(source)
    stem = posixpath.splitext(filename)[0].lower()
    parent = directory.rsplit("/", 1)[-1].lower() if directory else None
    return stem in ("index", "readme") or (parent is not None and stem == parent)


def doc_slug(
    source: str,
    *,
    frontmatter_id: str | None = None,
    frontmatter_slug: str | None = None,
    parse_number_prefixes: bool = True,
) -> str:
    """The route of a doc below routeBasePath, from its path relative to the docs root."""
    directory, filename = posixpath.split(source)
    stem = posixpath.splitext(filename)[0]
    base_id = frontmatter_id or (strip_number_prefix(stem) if parse_number_prefixes else stem)
    if frontmatter_slug and frontmatter_slug.startswith("/"):
        return frontmatter_slug
    if not directory:
        dir_slug = "/"
    else:
        stripped = _strip_path_number_prefixes(directory) if parse_number_prefixes else directory
        dir_slug = "/" + stripped.strip("/") + "/"
    if not frontmatter_slug and is_category_index(source):
        return dir_slug
    return _resolve_pathname(frontmatter_slug or base_id, dir_slug)


def _resolve_pathname(to: str, base: str) -> str:
    """Resolve a relative route against a folder route, as `resolve-pathname` does."""
    trailing = to.endswith("/") or to in (".", "..") or to.endswith(("/.", "/.."))
    resolved = posixpath.normpath(posixpath.join(base, to))
    if resolved.startswith("//"):
        resolved = "/" + resolved.lstrip("/")
    if trailing and not resolved.endswith("/"):
        resolved += "/"
    return resolved


def page_url(site: SiteConfig, slug: str) -> str:
    """site url + baseUrl + routeBasePath + slug, slashes collapsed like normalizeUrl."""
    parts = [site.base_url, site.route_base_path, slug]
    path = "/" + "/".join(p.strip("/") for p in parts if p.strip("/"))
    if slug.endswith("/") and not path.endswith("/"):
        path += "/"
    if site.trailing_slash is True and not path.endswith("/"):
        path += "/"
    elif site.trailing_slash is False and path not in ("/", site.base_url):
        path = path.rstrip("/")
    return site.site_url + path


# mdx-loader's headings plugin: `## Title {#custom-id}` sets the id explicitly.
_CUSTOM_ID = re.compile(r"\s*\{#(?P<id>(?:.(?!\{#|\}))*.)\}$")


def split_custom_id(heading: str) -> tuple[str, str | None]:
    """`Title {#my-id}` -> ("Title", "my-id"); otherwise (heading, None)."""
    match = _CUSTOM_ID.search(heading)
    if not match:
        return heading, None
    return heading[: match.start()], match.group("id")


# github-slugger removes these Unicode general categories (but keeps alphabetic code points,
# a plain space and a plain hyphen): other numbers, punctuation except connectors, symbols,
# controls, format, private use, unassigned and separators.
_REMOVED_CATEGORIES = frozenset(
    {"No", "Pe", "Pf", "Pi", "Ps", "Po", "Pd", "Sm", "Sc", "Sk", "So", "Cc", "Co", "Cf", "Cn"}
    | {"Zs", "Zl", "Zp"}
)


# Circled, squared and negative squared Latin letters are symbols (So) but Unicode-Alphabetic,
# so kept; the squared abbreviations between them (U+1F14A HV … U+1F14F WC) are not.
_ALPHABETIC_SYMBOLS = ((0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189))


def _is_alphabetic_symbol(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _ALPHABETIC_SYMBOLS)


def github_slug(value: str) -> str:
    """github-slugger's slug(): lowercase, drop punctuation and symbols, spaces to hyphens."""
    kept = [
        char
        for char in value.lower()
        if char in " -"
        or unicodedata.category(char) not in _REMOVED_CATEGORIES
        or _is_alphabetic_symbol(char)
    ]
    return "".join(kept).replace(" ", "-")


class HeadingSlugger:
    """Stateful like github-slugger: a repeated heading gets `-1`, `-2`, ... in one page."""

    def __init__(self) -> None:
        self._occurrences: dict[str, int] = {}

    def slug(self, text: str) -> str:
        """The anchor id for one more heading with this text."""
        original = github_slug(text)
        result = original
        while result in self._occurrences:
            self._occurrences[original] += 1
            result = f"{original}-{self._occurrences[original]}"
        self._occurrences[result] = 0
        return result
