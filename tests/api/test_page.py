"""The chat page route without a browser: HTML, assets, content types, caching and the CSP."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from bookchat.api.page import (
    ASSET_TYPES,
    CONTENT_SECURITY_POLICY,
    WIDGET_SCRIPTS,
    content_security_policy,
    router,
)
from bookchat.app import create_app
from bookchat.config import Settings


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


@pytest.fixture
async def client():
    app = FastAPI()
    app.include_router(router)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://page.test"
    ) as client:
        yield client


async def test_page_is_html_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["require-trusted-types-for"] == ["'script'"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"


async def test_page_has_no_inline_script_style_or_handlers(client: httpx.AsyncClient) -> None:
    parsed = _parse((await client.get("/")).text)
    scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
    assert scripts, "the page loads its scripts"
    assert all(attrs.get("src", "").startswith("/static/") for attrs in scripts)
    assert parsed.script_text.strip() == ""
    assert not [tag for tag, _ in parsed.tags if tag == "style"]
    for tag, attrs in parsed.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag


async def test_page_has_the_chat_controls(client: httpx.AsyncClient) -> None:
    parsed = _parse((await client.get("/")).text)
    by_id = {attrs.get("id"): (tag, attrs) for tag, attrs in parsed.tags if attrs.get("id")}
    labels = {attrs.get("for") for tag, attrs in parsed.tags if tag == "label"}
    assert by_id["question"][0] == "textarea"
    assert by_id["context"][0] == "textarea"
    assert {"question", "context"} <= labels
    assert by_id["send"] == ("button", {"type": "submit", "id": "send"})
    assert by_id["announcer"][1]["aria-live"] == "polite"
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in (
        parsed.tags
    )


async def test_every_asset_is_served_with_its_type_and_a_versioned_url(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/")).text
    for name, media_type in ASSET_TYPES.items():
        match = re.search(rf'"/static/{re.escape(name)}\?v=([0-9a-f]+)"', html)
        assert match, f"{name} is linked from the page with a version"
        response = await client.get(f"/static/{name}?v={match.group(1)}")
        assert response.status_code == 200
        assert response.headers["content-type"] == media_type
        assert response.content == resources.files("bookchat.web").joinpath(name).read_bytes()
        assert "immutable" in response.headers["cache-control"]
        # A stale or missing version must not be cached for good.
        unversioned = await client.get(f"/static/{name}")
        assert unversioned.headers["cache-control"] == "no-cache"


async def test_unchanged_files_answer_304(client: httpx.AsyncClient) -> None:
    for path in ["/", "/static/app.js"]:
        first = await client.get(path)
        again = await client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""


@pytest.mark.parametrize(
    "path", ["/static/page.py", "/static/__init__.py", "/static/..%2Fapi%2Fpage.py", "/static/x"]
)
async def test_only_the_page_assets_are_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "def " not in response.text


async def test_head_requests_are_answered(client: httpx.AsyncClient) -> None:
    response = await client.head("/")
    assert response.status_code == 200
    assert response.content == b""


def test_scripts_never_parse_html() -> None:
    """Text reaches the page only as text nodes; no script uses an HTML-parsing sink."""
    web = Path(str(resources.files("bookchat.web")))
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"createContextualFragment|srcdoc|DOMParser|setHTML|parseHTMLUnsafe"
    )
    scripts = sorted(web.glob("*.js"))
    assert {p.name for p in scripts} >= {"app.js", "markdown.js", "chat.js", "embed.js"}
    for script in scripts:
        assert not sinks.findall(script.read_text()), script.name


async def test_the_app_serves_the_page(tmp_path: Path) -> None:
    app = create_app(Settings(BOOKCHAT_DATA_DIR=tmp_path, GEMINI_API_KEY=""))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://page.test"
    ) as client:
        response = await client.get("/")
        assert response.status_code == 200
        assert "Ask a question" in response.text
        assert "content-security-policy" in response.headers
        css = await client.get("/static/style.css")
        assert css.headers["content-type"] == "text/css; charset=utf-8"


async def test_widget_is_the_shared_sources_in_one_private_scope(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.headers["cache-control"] == "public, max-age=600"
    script = response.text
    web = resources.files("bookchat.web")
    # The page's renderer and conversation code, byte for byte, then the widget: no copy.
    positions = [script.index(web.joinpath(name).read_text()) for name in WIDGET_SCRIPTS]
    assert positions == sorted(positions)
    for name in ("chat.css", "embed.css"):
        assert json.dumps(web.joinpath(name).read_text())[1:-1] in script
    assert script.startswith("/* bookchat widget")
    assert script.rstrip().endswith("})({});")
    again = await client.get("/widget.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


async def test_frame_ancestors_are_configurable(tmp_path: Path) -> None:
    settings = Settings(
        BOOKCHAT_DATA_DIR=tmp_path,
        GEMINI_API_KEY="",
        BOOKCHAT_FRAME_ANCESTORS="https://docs.example.org, https://*.example.net",
    )
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://page.test"
    ) as client:
        policy = (await client.get("/")).headers["content-security-policy"]
    assert "frame-ancestors https://docs.example.org https://*.example.net;" in policy
    assert "huggingface.co" not in policy
    assert content_security_policy() == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'self' https://huggingface.co;" in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ["'none'"]),
        ("'none'", ["'none'"]),
        ("'self' https://docs.example.org/", ["'self'", "https://docs.example.org"]),
        ("https:", ["https:"]),
    ],
)
def test_frame_ancestors_values(value: str, expected: list[str]) -> None:
    assert Settings(BOOKCHAT_FRAME_ANCESTORS=value).frame_ancestors == expected


@pytest.mark.parametrize(
    "value",
    [
        "https://x.org; script-src *",  # a header injection
        "'none' https://x.org",
        "javascript:alert(1)",
        "docs.example.org",
        "'unsafe-inline'",
    ],
)
def test_bad_frame_ancestors_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="frame"):
        Settings(BOOKCHAT_FRAME_ANCESTORS=value)
