"""Shared fixtures: the fake Gemini and Qdrant servers and the conversation databases."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from bookchat.config import Settings
from tests.fakes.gemini import FakeGemini

if TYPE_CHECKING:
    from tests.fakes.qdrant import FakeQdrant

TEST_DATABASE_ENV = "BOOKCHAT_TEST_DATABASE_URL"
# The small book, its settings and an embedded store, for ingest, rag, providers and cli tests.
pytest_plugins = ["tests.books"]


# No test writes into the real user's data dir (~/.local/share/bookchat, bookchat's default):
# for the whole session, and afresh for each test, the default points into a throwaway folder.
def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="bookchat-tests-data-")


def pytest_sessionfinish(session: pytest.Session) -> None:
    shutil.rmtree(os.environ.get("XDG_DATA_HOME", ""), ignore_errors=True)


@pytest.fixture(autouse=True)
def _throwaway_data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture(scope="session")
def _fake_gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
def fake_gemini(_fake_gemini_server: FakeGemini) -> Iterator[FakeGemini]:
    """The session's fake Gemini server, with no recorded requests and an empty script."""
    _fake_gemini_server.reset()
    yield _fake_gemini_server
    _fake_gemini_server.reset()


@pytest.fixture(scope="session")
def _fake_qdrant_server() -> Iterator[FakeQdrant]:
    # qdrant-client and uvicorn load (~1 s) only in a session that uses the fake.
    from tests.fakes.qdrant import FakeQdrant

    with FakeQdrant() as server:
        yield server


@pytest.fixture
def fake_qdrant(_fake_qdrant_server: FakeQdrant) -> Iterator[FakeQdrant]:
    """The fake Qdrant server, empty; every body sent to it must be one Qdrant accepts."""
    _fake_qdrant_server.reset()
    yield _fake_qdrant_server
    rejected = _fake_qdrant_server.rejected
    _fake_qdrant_server.reset()
    assert not rejected, f"bodies a real Qdrant server would refuse: {rejected}"


def _libpq_url(url: str) -> str:
    """A plain postgresql:// URL psycopg can connect with (no SQLAlchemy driver suffix)."""
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def _with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    raw = os.environ.get(TEST_DATABASE_ENV, "").strip()
    if not raw:
        pytest.skip(f"{TEST_DATABASE_ENV} is not set")
    import psycopg

    schema = f"bookchat_test_{uuid.uuid4().hex[:12]}"
    admin_url = _libpq_url(raw)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(raw, schema)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """DATABASE_URL for a test: None (SQLite under BOOKCHAT_DATA_DIR) or an isolated PG schema."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def database_settings(database_url: str | None, tmp_path: Path) -> Settings:
    """Settings for a conversation store on SQLite (in tmp_path) or PostgreSQL."""
    values: dict[str, object] = {"BOOKCHAT_DATA_DIR": tmp_path / "data", "GEMINI_API_KEY": ""}
    values["DATABASE_URL"] = database_url or ""
    return Settings(**values)
