"""Where a Docusaurus site serves its docs: `url`, `baseUrl` and the docs `routeBasePath`.

The values come from `docusaurus.config.{js,ts,mjs}` beside the docs folder, read statically
(string literals only; node is never run), and command-line flags override them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CONFIG_NAMES = ("docusaurus.config.js", "docusaurus.config.ts", "docusaurus.config.mjs")
# What `docusaurus start` serves when nothing says otherwise.
DEFAULT_SITE_URL = "http://localhost:3000"


class SiteConfigError(Exception):
    """A docusaurus.config file exists but cannot be read or understood."""


@dataclass(frozen=True)
class SiteConfig:
    """The parts of a Docusaurus config that decide a doc's public URL."""

    site_url: str
    base_url: str = "/"
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


def read_site_config(
    docs_dir: Path,
    *,
    site_url: str | None = None,
    base_url: str | None = None,
    route_base_path: str | None = None,
) -> SiteConfig:
    """Read the site config beside `docs_dir`; flags override; defaults fill the rest."""
    found: dict[str, object] = {}
    config_file = next(
        (docs_dir.parent / n for n in CONFIG_NAMES if (docs_dir.parent / n).is_file()), None
    )
    if config_file is not None:
        found = _read_config_file(config_file, need_url=site_url is None)
    return SiteConfig(
        site_url=site_url if site_url is not None else str(found.get("url", DEFAULT_SITE_URL)),
        base_url=base_url if base_url is not None else str(found.get("baseUrl", "/")),
        route_base_path=(
            route_base_path
            if route_base_path is not None
            else str(found.get("routeBasePath", "docs"))
        ),
        trailing_slash=found.get("trailingSlash"),  # type: ignore[arg-type]
    )


def _read_config_file(path: Path, *, need_url: bool) -> dict[str, object]:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteConfigError(f"cannot read {path}: {exc}") from exc
    try:
        entries = list(_key_values(source))
    except ValueError as exc:
        raise SiteConfigError(f"cannot understand {path}: {exc}") from exc
    result: dict[str, object] = {}
    top = [e for e in entries if not e.in_docs]
    for key in ("url", "baseUrl", "trailingSlash"):
        candidates = [e for e in top if e.key == key]
        if candidates:
            shallowest = min(candidates, key=lambda e: e.depth)
            result[key] = shallowest.value
    docs_routes = [e for e in entries if e.in_docs and e.key == "routeBasePath"]
    if docs_routes:
        result["routeBasePath"] = docs_routes[0].value
    if need_url and not isinstance(result.get("url"), str):
        raise SiteConfigError(
            f"cannot understand {path}: no string literal `url:` found "
            "(pass --site-url to say where the book is served)"
        )
    for key in ("baseUrl", "routeBasePath"):
        if key in result and not isinstance(result[key], str):
            raise SiteConfigError(f"cannot understand {path}: `{key}` is not a string literal")
    if not isinstance(result.get("trailingSlash"), bool):
        result.pop("trailingSlash", None)
    return result


@dataclass(frozen=True)
class _Entry:
    key: str
    value: object  # str | bool for literals, None for anything computed
    depth: int
    in_docs: bool  # inside the docs preset options or a plugin-content-docs instance


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    | (?P<comment>//[^\n]*|/\*.*?\*/)
    | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\$]|\\.|\$(?!\{))*`)
    | (?P<template>`)
    | (?P<ident>[A-Za-z_$][\w$]*)
    | (?P<punct>[{}\[\](),:])
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(source):
        kind = m.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        if kind == "template":
            # A template literal with ${...} cannot be evaluated statically.
            out.append(("computed", m.group()))
            continue
        out.append((kind, m.group()))
    return out


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _key_values(source: str):
    """Yield `key: literal` pairs with their nesting depth and whether they configure docs."""
    tokens = _tokens(source)
    # Each open container: (kind, key it is the value of, first string in it if an array).
    stack: list[list[object]] = []
    pending_key: str | None = None
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "punct" and text in "{[(":
            stack.append([text, pending_key, None])
            pending_key = None
        elif kind == "punct" and text in "}])":
            if not stack:
                raise ValueError("unbalanced brackets")
            stack.pop()
            pending_key = None
        elif kind in ("ident", "str") and i + 1 < len(tokens) and tokens[i + 1] == ("punct", ":"):
            key = _unquote(text) if kind == "str" else text
            value_kind, value_text = tokens[i + 2] if i + 2 < len(tokens) else ("", "")
            after = tokens[i + 3] if i + 3 < len(tokens) else ("punct", "}")
            simple = after[0] == "punct" and after[1] in ",})"
            value: object = None
            if value_kind == "str" and simple:
                value = _unquote(value_text)
            elif value_kind == "ident" and value_text in ("true", "false") and simple:
                value = value_text == "true"
            yield _Entry(key, value, len(stack), _configures_docs(stack))
            pending_key = key
            i += 2
            continue
        elif kind == "str" and stack and stack[-1][0] == "[" and stack[-1][2] is None:
            stack[-1][2] = _unquote(text)
        i += 1
    if stack:
        raise ValueError("unbalanced brackets")


def _configures_docs(stack: list[list[object]]) -> bool:
    for _bracket, key, first_string in stack:
        if key == "docs":
            return True
        if isinstance(first_string, str) and first_string.endswith("content-docs"):
            return True
    return False
