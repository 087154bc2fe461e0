"""Where the Qdrant collection lives, and the embedded folder's lock and storage tuning."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from bookchat.stores.errors import DEFAULT_PORT

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient


@dataclass(slots=True)
class Location:
    """Where the collection lives, safe to show (no key)."""

    backend: Literal["embedded", "server"]
    url: str | None = None  # redacted
    path: str | None = None
    host_port: str | None = None


def host_port(url: str) -> str:
    """host:port as qdrant-client will dial it, for error messages."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or DEFAULT_PORT}"


def locked(lock_file: Path) -> bool:
    """Whether another process holds the embedded folder's lock (qdrant-client's portalocker)."""
    import portalocker

    if not lock_file.exists():
        return False
    with lock_file.open("r+") as handle:
        try:
            portalocker.lock(
                handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
            )
        except portalocker.exceptions.LockException:
            return True
        portalocker.unlock(handle)
    return False


def tune_embedded_storage(client: AsyncQdrantClient, collection: str) -> None:
    """WAL journal for local mode's SQLite file: it commits every point on its own, and with
    the default journal each commit waits for the disk (20 of 26 s when ingesting 2,000
    chunks here; 4 s with WAL). With synchronous=NORMAL a power cut can lose the last
    commits but never corrupts the file, and ingestion is idempotent: re-run it.
    Reaches into qdrant-client's local mode; if that changes, ingestion is only slower."""
    import sqlite3

    local = getattr(client, "_client", None)
    entry = getattr(local, "collections", {}).get(collection)
    connection = getattr(getattr(entry, "storage", None), "storage", None)
    if isinstance(connection, sqlite3.Connection):
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
