"""Which process answers a question, and whether that process is still alive.

Every server process (each of `bookchat serve`'s workers too) owns the questions it answers
under a random token (stores/conversation_models.py, AnsweringRow). A process that dies
mid-answer (SIGKILL, out of memory) leaves its rows behind; another process gives exactly
those questions their `failed` answer, and never a question a live process is answering.

Alive is told two ways:
- on one machine (one data dir), by a lock file per owner that the owner holds for its whole
  life: the kernel lets go of it the moment the process dies, however it dies, so a worker
  started in place of a killed one, or a restarted server, finds it free at once;
- for an owner whose file is not in this data dir (another machine sharing PostgreSQL, or a
  data dir it could not write), by the rows' `seen_at`, which the owner refreshes every
  HEARTBEAT_SECONDS while it answers: not refreshed for LEASE_SECONDS means dead.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
# Many missed heartbeats: a live process whose loop stalls or whose database blinks is not
# taken for dead (and if it were, its answer still replaces the `failed` one: conversations.py).
LEASE_SECONDS = 120.0
_SUFFIX = ".lock"


class AnswerOwner:
    """This process as the owner of the questions it answers, and the judge of other owners."""

    def __init__(self, folder: Path | None = None) -> None:
        self.token = uuid.uuid4().hex
        self._folder: Path | None = None
        self._fd: int | None = None
        if folder is not None:
            self._hold(folder)

    def _hold(self, folder: Path) -> None:
        # Locked under a temporary name, then renamed: a file under a final name is always
        # held by its live owner or left by a dead one, never free because it is being made.
        try:
            folder.mkdir(parents=True, exist_ok=True)
            making = folder / f".{self.token}.making"
            fd = os.open(making, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            log.warning(
                "cannot write %s (%s): questions this process leaves unanswered, if it dies, "
                "are marked failed only after %g s",
                folder,
                type(exc).__name__,
                LEASE_SECONDS,
            )
            return
        fcntl.flock(fd, fcntl.LOCK_EX)  # a new file nobody else has opened: never waits
        os.rename(making, folder / f"{self.token}{_SUFFIX}")
        self._folder, self._fd = folder, fd

    @property
    def folder(self) -> Path | None:
        """Where owners' lock files are, if this process holds one there."""
        return self._folder

    def dead(self, owner: str, seen_at: datetime, now: datetime) -> bool:
        """Whether the process that took a question (seen at `seen_at`) is gone."""
        if owner == self.token:
            return False
        held = self._held(owner)
        if held is not None:
            return not held
        return seen_at < now - timedelta(seconds=LEASE_SECONDS)

    def _held(self, owner: str) -> bool | None:
        """Whether the owner's lock file here is held; None if it has none here."""
        if self._folder is None or not owner.isalnum():
            return None
        try:
            fd = os.open(self._folder / f"{owner}{_SUFFIX}", os.O_RDWR)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # also lets go of the lock, if it was taken
        return False

    def forget(self, owners: Iterable[str]) -> None:
        """Remove the lock files of owners found dead, once their questions are marked."""
        for owner in owners:
            if self._folder is not None and owner.isalnum() and owner != self.token:
                with contextlib.suppress(OSError):
                    (self._folder / f"{owner}{_SUFFIX}").unlink()

    def prune(self, keep: Iterable[str]) -> int:
        """Remove the files of dead owners with nothing left to mark (they died idle); how many.

        `keep`: owners that still have questions, judged by the next sweep instead.
        """
        if self._folder is None:
            return 0
        kept = set(keep)
        gone = [
            path.name.removesuffix(_SUFFIX)
            for path in self._folder.glob(f"*{_SUFFIX}")
            if path.name.removesuffix(_SUFFIX) not in kept
            and self._held(path.name.removesuffix(_SUFFIX)) is False
        ]
        self.forget(gone)
        return len(gone)

    def close(self) -> None:
        """Let go at exit. The file stays: what this process could not store (a lost answer's
        question) is then found dead at once; the next start's prune removes it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
