"""Where the Qdrant collection lives, and the embedded folder's lock and storage tuning."""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal
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
    if not lock_file.exists():
        return False
    probe = FolderLock(lock_file)
    if not probe.acquire():
        return True
    probe.release()
    return False


class FolderLock:
    """The embedded folder's lock, held without opening local mode: the same file and the same
    exclusive portalocker lock qdrant-client takes, so `bookchat ingest` (and local mode) finds
    the folder in use while a server reads its snapshot.

    shared: a reader's lock (`bookchat serve`'s worker processes each hold one, and so does
    their parent): readers coexist, while an exclusive lock, a writer's, is refused as long as
    any reader holds one.
    """

    def __init__(self, lock_file: Path, *, shared: bool = False) -> None:
        self._file = lock_file
        self._mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        if not self._file.exists():
            self._file.write_text("tmp lock file")  # what local mode writes in a new one
        handle = self._file.open("r+")
        try:
            # portalocker's lock on POSIX is this flock (its LOCKER); importing portalocker
            # costs 85 ms (importlib.metadata), the call is the same.
            fcntl.flock(handle, self._mode | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        """Let go (before local mode takes the same lock in this process, or at close)."""
        if self._handle is None:
            return
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None


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
