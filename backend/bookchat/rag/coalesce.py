"""Join answer pieces that arrive faster than the reader takes them into one piece.

Every token event costs the server the same whatever its length (JSON and SSE encoding, a
hand-over between two tasks in api/sse.py, the middlewares, one socket write), and the reader
the same to parse. Under load, pieces pile up while the event loop serves other
streams; sending them as one event then costs one event instead of many. When the server
keeps up, every piece still goes out on its own, as soon as it arrives.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

from bookchat.tasks import cancel_and_settle

# Ten updates a second still read as a smooth stream, and above the gap between a fast model's
# pieces: a stream of one-word chunks every 20 ms goes out as about five words per event. A
# piece after a longer pause (a real model's chunk, the first token) goes out at once. 0.1 s
# rather than 0.05 s: a quarter less server CPU per answer with one reader (every event and
# every read of the reply wakes the process; backend/docs/benchmarks.md).
FLUSH_INTERVAL_SECONDS = 0.10
# Pieces due this soon go out now: a timer of a millisecond or two would only wake the server
# once more for nothing (the Gemini stream is itself read once per interval, so its pieces
# come due just about when they arrive).
FLUSH_SLACK = 0.2  # of the interval


class Interrupted(Exception):
    """The server is stopping: the answer ends here, after the pieces already read."""


class Stopping:
    """Set once when the server starts to stop; wakes every answer waiting for its next piece."""

    def __init__(self) -> None:
        self._set = False
        self._waiters: set[asyncio.Event] = set()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        for waiter in list(self._waiters):
            waiter.set()

    def watch(self, waiter: asyncio.Event) -> None:
        self._waiters.add(waiter)
        if self._set:
            waiter.set()

    def unwatch(self, waiter: asyncio.Event) -> None:
        self._waiters.discard(waiter)


async def coalesced(
    source: AsyncIterator[str],
    *,
    interval: float = FLUSH_INTERVAL_SECONDS,
    stopping: Stopping | None = None,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[str]:
    """The source's non-empty pieces, joined within `interval`; its errors re-raised.

    Once `stopping` is set, the pieces read so far go out and Interrupted is raised. Once
    `stop` is set (the reader pressed Stop), the pieces end there, without waiting for the
    source's next one; what was read and not yet sent is dropped, as never shown.
    """
    loop = asyncio.get_running_loop()
    last_sent = -math.inf
    pending: list[str] = []
    ready = asyncio.Event()

    async def pump() -> None:
        # The source is read (and closed) by this task alone: an async generator cannot be
        # closed from another task while it waits inside.
        try:
            async for piece in source:
                if piece:
                    pending.append(piece)
                    ready.set()
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    task = asyncio.create_task(pump())
    task.add_done_callback(lambda _: ready.set())
    if stopping is not None:
        stopping.watch(ready)
    # One waiter for the whole answer wakes the loop below on Stop (racing every piece against
    # the event cost a task and an asyncio.wait per piece).
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    if stopper is not None:
        stopper.add_done_callback(lambda _: ready.set())
    try:
        while True:
            if stop is not None and stop.is_set():
                return
            if stopping is not None and stopping.is_set():
                if pending:
                    text = "".join(pending)
                    pending.clear()
                    yield text
                raise Interrupted
            if pending:
                wait = last_sent + interval - loop.time()
                if wait > interval * FLUSH_SLACK and not task.done():
                    # What arrives meanwhile joins this event; the source's end flushes at once.
                    await asyncio.wait({task}, timeout=wait)
                text = "".join(pending)
                pending.clear()
                last_sent = loop.time()
                yield text
            elif task.done():
                task.result()  # the source's exception, after every piece sent before it
                return
            else:
                ready.clear()
                await ready.wait()
    finally:
        if stopping is not None:
            stopping.unwatch(ready)
        if stopper is not None:
            stopper.cancel()
        # The source's own clean-up (closing an HTTP stream) ends before we do.
        await cancel_and_settle(task)
