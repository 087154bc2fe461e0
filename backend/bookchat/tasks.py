"""Ending a helper task that reads a stream for another: one rule for the answer's two."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import anyio


async def cancel_and_settle(task: asyncio.Task[Any]) -> None:
    """Cancel the task if it still runs and wait for its clean-up, then retrieve its error.

    The clean-up (closing an HTTP stream, storing a partial answer) ends before the caller
    does: a second cancellation of the caller by a cancel scope (how the server's task groups
    cancel a response) does not cut it short. The error is retrieved
    so that an unread one is not logged as lost; raising it is the caller's choice.
    """
    if not task.done():
        task.cancel()
        with anyio.CancelScope(shield=True), contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({task})
    if task.done() and not task.cancelled():
        task.exception()
