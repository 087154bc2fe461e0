"""One access line per request (method, path, status, latency); no bodies or secrets at INFO."""

from __future__ import annotations

import logging
import re

import pytest

from bookchat.logs import configure_logging
from tests.api.conftest import app_client

PRIVATE = "my-private-question-8842"
KEY = "AIzaFAKE-logs-test-key-3b7e"
QUIETED = ("httpx", "httpx2", "httpcore", "google_genai", "uvicorn.access", "urllib3")


@pytest.fixture
def served_logging():
    """Logging as `bookchat serve` sets it up, undone afterwards."""
    root = logging.getLogger()
    before = root.level
    quieted = {name: logging.getLogger(name).level for name in QUIETED}
    configure_logging("INFO")
    yield
    for handler in [h for h in root.handlers if getattr(h, "_bookchat", False)]:
        root.removeHandler(handler)
    root.setLevel(before)
    for name, level in quieted.items():
        logging.getLogger(name).setLevel(level)


async def test_one_access_line_per_request_without_bodies_or_secrets(
    make_settings, fake_gemini, served_logging, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake_gemini.base_url)
    async with app_client(settings) as (_, client):
        caplog.clear()
        await client.get("/api/health?token=query-secret-991")
        await client.post("/api/chat", json={"message": f"What is {PRIVATE}?"})
        await client.post("/api/chat", json={"message": ""})
    access = [r.getMessage() for r in caplog.records if r.name == "bookchat.access"]
    assert len(access) == 3, access
    assert re.fullmatch(r"GET /api/health 200 \d+\.\dms", access[0])
    assert re.match(r"POST /api/chat 200 \d+\.\dms \(headers after \d+\.\dms\)", access[1])
    assert re.fullmatch(r"POST /api/chat 422 \d+\.\dms", access[2])
    assert PRIVATE not in caplog.text
    assert "query-secret-991" not in caplog.text
    assert KEY not in caplog.text


def test_log_level_is_honoured() -> None:
    root = logging.getLogger()
    before = root.level
    try:
        configure_logging("WARNING")
        assert root.level == logging.WARNING
        assert logging.getLogger("bookchat.access").getEffectiveLevel() == logging.WARNING
        configure_logging("DEBUG")
        assert root.level == logging.DEBUG
        # Idempotent: one bookchat handler however often it runs.
        assert sum(getattr(h, "_bookchat", False) for h in root.handlers) == 1
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_bookchat", False)]:
            root.removeHandler(handler)
        root.setLevel(before)


def test_configured_secrets_are_masked_in_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = root.level
    try:
        configure_logging("INFO", secrets=[KEY])
        log = logging.getLogger("some.library")
        log.warning("calling https://api.example/v1?key=%s", KEY)
        try:
            raise RuntimeError(f"refused for {KEY}")
        except RuntimeError:
            log.exception("it failed")
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_bookchat", False)]:
            root.removeHandler(handler)
        root.setLevel(before)
    err = capsys.readouterr().err
    assert "calling https://api.example/v1?key=***" in err
    assert "RuntimeError: refused for ***" in err  # the traceback too
    assert KEY not in err
