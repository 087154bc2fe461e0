"""Opening Qdrant: embedded local mode under BOOKCHAT_DATA_DIR, or a server at QDRANT_URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from bookchat.stores.errors import DEFAULT_PORT, StoreUnavailable

if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient

    from bookchat.config import Settings


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


def open_client(settings: Settings, *, timeout: float) -> tuple[AsyncQdrantClient, Location]:
    """Embedded Qdrant under BOOKCHAT_DATA_DIR, or the server at QDRANT_URL."""
    from qdrant_client import AsyncQdrantClient

    from bookchat.redact import redact_url

    if settings.qdrant_url is None:
        path = settings.qdrant_path
        in_use = StoreUnavailable(
            f"The embedded Qdrant in {path} is in use by another bookchat process "
            "(for example `bookchat serve`). Stop that process first, or run a Qdrant "
            "server and set QDRANT_URL so that several processes can share it."
        )
        try:
            path.mkdir(parents=True, exist_ok=True)
            # Probe the lock first: when qdrant-client finds it taken, it leaks the file.
            if locked(path / ".lock"):
                raise in_use
            # Opened in a worker thread (it reads every point) and used from the event loop
            # afterwards, never from two threads at once: where SQLite is built to refuse
            # a connection another thread opened (macOS), that check has to be off.
            client = AsyncQdrantClient(path=str(path), force_disable_check_same_thread=True)
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            raise in_use from None
        except OSError as exc:
            raise StoreUnavailable(
                f"The embedded Qdrant in {path} cannot be opened: {exc.strerror or exc}"
            ) from None
        location = Location(backend="embedded", path=str(path))
        tune_embedded_storage(client, settings.qdrant_collection)
    else:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        client = AsyncQdrantClient(
            url=settings.qdrant_url,
            api_key=api_key,
            timeout=max(1, round(timeout)),
            # The version probe runs in a thread at construction and only warns.
            check_compatibility=False,
        )
        location = Location(
            backend="server",
            url=redact_url(settings.qdrant_url),
            host_port=host_port(settings.qdrant_url),
        )
    return client, location
