"""Where a command's data lives, in the words `serve`, `ingest` and `ask` print it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bookchat.config import Settings


def index_place(settings: Settings) -> str:
    """The collection and where it is: the embedded folder, or the server (no key, no user)."""
    collection = f"collection '{settings.qdrant_collection}'"
    if settings.qdrant_url is None:
        return f"{collection} in the embedded Qdrant at {settings.qdrant_path}"
    return f"{collection} on the Qdrant server at {_host_and_path(settings.qdrant_url)}"


def conversations_place(settings: Settings) -> str:
    """Where conversations are kept: the SQLite file, or the PostgreSQL host and database."""
    if settings.database_url is None:
        return f"SQLite at {settings.data_dir / 'bookchat.sqlite3'}"
    if settings.database_url.startswith("sqlite"):
        return f"SQLite at {settings.database_url.partition(':///')[2]}"
    return f"PostgreSQL at {_host_and_path(settings.database_url)}"


def _host_and_path(url: str) -> str:
    """scheme://host:port/path with no user, password or query: safe to print anywhere."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.split('+')[0]}://{parts.hostname}{port}{parts.path}"


def uses_data_dir(settings: Settings) -> bool:
    """Whether anything is kept in the data dir (embedded Qdrant or the default SQLite)."""
    embedded_here = settings.qdrant_url is None and settings.index_dir is None
    return embedded_here or settings.database_url is None


def data_dir_lines(settings: Settings) -> list[str]:
    """What `serve` prints first: where the index and the conversations are."""
    lines = []
    if uses_data_dir(settings):
        lines.append(f"data dir {settings.data_dir} (set BOOKCHAT_DATA_DIR to use another)")
    lines.append(f"index: {index_place(settings)}")
    lines.append(f"conversations: {conversations_place(settings)}")
    return lines + old_data_dir_note(settings)


def old_data_dir_note(settings: Settings) -> list[str]:
    """A note when ./.bookchat holds an index the current data dir is not."""
    old = Path(".bookchat").absolute()
    if settings.qdrant_url is None and (old / "qdrant").is_dir() and old != settings.data_dir:
        # Before the data dir was per user it was ./.bookchat; an index left there would
        # otherwise seem to have vanished.
        return [
            f"note: {old} (the data dir of earlier versions) is not used; "
            f"BOOKCHAT_DATA_DIR={old} uses it again"
        ]
    return []
