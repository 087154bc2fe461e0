"""coalesced(): answer pieces waiting together go out as one; order, errors and closing hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bookchat.rag.coalesce import coalesced


async def test_pieces_that_arrive_apart_stay_apart() -> None:
    release = [asyncio.Event() for _ in range(3)]

    async def source() -> AsyncIterator[str]:
        for i, event in enumerate(release):
            await event.wait()
            yield f"p{i} "

    out = []
    release[0].set()
    async for text in coalesced(source()):
        out.append(text)
        if len(out) < 3:
            release[len(out)].set()  # the next piece exists only once this one was read
    assert out == ["p0 ", "p1 ", "p2 "]


async def test_pieces_that_pile_up_are_joined_in_order() -> None:
    async def source() -> AsyncIterator[str]:
        for i in range(10):
            yield f"w{i} "
            if i == 4:
                await asyncio.sleep(0.05)  # a pause: what came before goes out first

    pieces = coalesced(source())
    first = await anext(pieces)
    await asyncio.sleep(0.2)  # a busy reader: the rest piles up meanwhile
    rest = [text async for text in pieces]
    assert "".join([first, *rest]) == "".join(f"w{i} " for i in range(10))
    assert len(rest) < 9  # joined, not one event per piece
    assert rest[-1] == "w5 w6 w7 w8 w9 "


async def test_pieces_within_the_interval_join_and_the_end_flushes_at_once() -> None:
    go = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        yield "a "
        await go.wait()
        for word in ("b ", "c ", "d "):
            yield word
            await asyncio.sleep(0)  # each piece on its own turn of the loop

    texts = []
    async with asyncio.timeout(30):  # a guard against hanging for the hour, not a timing check
        async for text in coalesced(source(), interval=3600):
            texts.append(text)
            go.set()
    # The first piece goes out at once; the rest wait for the interval, cut short by the end.
    assert texts == ["a ", "b c d "]


async def test_empty_pieces_are_dropped() -> None:
    async def source() -> AsyncIterator[str]:
        yield ""
        yield "a"
        yield ""

    assert [t async for t in coalesced(source())] == ["a"]


async def test_an_error_comes_after_the_pieces_before_it() -> None:
    async def source() -> AsyncIterator[str]:
        yield "one "
        yield "two "
        raise LookupError("the model stopped")

    seen: list[str] = []

    async def read() -> None:
        async for text in coalesced(source()):
            seen.append(text)

    with pytest.raises(LookupError, match="the model stopped"):
        await read()
    assert "".join(seen) == "one two "


async def test_closing_the_reader_closes_the_source() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        try:
            yield "first "
            await asyncio.sleep(60)  # a model that goes quiet
            yield "never"
        finally:
            closed.set()

    pieces = coalesced(source())
    assert await anext(pieces) == "first "
    await pieces.aclose()
    assert closed.is_set()  # closed before aclose() returned, not later


async def test_cancelling_the_reader_closes_the_source() -> None:
    closed = asyncio.Event()
    started = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        try:
            started.set()
            await asyncio.sleep(60)
            yield "never"
        finally:
            closed.set()

    async def read() -> list[str]:
        return [t async for t in coalesced(source())]

    reader = asyncio.create_task(read())
    await started.wait()
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert closed.is_set()


async def test_stop_ends_the_pieces_without_waiting_for_the_next_one() -> None:
    closed = asyncio.Event()
    stop = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        try:
            yield "first "
            await asyncio.sleep(60)  # a model that goes quiet: Stop must not wait for it
            yield "never"
        finally:
            closed.set()

    async def read() -> list[str]:
        texts = []
        async for text in coalesced(source(), stop=stop):
            texts.append(text)
            stop.set()  # the reader presses Stop after the first piece
        return texts

    async with asyncio.timeout(30):  # a guard against hanging for the minute, not a timing check
        assert await read() == ["first "]
    assert closed.is_set()


async def test_a_stop_already_set_sends_nothing() -> None:
    stop = asyncio.Event()
    stop.set()

    async def source() -> AsyncIterator[str]:
        yield "a"

    assert [t async for t in coalesced(source(), stop=stop)] == []


async def test_a_piece_due_within_the_slack_goes_out_without_a_timer() -> None:
    async def source() -> AsyncIterator[str]:
        yield "a "
        await asyncio.sleep(0.45)  # 0.05 s short of the interval: within its slack
        yield "b "
        await asyncio.sleep(0)  # the reader's turn comes before the next piece
        yield "c "

    # Waiting out the last 0.05 s would have joined b and c; sent at once, they stay apart.
    assert [t async for t in coalesced(source(), interval=0.5)] == ["a ", "b ", "c "]
