"""Docusaurus Markdown/MDX to prose: front matter, fenced code, headings, MDX syntax removed.

A line scanner, not a full CommonMark parser: it handles what decides where text belongs
(fences, ATX headings, MDX ESM, JSX tags, admonitions) and leaves inline Markdown as written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from bookchat.fences import FENCE_OPEN, fence_end

# libyaml's safe loader when PyYAML was built with it: five times faster on big books.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FrontMatterError(ValueError):
    """The front matter block is not valid YAML mapping."""


def split_front_matter(text: str) -> tuple[dict[str, object], str]:
    """Return (front matter, body); a file without a leading `---` block has none."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].rstrip() == "---":
            break
    else:
        raise FrontMatterError("front matter opened with --- is never closed")
    raw = "\n".join(lines[1:end])
    try:
        data = yaml.load(raw, Loader=_YAML_LOADER) if raw.strip() else {}  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FrontMatterError(f"invalid YAML front matter{where}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter is not a YAML mapping of keys to values")
    # Keep the body's line numbering meaningful: blank lines where the front matter was.
    return data, "\n" * end + "\n".join(lines[end + 1 :])


@dataclass(frozen=True, slots=True)
class Heading:
    """An ATX heading as written (inline Markdown kept) and its level 1..6; or an HTML heading
    (`<h3 id="jdk">Node, JDK</h3>` on a line of its own, as React Native's partials write them),
    whose anchor is its own id attribute or none: MDX gives a raw HTML heading no slug."""

    level: int
    raw: str
    html: bool = False
    html_id: str | None = None


@dataclass(frozen=True, slots=True)
class Block:
    """A stretch of prose or a fenced code block between headings."""

    text: str
    code: bool


_HEADING = re.compile(r"^ {0,3}(?P<marks>#{1,6})(?:[ \t]+(?P<text>.*?))?[ \t]*$")
# An HTML heading alone on its line; its text may hold inline tags (stripped with the prose).
_HTML_HEADING = re.compile(
    r"^[ \t]*<h(?P<level>[1-6])(?P<attrs>(?:\s[^>]*)?)>(?P<text>.*?)</h(?P=level)\s*>[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ID_ATTRIBUTE = re.compile(r"""\bid\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""")
# What an HTML heading line becomes until the prose's tags are stripped: NUL never reaches here
# from a page (it cannot be stored), so the marker cannot be forged by a book's text.
_HTML_MARK = "\x00"
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_ESM = re.compile(r"^(?:import|export)(?=[\s{*])")
_ADMONITION = re.compile(
    r"^[ \t]*:{3,}(?:(?P<kind>[A-Za-z][\w-]*)(?:\[(?P<bracket>[^\]]*)\]|[ \t]+(?P<title>.*))?)?"
    r"[ \t]*(?:\{[^}]*\})?[ \t]*$"
)
_COMMENTS = re.compile(r"\{/\*.*?\*/\}|<!--.*?-->", re.DOTALL)
_NOT_BLANK_LINE = r"(?:(?!\n[ \t]*\n)[^`])"
_JS_STRING = r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`"""


def _js_braces(depth: int) -> str:
    """A `{…}` JavaScript expression nested up to `depth` deep, its strings read as strings
    (`header={'apps: {'}` holds one brace pair). Python's re has no recursion, hence the
    unrolling; every alternative starts with a different character, so matching stays linear."""
    inner = rf"""[^{{}}"'`]|{_JS_STRING}"""
    if depth > 1:
        inner += "|" + _js_braces(depth - 1)
    return rf"\{{(?:{inner})*\}}"


# A JSX tag's attributes. Real pages nest objects in them: ionic's
# `<Playground code={{ angular: { files: { … } } }} />` is four deep; eight covers any seen.
_JSX_ATTRS = rf"""(?:[^<>{{}}"'`]|"[^"]*"|'[^']*'|{_js_braces(8)})*"""
_INLINE = re.compile(
    rf"(?P<code>(?<!`)(?P<ticks>`+)(?!`){_NOT_BLANK_LINE}+?(?<!`)(?P=ticks)(?!`))"
    rf"|(?P<tag></?[A-Za-z][\w.:-]*(?:\s{_JSX_ATTRS})?/?>|</?>)",
    re.DOTALL,
)


# A ```mdx-code-block fence holds MDX that Docusaurus renders (it exists so that MDX survives
# Crowdin and prettier); its content is the page's prose, not code.
_MDX_CODE_BLOCK = "mdx-code-block"


def _is_mdx_code_block(line: str) -> bool:
    fence = FENCE_OPEN.match(line)
    return bool(fence) and fence.group("info").strip() == _MDX_CODE_BLOCK  # type: ignore[union-attr]


def unwrap_mdx_code_blocks(body: str) -> str:
    """Replace each ```mdx-code-block fence by its content, left as MDX."""
    if _MDX_CODE_BLOCK not in body:
        return body
    lines = body.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        end = fence_end(lines, i)
        if end is None:
            out.append(lines[i])
            i += 1
            continue
        if _is_mdx_code_block(lines[i]):
            closed = end > i and end < len(lines) and lines[end].strip().startswith(("`", "~"))
            inner = lines[i + 1 : end if closed else end + 1]
            # The content is MDX again: nested fences in it are real code or MDX once more.
            out.extend(unwrap_mdx_code_blocks("\n".join(inner)).split("\n"))
        else:
            out.extend(lines[i : end + 1])
        i = end + 1
    return "\n".join(out)


# `import Name from './_partial.mdx'`: a default import of a Markdown file is a component that
# renders that file where <Name /> is used.
_PARTIAL_IMPORT = re.compile(
    r"""\bimport\s+(?P<name>[A-Za-z_$][\w$]*)\s+from\s+(?P<q>['"])(?P<spec>(?:(?!(?P=q)).)+?\.mdx?)(?P=q)"""
)


def inline_partials(body: str, load: Callable[[str], str | None]) -> str:
    """Put each imported Markdown partial's body where its component is used.

    `load(spec)` returns the partial's body (front matter removed, its own partials already
    inlined) or None when it cannot be read; code blocks are left alone.
    """
    if "import" not in body:
        return body
    lines = body.split("\n")
    partials: dict[str, str] = {}
    code: set[int] = set()
    i = 0
    while i < len(lines):
        end = fence_end(lines, i)
        if end is not None:
            code.update(range(i, end + 1))
            i = end + 1
            continue
        if not _ESM.match(lines[i]):
            i += 1
            continue
        # An ESM block runs to the next blank line and may hold several imports per line.
        start = i
        while i < len(lines) and lines[i].strip():
            i += 1
        for match in _PARTIAL_IMPORT.finditer("\n".join(lines[start:i])):
            # A JavaScript string: `'./\_x.md'` is `./_x.md` (escaped for prettier's sake).
            spec = re.sub(r"\\(.)", r"\1", match.group("spec"))
            if match.group("name") not in partials and (text := load(spec)) is not None:
                partials[match.group("name")] = text
    if not partials:
        return body
    usage = re.compile(
        rf"<(?P<name>{'|'.join(map(re.escape, partials))})(?:\s{_JSX_ATTRS})?"
        rf"(?:/>|>(?:(?!</(?P=name)>).)*</(?P=name)>)",
        re.DOTALL,
    )
    out: list[str] = []
    for number, line in enumerate(lines):
        if number in code or "<" not in line:
            out.append(line)
            continue
        # A partial is block content: it gets blank lines around it, keeping its indentation.
        indent = line[: len(line) - len(line.lstrip())]

        def render(match: re.Match[str], indent: str = indent) -> str:
            text = _with_props(partials[match.group("name")].strip("\n"), match.group(0))
            return "\n\n" + "\n".join(indent + t if t else t for t in text.split("\n")) + "\n\n"

        out.append(usage.sub(render, line) if line.strip() else line)
    return "\n".join(out)


# `<Greeting name="Ada" />` renders the partial with `props.name` = "Ada" (Docusaurus's
# "Importing Markdown" pattern: `Hello {props.name}` in the partial). String values only.
_STRING_ATTRIBUTE = re.compile(
    r"""(?P<key>[A-Za-z_$][\w$-]*)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'"""
    r"""|\{\s*(?:"(?P<jdq>[^"]*)"|'(?P<jsq>[^']*)'|`(?P<jbq>[^`$]*)`)\s*\})"""
)
# `${props.x}` in a template literal interpolates the same value.
_PROPS_EXPRESSION = re.compile(r"\$?\{\s*props\.(?P<key>[A-Za-z_$][\w$]*)\s*\}")


def _with_props(text: str, usage: str) -> str:
    """The partial's `{props.x}` outside code replaced by the usage's x="…" (React renders a
    missing prop as nothing)."""
    if "props." not in text:
        return text
    tag = re.match(rf"<[\w.$]+(?:\s{_JSX_ATTRS})?/?>", usage)
    given: dict[str, str] = {}
    for found in _STRING_ATTRIBUTE.finditer(tag.group(0) if tag else ""):
        value = next(v for v in found.group("dq", "sq", "jdq", "jsq", "jbq") if v is not None)
        given.setdefault(found.group("key"), value)
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        end = fence_end(lines, i)
        if end is not None:  # fenced code shows `{props.x}` as written
            out.extend(lines[i : end + 1])
            i = end + 1
            continue
        out.append(_PROPS_EXPRESSION.sub(lambda m: given.get(m.group("key"), ""), lines[i]))
        i += 1
    return "\n".join(out)


_TAB_ITEM = re.compile(rf"<TabItem(?P<attrs>\s{_JSX_ATTRS})?>")
_ATTRIBUTE = re.compile(
    r"""\b(?P<key>label|value)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'"""
    r"""|\{\s*(?:"(?P<jdq>[^"]*)"|'(?P<jsq>[^']*)'|`(?P<jbq>[^`$]*)`)\s*\})"""
)


def _tab_label(match: re.Match[str]) -> str:
    """`<TabItem value="npm" label="npm">` -> a paragraph `npm:` (shown: label, else value)."""
    found: dict[str, str] = {}
    for attr in _ATTRIBUTE.finditer(match.group("attrs") or ""):
        value = next(v for v in attr.group("dq", "sq", "jdq", "jsq", "jbq") if v is not None)
        found.setdefault(attr.group("key"), value)
    label = (found.get("label") or found.get("value") or "").strip()
    if not label:
        return ""
    return f"\n\n{label if label.endswith(':') else label + ':'}\n\n"


def _html_heading_mark(match: re.Match[str]) -> str:
    found = _ID_ATTRIBUTE.search(match.group("attrs"))
    html_id = next((v for v in found.group("dq", "sq") if v is not None), "") if found else ""
    mark = _HTML_MARK
    return f"{mark}{match.group('level')}{mark}{html_id.strip()}{mark}{match.group('text')}"


def _strip_tags(prose: str) -> str:
    """Drop JSX/HTML tags (keeping the text between them) but never inside inline code."""
    if "<" not in prose:
        return prose
    return _INLINE.sub(lambda m: m.group("code") or "", prose)


def scan(body: str) -> list[Heading | Block]:
    """Split a Markdown/MDX body into headings and blocks of cleaned prose or code."""
    body = unwrap_mdx_code_blocks(body.replace("\r\n", "\n").replace("\r", "\n"))
    lines = body.split("\n")
    events: list[Heading | Block] = []
    prose: list[str] = []

    def flush_prose() -> None:
        if prose:
            events.extend(_prose_events("\n".join(prose)))
            prose.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        end = fence_end(lines, i)
        if end is not None:
            flush_prose()
            events.append(Block("\n".join(lines[i : end + 1]), code=True))
            i = end + 1
            continue
        if _ESM.match(line):
            # MDX ESM (import/export) runs until a blank line; it is code, not prose.
            while i < len(lines) and lines[i].strip():
                i += 1
            continue
        prose.append(line)
        i += 1
    flush_prose()
    return events


def _prose_events(prose: str) -> list[Heading | Block]:
    if "<!--" in prose or "{/*" in prose:
        prose = _COMMENTS.sub("", prose)
    if "<TabItem" in prose:
        prose = _TAB_ITEM.sub(_tab_label, prose)
    if "<h" in prose or "<H" in prose:
        prose = _HTML_HEADING.sub(_html_heading_mark, prose.replace(_HTML_MARK, ""))
    cleaned = _strip_tags(prose)
    events: list[Heading | Block] = []
    current: list[str] = []

    def flush() -> None:
        # Headings are decoded by inline_text; decoding them here too would decode twice.
        text = _tidy(_decode_entities("\n".join(current)))
        if text:
            events.append(Block(text, code=False))
        current.clear()

    for line in cleaned.split("\n"):
        if line.startswith(_HTML_MARK):
            flush()
            level, html_id, text = line[1:].split(_HTML_MARK, 2)
            if text.strip():
                events.append(Heading(int(level), text.strip(), html=True, html_id=html_id or None))
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            text = _CLOSING_HASHES.sub("", heading.group("text") or "").strip()
            events.append(Heading(len(heading.group("marks")), text))
            continue
        admonition = _ADMONITION.match(line)
        if admonition:
            # The fence lines go; an admonition's title is prose and stays.
            title = admonition.group("bracket") or admonition.group("title")
            current.extend(["", title.strip(), ""] if title and title.strip() else [""])
            continue
        current.append(line)
    flush()
    return events


# A character reference as CommonMark reads one: named, decimal or hex, always with its `;`
# (`&copy=2` in a URL stays as written, unlike html.unescape's legacy names).
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)


def _decode_entities(prose: str) -> str:
    """`&nbsp;`, `&copy;`, `&#8212;` as the characters a reader sees, except in inline code."""
    if "&" not in prose:
        return prose
    out: list[str] = []
    start = 0
    for span in _CODE_SPAN.finditer(prose):
        out.append(_ENTITY.sub(_entity, prose[start : span.start()]))
        out.append(span.group())
        start = span.end()
    out.append(_ENTITY.sub(_entity, prose[start:]))
    return "".join(out)


def _entity(match: re.Match[str]) -> str:
    decoded = html.unescape(match.group())
    # A non-breaking space reads, embeds and tokenises as a space.
    return decoded.replace("\xa0", " ")


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")
_CODE = re.compile(r"(`+)(.+?)\1")
_EMPHASIS = (
    re.compile(r"\*\*(.+?)\*\*"),
    re.compile(r"(?<!\w)__(.+?)__(?!\w)"),
    re.compile(r"\*(.+?)\*"),
    re.compile(r"(?<!\w)_(.+?)_(?!\w)"),
    re.compile(r"~~(.+?)~~"),
)
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def inline_text(markdown: str) -> str:
    """The text a reader sees for inline Markdown (mdast `toString`): no markup, no tags."""
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(match.group(2).strip() if match.group(2).strip() else match.group(2))
        return f"\x00{len(codes) - 1}\x00"

    text = _CODE.sub(keep_code, markdown)
    text = _strip_tags(text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    text = html.unescape(_ESCAPE.sub(r"\1", text))
    text = re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], text)
    return text.strip()


def paragraphs(text: str) -> list[str]:
    """Split text at blank lines, keeping each fenced code block whole."""
    out: list[str] = []
    current: list[str] = []
    lines = text.split("\n")
    i = 0

    def flush() -> None:
        if current:
            out.append("\n".join(current))
            current.clear()

    while i < len(lines):
        line = lines[i]
        end = fence_end(lines, i)
        if end is not None:
            flush()
            out.append("\n".join(lines[i : end + 1]))
            i = end + 1
            continue
        if line.strip():
            current.append(line)
        else:
            flush()
        i += 1
    flush()
    return out
