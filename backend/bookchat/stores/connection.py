"""Where the Qdrant collection lives, and the embedded folder's lock."""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urlsplit

from bookchat.stores.errors import DEFAULT_PORT, StoreUnavailable

# Local mode's lock file in the embedded folder: per process, never part of a prebuilt index.
LOCK_FILE = ".lock"


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


def folder_in_use(folder: Path) -> StoreUnavailable:
    """Another process holds the embedded folder's lock (whether ours or local mode's)."""
    return StoreUnavailable(
        f"The embedded Qdrant in {folder} is in use by another bookchat process "
        "(for example `bookchat serve`). Stop that process first, or run a Qdrant "
        "server and set QDRANT_URL so that several processes can share it."
    )


def cannot_open(folder: Path, exc: OSError) -> StoreUnavailable:
    """The embedded folder cannot be made or read (permissions, a full disk)."""
    return StoreUnavailable(
        f"The embedded Qdrant in {folder} cannot be opened: {exc.strerror or exc}"
    )
