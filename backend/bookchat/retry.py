"""The one retry policy for calls to the outside (Gemini answers and embeddings, start-up work).

Built on tenacity (kept, and already installed by google-genai) so every caller gets the same
backoff: exponential with full jitter (a wait drawn uniformly from 0 up to the exponential
bound), which spreads clients that failed together the most. A caller says which errors are
worth another attempt, how many attempts or how much time it has, and may honour a delay the
server asked for (a 429's RetryInfo).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    stop_never,
    wait_random_exponential,
)
from tenacity.stop import stop_base

Hint = Callable[[BaseException], float | None]
Sleep = Callable[[float], Awaitable[None]]


@functools.cache
def transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level failures of every HTTP stack in use: OSError, httpx's and httpx2's.

    google-genai 3.x talks through httpx2 by default (httpx only when given an httpx client),
    and httpx2.TransportError is not an httpx.TransportError: catching one alone misses the other.
    """
    errors: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        errors.append(module.TransportError)
    return tuple(errors)


def is_transport_error(exc: BaseException) -> bool:
    """Whether the call never got an answer (refused, unreachable, reset, timed out)."""
    return isinstance(exc, transport_errors())


def retrying(
    *,
    retry_on: Callable[[BaseException], bool],
    attempts: int | None,
    initial: float,
    maximum: float,
    within: float | None = None,
    hint: Hint | None = None,
    sleep: Sleep = asyncio.sleep,
    before_sleep: Callable[[RetryCallState], Any] | None = None,
) -> AsyncRetrying:
    """An `async for attempt in retrying(...): with attempt: ...` loop; the last error is raised.

    attempts: at most this many calls (None: until it succeeds). initial, maximum: the
    exponential bound on the n-th wait is min(maximum, initial * 2**(n-1)), and the wait is
    drawn from 0 up to it. within: no wait that would end past this many seconds from the
    first call (the error is raised at once instead). hint: a delay the server asked for; the
    wait is at least that long.
    """
    stops: list[stop_base] = []
    if attempts is not None:
        stops.append(stop_after_attempt(max(1, attempts)))
    if within is not None:
        stops.append(stop_before_delay(within))
    jittered = wait_random_exponential(multiplier=initial, max=maximum)

    def wait(state: RetryCallState) -> float:
        delay = jittered(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        asked = hint(error) if hint is not None and error is not None else None
        return max(delay, asked) if asked is not None else delay

    return AsyncRetrying(
        retry=retry_if_exception(retry_on),
        stop=stop_any(*stops) if stops else stop_never,
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
