"""The one retry policy: which errors count as transport failures, waits, limits and hints."""

from __future__ import annotations

import httpx
import httpx2
import pytest

from bookchat.retry import is_transport_error, retrying


class Flaky(Exception):
    pass


def test_both_http_stacks_and_oserror_are_transport_errors() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:1/")
    assert is_transport_error(httpx.ConnectError("refused", request=request))
    assert is_transport_error(httpx2.ConnectError("refused"))
    assert is_transport_error(ConnectionRefusedError())
    assert not is_transport_error(ValueError())


async def _run(policy, failures: int) -> int:
    calls = 0
    async for attempt in policy:
        with attempt:
            calls += 1
            if calls <= failures:
                raise Flaky
    return calls


def _policy(waits: list[float], **options):
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    options.setdefault("retry_on", lambda exc: isinstance(exc, Flaky))
    options.setdefault("initial", 1.0)
    options.setdefault("maximum", 4.0)
    return retrying(sleep=sleep, **options)


async def test_waits_are_full_jitter_under_an_exponential_cap() -> None:
    waits: list[float] = []
    calls = await _run(_policy(waits, attempts=None), failures=5)
    assert calls == 6
    bounds = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(0 <= w <= b for w, b in zip(waits, bounds, strict=True)), waits


async def test_the_last_error_is_raised_after_the_attempts() -> None:
    waits: list[float] = []
    with pytest.raises(Flaky):
        await _run(_policy(waits, attempts=3), failures=10)
    assert len(waits) == 2


async def test_other_errors_are_not_retried() -> None:
    waits: list[float] = []
    with pytest.raises(Flaky):
        await _run(_policy(waits, attempts=5, retry_on=lambda exc: False), failures=1)
    assert waits == []


async def test_a_hint_longer_than_the_budget_fails_at_once() -> None:
    waits: list[float] = []
    policy = _policy(waits, attempts=5, within=10.0, hint=lambda exc: 30.0)
    with pytest.raises(Flaky):
        await _run(policy, failures=1)
    assert waits == []


async def test_a_hint_is_a_lower_bound_on_the_wait() -> None:
    waits: list[float] = []
    calls = await _run(_policy(waits, attempts=3, hint=lambda exc: 7.5), failures=1)
    assert (calls, waits) == (2, [7.5])
