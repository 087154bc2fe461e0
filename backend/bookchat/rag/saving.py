"""Answers the store could not take yet, and whether the store takes writes at all.

A reader who got a full answer should not lose it because the database blinked. A save that
still fails after its bounded retries waits here, in memory and bounded, and is retried in the
background until the store is back. The store's last write outcome is what /api/health reports
as `writable`: a full disk shows there, not only as failing chats.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_PENDING_SAVES = 200  # answers held while the store is down; past it they are lost (ERROR)
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 10.0

Save = Callable[[], Awaitable[None]]


@dataclass
class WriteState:
    """Whether the conversation store's last write failed for want of space."""

    failure: str | None = None
    since: float | None = None

    def succeeded(self) -> None:
        if self.failure is not None:
            log.warning("the conversation store takes writes again (it was %s)", self.failure)
        self.failure, self.since = None, None

    def failed(self, failure: str) -> None:
        # Only a full store is remembered: an unreachable one shows in the health ping anyway
        # (and would stay "failed" until the next chat), and one bad row says nothing.
        if failure != "full":
            return
        if self.failure != failure:
            self.since = time.time()
        self.failure = failure

    @property
    def writable(self) -> bool:
        return self.failure is None


@dataclass
class PendingSaves:
    """Saves waiting for the store, oldest first, retried by one background task."""

    limit: int = MAX_PENDING_SAVES
    _queue: collections.deque[tuple[str, Save]] = field(default_factory=collections.deque)
    _task: asyncio.Task[None] | None = None
    lost: int = 0

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, what: str, save: Save) -> bool:
        """Queue a save; False (and counted as lost) when the queue is full."""
        if len(self._queue) >= self.limit:
            self.lost += 1
            log.error(
                "%s is lost: %d answers already wait for the conversation store", what, self.limit
            )
            return False
        self._queue.append((what, save))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return True

    async def _drain(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while self._queue:
            await asyncio.sleep(delay)
            stored = 0
            while self._queue:
                _, save = self._queue[0]
                try:
                    await save()
                except Exception as exc:
                    log.warning(
                        "%d answer(s) still wait for the conversation store: %s",
                        len(self._queue),
                        type(exc).__name__,
                    )
                    break
                self._queue.popleft()
                stored += 1
            if stored:
                log.warning("stored %d answer(s) that waited for the conversation store", stored)
                delay = RETRY_FIRST_SECONDS
            else:
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def aclose(self, timeout: float) -> None:
        """One last try for what still waits (bounded), then say what is lost."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._queue:
                    _, save = self._queue[0]
                    try:
                        await save()
                    except Exception:
                        break
                    self._queue.popleft()
        if self._queue:
            log.error(
                "%d answer(s) were never stored: the conversation store did not come back "
                "before shutdown",
                len(self._queue),
            )
