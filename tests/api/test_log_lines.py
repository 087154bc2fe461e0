"""Every log line is one line: control characters from requests or upstream errors are escaped."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bookchat.logs import OneLineFormatter, configure_logging
from bookchat.redact import escape_controls
from tests.api.conftest import app_client

FORGED = "2026-12-01 10:00:00,000 INFO bookchat.access: GET /admin 200 1.0ms"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """bookchat's records as `bookchat serve` formats them, collected in a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(FORMAT))
    logger = logging.getLogger("bookchat")
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(before)


def test_serve_logs_through_the_one_line_formatter() -> None:
    root = logging.getLogger()
    level = root.level
    configure_logging("INFO")
    try:
        ours = [h for h in root.handlers if getattr(h, "_bookchat", False)]
        assert len(ours) == 1
        assert isinstance(ours[0].formatter, OneLineFormatter)
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_bookchat", False)]:
            root.removeHandler(handler)
        root.setLevel(level)


def test_escape_controls_names_every_control_character() -> None:
    assert escape_controls("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert escape_controls("\x1b[31mred\x00\x7f\x85") == "\\x1b[31mred\\x00\\x7f\\x85"
    assert escape_controls("line\u2028sep\u2029") == "line\\u2028sep\\u2029"
    assert escape_controls("a\u202eb\u2067c\u200f") == "a\\u202eb\\u2067c\\u200f"
    assert escape_controls("plain ünïcode — fine") == "plain ünïcode — fine"


async def test_a_newline_in_the_request_path_cannot_forge_an_access_line(
    make_settings, log_stream
) -> None:
    async with app_client(make_settings()) as (_, client):
        log_stream.truncate(0)
        await client.get("/api/%0a" + FORGED.replace(" ", "%20"))
    lines = [line for line in log_stream.getvalue().splitlines() if "bookchat.access" in line]
    assert len(lines) == 1, log_stream.getvalue()
    assert not lines[0].startswith(FORGED[:23])
    assert "\\n2026-12-01" in lines[0]


def test_an_exception_text_cannot_forge_a_line(log_stream) -> None:
    log = logging.getLogger("bookchat.test")
    try:
        raise RuntimeError(f"upstream said:\n{FORGED}")
    except RuntimeError as exc:
        log.warning("the answerer failed: %s", exc)
        log.exception("with its trace")
    text = log_stream.getvalue()
    assert not [line for line in text.splitlines() if line.startswith(FORGED[:23])]
    assert "the answerer failed: upstream said:\\n2026" in text
    # The trace keeps its lines, each indented under its record.
    trace = text.split("with its trace", 1)[1].splitlines()[1:]
    assert trace
    assert all(line.startswith("    ") for line in trace)
