"""bookchat.tasks: a helper task is ended with its clean-up whole, whatever cancels the caller."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from bookchat.tasks import cancel_and_settle


async def test_the_clean_up_survives_a_second_cancellation_of_the_caller() -> None:
    steps: list[str] = []
    started = asyncio.Event()

    async def helper() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.05)
            steps.append("closed")

    task = asyncio.create_task(helper())
    await started.wait()

    scopes: list[anyio.CancelScope] = []

    async def caller() -> None:
        # As the response's task runs: in a task group's scope, cancelled when the reader leaves.
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await cancel_and_settle(task)

    ending = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    scopes[0].cancel()  # a second cancellation, while the helper cleans up
    await ending
    assert steps == ["closed"]
    assert task.cancelled()


async def test_a_finished_task_is_left_alone_and_its_error_not_raised() -> None:
    async def failing() -> None:
        raise RuntimeError("broke")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    await cancel_and_settle(task)  # retrieves the error, does not raise it
    with pytest.raises(RuntimeError, match="broke"):
        task.result()
