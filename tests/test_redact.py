"""The one redaction module: configured secrets, URL credentials and query keys never leave."""

from __future__ import annotations

from bookchat.config import Settings
from bookchat.redact import describe, redact, redact_all, redact_url, scrub

KEY = "AIzaFAKE-redact-key-51c2"


def test_configured_secrets_are_masked_longest_first() -> None:
    assert redact(f"a {KEY} and {KEY[:8]}", [KEY[:8], KEY]) == "a *** and ***"


def test_url_userinfo_and_query_keys_are_masked_without_being_configured() -> None:
    text = "postgresql://reader:hunter22@db.example/books and https://x.example/?api_key=abc&v=1"
    assert (
        redact(text) == "postgresql://***@db.example/books and https://x.example/?api_key=***&v=1"
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


def test_credentials_are_masked_in_every_form_an_upstream_echoes_them() -> None:
    # Shapes seen in Google, Qdrant and HTTP client errors; none of these was configured.
    google = "AIzaSyD-" + "x" * 31
    cases = {
        "Consumer 'api_key:sk-live-123' has been suspended": "Consumer 'api_key:***' has been",
        "GET /collections?api-key=qk-456 failed": "api-key=***",
        "header api-key: qk-789 rejected": "api-key: ***",
        "Authorization: Bearer eyJhbGciOi.J9.x_y rejected": "Bearer ***",
        "https://user:pw@q.example:6333/x": "https://***@q.example:6333/x",
        f"the key {google} is invalid": "the key *** is invalid",
        "x-goog-api-key=abc&alt=sse": "x-goog-api-key=***&alt=sse",
    }
    for text, expected in cases.items():
        masked = redact(text)
        assert expected in masked, masked
    for secret in ("sk-live-123", "qk-456", "qk-789", "eyJhbGciOi", "user:pw", google):
        assert all(secret not in redact(text) for text in cases)


def test_scrub_hides_where_things_are_and_keeps_the_cause() -> None:
    text = (
        'password authentication failed for user "reader" at db.internal.example:5432 '
        "(10.1.2.3, [fd00::7]:5432, fd00::8) reading /var/lib/bookchat/q.sqlite "
        "via https://q.example/c?key=k1 at 12:30:45"
    )
    scrubbed = scrub(text)
    assert scrubbed == (
        'password authentication failed for user "<hidden>" at <host> '
        "(<host>, <host>, <host>) reading <path> via <url> at 12:30:45"
    )


def test_describe_scrubs_upstream_text_for_the_log() -> None:
    exc = RuntimeError("Consumer 'api_key:sk-9' suspended by https://gen.example/v1 for 10.0.0.9")
    assert describe(exc) == "RuntimeError: Consumer 'api_key:***' suspended by <url> for <host>"


def test_text_built_to_make_the_patterns_backtrack_is_scrubbed_in_one_pass() -> None:
    # A stranger chooses the request path that every access-log line runs through redact().
    # With a backtracking pattern each of these 256 KB strings took minutes (quadratic: 3.6 s
    # at 16 KB); linear patterns read each once.
    shapes = ("a-", "1.", "api-key", "a-b.c:1/", 'user "', "bearer ", ":a", "[a")
    for shape in shapes:
        text = shape * (256_000 // len(shape))
        assert len(scrub(text)) > 0
        assert len(redact(text)) > 0
