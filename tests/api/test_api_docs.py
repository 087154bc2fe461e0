"""FastAPI's docs pages: off by default; on, under a policy that allows their CDN and no more."""

from __future__ import annotations

import base64
import hashlib
import re

from tests.api.conftest import app_client


async def test_the_api_docs_are_off_by_default_and_the_schema_stays(make_settings) -> None:
    async with app_client(make_settings()) as (_, client):
        # /docs is the sample book's (a redirect to /docs/), never Swagger UI.
        book = await client.get("/docs", follow_redirects=True)
        redoc = await client.get("/redoc")
        moved = [await client.get(path) for path in ("/api/docs", "/api/redoc")]
        schema = await client.get("/openapi.json")
    # Nothing of Swagger or ReDoc anywhere, and so no CDN script on a public Space.
    for response in (redoc, *moved):
        assert response.status_code == 404
    for response in (book, redoc, *moved):
        assert "cdn.jsdelivr.net" not in response.text
        assert "swagger" not in response.text.lower()
    # The decision about /openapi.json: public, since it is the widget's contract.
    assert schema.status_code == 200
    assert "/api/chat" in schema.json()["paths"]


async def test_api_docs_on_are_served_under_a_policy_naming_only_their_scripts(
    make_settings,
) -> None:
    async with app_client(make_settings(BOOKCHAT_API_DOCS="on")) as (_, client):
        pages = [await client.get(path) for path in ("/api/docs", "/api/redoc")]
        book = await client.get("/docs/")  # the sample book keeps its routes
    assert book.status_code == 200
    for page in pages:
        assert page.status_code == 200
        assert "/openapi.json" in page.text
        policy = page.headers["content-security-policy"]
        directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
        assert directives["default-src"] == ["'none'"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in directives["script-src"]
        assert "'unsafe-eval'" not in directives["script-src"]
        # Every external script is on the one CDN the policy names; every inline one is hashed.
        for src in re.findall(r'<script[^>]*src="([^"]+)"', page.text):
            assert src.startswith("https://cdn.jsdelivr.net/"), src
        for inline in re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in directives["script-src"]
        assert page.headers["x-content-type-options"] == "nosniff"


async def test_every_response_says_nosniff_and_a_referrer_policy(make_settings) -> None:
    async with app_client(make_settings()) as (_, client):
        responses = [
            await client.get("/api/health"),
            await client.get("/nothing/here"),
            await client.post("/api/chat", content=b"{"),
            await client.post("/api/chat", json={"message": "What is bookchat?"}),
        ]
        page = await client.get("/")
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    # The page: its own strict policy, framable by itself and the Space page on huggingface.co.
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert (
        "frame-ancestors 'self' https://huggingface.co;" in page.headers["content-security-policy"]
    )
    assert "x-frame-options" not in page.headers  # it would forbid the Space's iframe
