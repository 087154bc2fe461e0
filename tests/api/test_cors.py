"""CORS: exactly ALLOWED_ORIGINS; with none configured, no CORS header at all."""

from __future__ import annotations

from tests.api.conftest import app_client

BOOK = "https://book.example.org"
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type",
}


async def test_preflight_from_an_allowed_origin(make_settings) -> None:
    settings = make_settings(ALLOWED_ORIGINS=f"{BOOK}, http://localhost:3000")
    async with app_client(settings) as (_, client):
        preflight = await client.options("/api/chat", headers={"origin": BOOK, **PREFLIGHT})
        chat = await client.post("/api/chat", json={"message": "hi"}, headers={"origin": BOOK})
        error = await client.post("/api/chat", json={}, headers={"origin": BOOK})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == BOOK
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    assert chat.headers["access-control-allow-origin"] == BOOK
    # Errors carry the header too, so the widget can read their message.
    assert error.status_code == 422
    assert error.headers["access-control-allow-origin"] == BOOK


async def test_preflight_from_a_foreign_origin_is_refused(make_settings) -> None:
    async with app_client(make_settings(ALLOWED_ORIGINS=BOOK)) as (_, client):
        preflight = await client.options(
            "/api/chat", headers={"origin": "https://evil.example.com", **PREFLIGHT}
        )
        simple = await client.get("/api/health", headers={"origin": "https://evil.example.com"})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_no_origins_configured_means_no_cors_headers(make_settings) -> None:
    async with app_client(make_settings()) as (_, client):
        preflight = await client.options("/api/chat", headers={"origin": BOOK, **PREFLIGHT})
        chat = await client.post("/api/chat", json={"message": "hi"}, headers={"origin": BOOK})
    assert not any(h.startswith("access-control-") for h in preflight.headers)
    assert not any(h.startswith("access-control-") for h in chat.headers)
    assert preflight.status_code == 405  # no CORS layer: OPTIONS is not a route
