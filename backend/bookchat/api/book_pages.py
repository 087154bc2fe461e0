"""The bundled sample book's pages, read-only, at their Docusaurus routes (`/docs/...`).

The sample book answers when no other book is indexed, and its citations are root-relative, so a
newcomer's first click on a citation opens the cited page here, at its anchor, instead of a
`docusaurus start` that is not running. The pages are rendered from the same reader that chunks
them (headings get the same anchors), as plain HTML with no script.
"""

from __future__ import annotations

import asyncio
import html
import re
from functools import cache

from fastapi import APIRouter, HTTPException, Response

from bookchat.api.deps import ReadyRuntimeDep
from bookchat.fences import fence_parts, is_code
from bookchat.ingest.docusaurus import Page, Section, read_docs
from bookchat.ingest.markdown import paragraphs
from bookchat.ingest.pipeline import SAMPLE_BOOK_ORIGIN
from bookchat.ingest.siteconfig import read_site_config
from bookchat.sample_book import sample_book_path

_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'"
_STYLE = (
    "body{font:16px/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}"
    "pre{background:#f4f4f4;padding:.75rem;overflow:auto}code{font-size:.9em}"
    "nav{font-size:.9em;margin-bottom:2rem}"
)
_INLINE_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


@cache
def _pages() -> dict[str, Page]:
    """Route path (no trailing slash) -> page; read once, the sample book ships with bookchat."""
    docs = sample_book_path()
    site = read_site_config(docs, site_url=SAMPLE_BOOK_ORIGIN)
    pages, _problems = read_docs(docs, site)
    return {page.url.rstrip("/") or "/": page for page in pages}


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = _INLINE_CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    # Links inside the book stay links; others too (they are the book's own, not a reader's).
    return _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', out)


def _block(paragraph: str) -> str:
    if is_code(paragraph):
        _opening, inner, _closing = fence_parts(paragraph)
        return f"<pre><code>{html.escape(chr(10).join(inner), quote=False)}</code></pre>"
    lines = paragraph.split("\n")
    if all(_LIST_ITEM.match(line) or line.startswith("  ") for line in lines):
        items = [_LIST_ITEM.sub("", line) for line in lines if _LIST_ITEM.match(line)]
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>"
    return f"<p>{_inline(' '.join(line.strip() for line in lines))}</p>"


def _section(section: Section) -> str:
    parts = []
    if section.headings:
        level = min(6, len(section.headings) + 1)
        anchor = f' id="{html.escape(section.anchor)}"' if section.anchor else ""
        parts.append(f"<h{level}{anchor}>{html.escape(section.headings[-1])}</h{level}>")
    parts.extend(_block(p) for p in paragraphs(section.text))
    return "\n".join(parts)


def render(page: Page) -> str:
    """One page as a standalone HTML document."""
    body = "\n".join(_section(s) for s in page.sections)
    title = html.escape(page.title)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{title} · bookchat sample book</title><style>{_STYLE}</style></head>"
        f"<body><nav><a href='/'>Ask the book</a> · the bookchat sample book</nav>"
        f"<h1>{title}</h1>\n{body}</body></html>"
    )


router = APIRouter()


@router.get("/docs/{route:path}", include_in_schema=False)
async def sample_book_page(route: str, runtime: ReadyRuntimeDep) -> Response:
    """A page of the bundled sample book, at the route Docusaurus would serve it."""
    if not await runtime.serves_sample_pages():
        raise HTTPException(
            status_code=404,
            detail="this server answers from another book; its pages are on the book's own site",
        )
    # The first request reads the sample book (tens of ms): off the event loop.
    pages = _pages() if _pages.cache_info().currsize else await asyncio.to_thread(_pages)
    page = pages.get(f"/docs/{route}".rstrip("/"))
    if page is None:
        raise HTTPException(status_code=404, detail="no such page in the sample book")
    return Response(
        render(page),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": _POLICY, "Cache-Control": "no-cache"},
    )
