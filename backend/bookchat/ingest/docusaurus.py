"""Read a Docusaurus docs tree into pages of sections, each with its public URL and anchor."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bookchat.ingest.markdown import (
    Block,
    FrontMatterError,
    Heading,
    inline_partials,
    inline_text,
    scan,
    split_front_matter,
    unwrap_mdx_code_blocks,
)
from bookchat.ingest.routes import (
    HeadingSlugger,
    doc_slug,
    page_url,
    split_custom_id,
    strip_number_prefix,
)
from bookchat.ingest.siteconfig import SiteConfig

DOC_EXTENSIONS = (".md", ".mdx")
CATEGORY_FILES = ("_category_.json", "_category_.yml", "_category_.yaml")


@dataclass(slots=True)
class Section:
    """The text under one heading; `headings` is the path of headings below the page title."""

    headings: tuple[str, ...]
    anchor: str | None
    text: str


@dataclass(slots=True)
class Page:
    """One routed doc: where it lives, what it is called, where it is served, what it says."""

    file: str  # path relative to the docs root, POSIX separators
    title: str
    url: str
    sections: list[Section]
    categories: tuple[str, ...] = field(default=())  # sidebar labels of the enclosing folders


def read_docs(
    docs_dir: Path, site: SiteConfig, *, site_dir: Path | None = None
) -> tuple[list[Page], list[tuple[str, str]]]:
    """Every routed page under `docs_dir`, plus (file, reason) for each file that was skipped.

    `site_dir` is where `@site/...` imports of partials point (default: the docs' parent).
    """
    if not docs_dir.is_dir():
        raise NotADirectoryError(f"docs folder not found: {docs_dir}")
    pages: list[Page] = []
    problems: list[tuple[str, str]] = []
    labels: dict[str, str] = {}
    for source, path in _doc_files(docs_dir, labels, problems):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            problems.append((source, f"cannot read file: {exc.strerror or exc}"))
            continue
        page_or_reason = parse_page(
            source, raw, site, path=path, site_dir=site_dir or docs_dir.parent
        )
        if isinstance(page_or_reason, str):
            problems.append((source, page_or_reason))
        elif page_or_reason is not None:
            page_or_reason.categories = _categories(source, labels)
            pages.append(page_or_reason)
    return pages, problems


def _doc_files(docs_dir: Path, labels: dict[str, str], problems: list[tuple[str, str]]):
    """Yield (relative POSIX path, path) of routed docs, skipping partials and hidden files.

    A symbolic link is followed only when it stays inside the docs folder: one pointing
    elsewhere (a home folder, /etc) would publish a file the owner never put in the book.
    """
    inside = docs_dir.resolve()
    for root, dirs, files in os.walk(docs_dir):
        # Docusaurus excludes `_`-prefixed partials and folders; globby skips dotfiles.
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        rel_root = Path(root).relative_to(docs_dir).as_posix()
        rel_root = "" if rel_root == "." else rel_root
        for name in sorted(files):
            if name in CATEGORY_FILES:
                _read_category(Path(root) / name, rel_root, labels, problems)
        for name in sorted(files):
            if name.startswith(("_", ".")) or not name.endswith(DOC_EXTENSIONS):
                continue
            source = f"{rel_root}/{name}" if rel_root else name
            path = Path(root) / name
            if path.is_symlink() and not _within(path, inside):
                problems.append((source, "a symbolic link to outside the docs folder; skipped"))
                continue
            yield source, path


def _within(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder)
    except (OSError, RuntimeError):  # a dangling link or a loop
        return False


def _read_category(path: Path, folder: str, labels: dict[str, str], problems) -> None:
    source = f"{folder}/{path.name}" if folder else path.name
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        problems.append((source, f"invalid category file: {exc}"))
        return
    if isinstance(data, dict) and isinstance(data.get("label"), str):
        labels[folder] = data["label"]


def _categories(source: str, labels: dict[str, str]) -> tuple[str, ...]:
    parts = source.split("/")[:-1]
    folders = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return tuple(labels.get(f, strip_number_prefix(f.rsplit("/", 1)[-1])) for f in folders)


def parse_page(
    source: str,
    raw: bytes,
    site: SiteConfig,
    *,
    path: Path | None = None,
    site_dir: Path | None = None,
) -> Page | str | None:
    """A page, or the reason the file is unusable (str), or None for a draft.

    With `path` (where the file is), imported Markdown partials are inlined where used.
    """
    if b"\x00" in raw:
        return "binary file, not Markdown"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {exc.start})"
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        front, body = split_front_matter(text)
        meta = _validate(front)
    except FrontMatterError as exc:
        return str(exc)
    if meta["draft"]:
        return None
    if path is not None:
        site_dir = site_dir or path.parent
        # Partials come from the book's own folder: the site folder, or the one holding both
        # it and the docs (a repository with docs/ beside website/). An import or a symlink
        # that leads elsewhere (a home folder, /etc) is not the book's and is not read.
        book = Path(os.path.commonpath([site_dir.resolve(), path.resolve()]))
        body = _with_partials(body, path, site_dir, book=book, seen=(path.resolve(),))
    slug = doc_slug(
        source,
        frontmatter_id=meta["id"],
        frontmatter_slug=meta["slug"],
        parse_number_prefixes=meta["parse_number_prefixes"],
    )
    title, sections = _sections(scan(body))
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    base_id = meta["id"] or (strip_number_prefix(stem) if meta["parse_number_prefixes"] else stem)
    return Page(
        file=source,
        title=meta["title"] or title or base_id,
        url=page_url(site, slug),
        sections=sections,
    )


def _validate(front: dict[str, object]) -> dict:
    """Check the front matter keys that decide routing, as Docusaurus's validation would."""
    meta: dict[str, object] = {}
    for key in ("id", "slug", "title", "sidebar_label"):
        value = front.get(key)
        if isinstance(value, bool) or (value is not None and not isinstance(value, str | int)):
            raise FrontMatterError(f"front matter `{key}` must be a string")
        meta[key] = str(value) if value is not None else None
    if meta["id"] and "/" in meta["id"]:
        raise FrontMatterError(f'front matter id "{meta["id"]}" cannot include a slash')
    for key, default in (("draft", False), ("unlisted", False), ("parse_number_prefixes", True)):
        value = front.get(key, default)
        if not isinstance(value, bool):
            raise FrontMatterError(f"front matter `{key}` must be true or false")
        meta[key] = value
    return meta


def _sections(events: list[Heading | Block]) -> tuple[str | None, list[Section]]:
    """Group blocks under headings; a `#` heading at the very top is the page title."""
    slugger = HeadingSlugger()
    title: str | None = None
    stack: list[tuple[int, str, str | None]] = []  # (level, text, anchor) of open headings
    sections: list[Section] = [Section((), None, "")]
    for position, event in enumerate(events):
        if isinstance(event, Heading):
            if event.html:
                # Its own id, else none: MDX neither slugs a raw HTML heading nor counts it in
                # the slugger's repeats.
                text, anchor = inline_text(event.raw).strip(), event.html_id
            else:
                text, custom_id = split_custom_id(inline_text(event.raw))
                text = text.strip()
                anchor = custom_id if custom_id is not None else slugger.slug(text)
            # Docusaurus's content title: an h1 before any other content (imports aside).
            if event.level == 1 and position == 0 and not event.html:
                title = text
                continue
            while stack and stack[-1][0] >= event.level:
                stack.pop()
            if anchor is None:
                # No anchor of its own: a citation opens the enclosing heading's, if any.
                anchor = next((a for _, _, a in reversed(stack) if a is not None), None)
            stack.append((event.level, text, anchor))
            sections.append(Section(tuple(t for _, t, _ in stack), anchor, ""))
            continue
        current = sections[-1]
        current.text = f"{current.text}\n\n{event.text}" if current.text else event.text
    return title, [s for s in sections if s.text.strip()]


# Partials inside partials are inlined too, this deep at most (and never in a cycle).
_PARTIAL_DEPTH = 5


def _with_partials(
    body: str, path: Path, site_dir: Path, *, book: Path, seen: tuple[Path, ...]
) -> str:
    """The MDX body with every imported .md/.mdx partial's prose put where it is used."""
    body = unwrap_mdx_code_blocks(body)

    def load(spec: str) -> str | None:
        if spec.startswith("@site/"):
            target = site_dir / spec[len("@site/") :]
        elif spec.startswith("."):
            target = path.parent / spec
        else:
            return None  # a package's file: not part of the book
        try:
            resolved = target.resolve()
            if resolved in seen or len(seen) > _PARTIAL_DEPTH or not resolved.is_relative_to(book):
                return None
            text = resolved.read_text(encoding="utf-8-sig")
            _front, partial = split_front_matter(text.replace("\r\n", "\n"))
        except (OSError, UnicodeDecodeError, FrontMatterError):
            return None
        return _with_partials(partial, resolved, site_dir, book=book, seen=(*seen, resolved))

    return inline_partials(body, load)
