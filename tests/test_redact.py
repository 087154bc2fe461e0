"""The one redaction module: configured secrets, URL credentials and query keys never leave."""

from __future__ import annotations

from bookchat.config import Settings
from bookchat.redact import describe, redact, redact_all, redact_url

KEY = "AIzaFAKE-redact-key-51c2"


def test_configured_secrets_are_masked_longest_first() -> None:
    assert redact(f"a {KEY} and {KEY[:8]}", [KEY[:8], KEY]) == "a *** and ***"


def test_url_passwords_and_query_keys_are_masked_without_being_configured() -> None:
    text = "postgresql://reader:hunter22@db.example/books and https://x.example/?api_key=abc&v=1"
    assert (
        redact(text)
        == "postgresql://reader:***@db.example/books and https://x.example/?api_key=***&v=1"
    )


def test_short_values_do_not_mask_ordinary_words() -> None:
    assert redact("a bad day", ["a"]) == "a bad day"


def test_describe_is_one_scrubbed_line() -> None:
    exc = ConnectionError(f"could not connect with {KEY}\nsecond line {KEY}")
    assert describe(exc, [KEY]) == "ConnectionError: could not connect with ***"
    assert describe(TimeoutError()) == "TimeoutError"
    assert len(describe(ValueError("x" * 1000))) == 300


def test_redact_all_walks_json_like_values() -> None:
    body = {"a": [f"k={KEY}", 3, {"b": KEY}], KEY: None}
    assert redact_all(body, [KEY]) == {"a": ["k=***", 3, {"b": "***"}], KEY: None}


def test_redact_url_keeps_only_where_the_service_is() -> None:
    url = "postgresql+psycopg://reader:pw@ep-x.neon.tech:5432/books?sslmode=require"
    assert redact_url(url) == "postgresql+psycopg://ep-x.neon.tech:5432/books"


def test_settings_know_their_secrets() -> None:
    settings = Settings(
        GEMINI_API_KEY=KEY,
        QDRANT_API_KEY="qdrant-key-99",
        DATABASE_URL="postgresql://u:db-pass-77@h/db",
    )
    assert set(settings.secrets()) == {KEY, "qdrant-key-99", "db-pass-77"}
    assert Settings(GEMINI_API_KEY="", QDRANT_API_KEY="", DATABASE_URL="").secrets() == ()
