"""The conversation database: engine (PostgreSQL via psycopg 3, or SQLite), sessions, ping."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bookchat.redact import redact_url
from bookchat.stores.errors import port_may_be_blocked

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

CONNECT_TIMEOUT_SECONDS = 10  # libpq's connect_timeout: a blocked port fails in bounded time
POOL_TIMEOUT_SECONDS = 10.0  # waiting for a free pooled connection
# Neon closes idle connections (it scales to zero): recycle well before and pre-ping always.
POOL_RECYCLE_SECONDS = 240
SQLITE_BUSY_TIMEOUT_MS = 5000


def create_engine(sqlalchemy_url: str) -> AsyncEngine:
    """An async engine for a SQLAlchemy URL, with pre-ping and bounded time-outs."""
    from sqlalchemy import event
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    url = make_url(sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, pool_pre_ping=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No server-side prepared statements: behind a transaction-mode pooler (Neon's "-pooler"
    # endpoints run PgBouncer) they can vanish between statements; the queries here are tiny.
    connect_args: dict[str, Any] = {"prepare_threshold": None}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return create_async_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_recycle=POOL_RECYCLE_SECONDS,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_size=5,
        max_overflow=5,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the health ping and readers proceed while an answer is being saved; the busy
    # timeout makes a writer wait for another instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for short units of work; objects stay readable after commit."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    return async_sessionmaker(engine, expire_on_commit=False)


def describe_target(engine: AsyncEngine) -> dict[str, Any]:
    """Backend name and a credential-free target (host:port/db or the SQLite file)."""
    url = engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        return {"backend": "sqlite", "target": url.database or ":memory:"}
    plain = url.render_as_string(hide_password=True)
    host = f"{url.host or 'localhost'}:{url.port or 5432}"
    return {"backend": backend, "target": redact_url(plain), "host": host}


async def ping(engine: AsyncEngine, *, timeout: float) -> dict[str, Any]:
    """A health entry for the database: status ok/down, backend, target, latency or detail."""
    from sqlalchemy import text

    entry: dict[str, Any] = describe_target(engine)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        entry.update(status="down", detail=_timeout_detail(entry, timeout))
        return entry
    except Exception as exc:
        entry.update(status="down", detail=_failure_detail(entry, exc))
        return entry
    entry.update(status="ok", latency_ms=round((time.monotonic() - started) * 1000, 1))
    return entry


def _timeout_detail(entry: dict[str, Any], timeout: float) -> str:
    if entry["backend"] == "sqlite":
        return f"SQLite did not answer within {timeout:g}s (the file may be locked)"
    host = entry["host"]
    detail = f"no answer from {host} within {timeout:g}s"
    port = int(host.rsplit(":", 1)[1])
    if port_may_be_blocked(host):
        detail += (
            f": outbound port {port} may be blocked (Hugging Face Spaces allow only ports 80, "
            "443 and 8080), or the server is asleep or unreachable"
        )
    return detail


def describe_failure(engine: AsyncEngine, exc: BaseException) -> str:
    """A failed connection or statement in a reader's words: where, and the likely cause."""
    return _failure_detail(describe_target(engine), exc)


def _failure_detail(entry: dict[str, Any], exc: BaseException) -> str:
    where = entry.get("host") or entry["target"]
    # psycopg's OperationalError wraps libpq's message; the original explains the cause.
    cause = getattr(exc, "orig", None) or exc
    # Only classified, never echoed: the text could name the user or the database.
    lowered = str(cause).lower()
    if "password authentication failed" in lowered or "authentication" in lowered:
        hint = "authentication failed: check the user and password in DATABASE_URL"
    elif "connection refused" in lowered:
        hint = "connection refused: is the server running and the port right?"
    elif "could not translate host name" in lowered or "name or service not known" in lowered:
        hint = "the host name does not resolve"
    elif "does not exist" in lowered:
        hint = "the database or role does not exist"
    elif "unable to open database file" in lowered or "readonly database" in lowered:
        hint = "the SQLite file cannot be written: is BOOKCHAT_DATA_DIR writable?"
    elif "database is locked" in lowered:
        hint = "the SQLite file is locked by another process"
    elif "ssl" in lowered:
        hint = "SSL negotiation failed: check sslmode in DATABASE_URL"
    elif "timeout" in lowered or "timed out" in lowered:
        hint = "the connection timed out: the port may be blocked or the server asleep"
    else:
        hint = type(cause).__name__
    return f"{where}: {hint}"


WriteFailure = Literal["full", "unavailable", "rejected"]
_SQLITE_FULL = ("database or disk is full", "disk i/o error")


def write_failure(exc: BaseException) -> WriteFailure:
    """Why a write failed: the storage is full, the store is unreachable, or it refused the row.

    "rejected" (a constraint or a value the database cannot hold) will fail again however often
    it is retried; the other two may pass once the disk has room or the server is back.
    """
    import errno

    from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError

    cause = getattr(exc, "orig", None) or exc
    lowered = str(cause).lower()
    sqlstate = getattr(cause, "sqlstate", None) or ""
    if (
        any(marker in lowered for marker in _SQLITE_FULL)
        or sqlstate in {"53100", "53200"}  # PostgreSQL disk_full, out_of_memory
        or "could not extend file" in lowered
        or "no space left on device" in lowered
        or (isinstance(cause, OSError) and cause.errno == errno.ENOSPC)
    ):
        return "full"
    if isinstance(exc, DataError | IntegrityError | ProgrammingError):
        return "rejected"
    return "unavailable"
