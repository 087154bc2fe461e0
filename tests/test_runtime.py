"""The Runtime's start-up work: what it opens and what it indexes, without an HTTP server."""

from __future__ import annotations

from pathlib import Path

from bookchat.runtime import Runtime
from tests.books import make_settings


async def test_start_up_indexes_the_sample_book_into_an_empty_collection(tmp_path: Path):
    runtime = Runtime(settings=make_settings(tmp_path))
    try:
        await runtime.start()
        assert runtime.ready
        assert runtime.retriever is not None
        assert await runtime.retriever.store.count(exact=True) > 0
        # The collection is loaded into memory at start-up only when it was already filled.
        assert runtime.retriever.store._memory is None
    finally:
        await runtime.aclose()


async def test_a_filled_collection_is_loaded_into_memory_at_start_up(tmp_path: Path):
    first = Runtime(settings=make_settings(tmp_path))
    await first.start()
    await first.aclose()
    second = Runtime(settings=make_settings(tmp_path))
    try:
        await second.start()
        assert second.retriever is not None
        assert second.retriever.store._memory is not None
    finally:
        await second.aclose()


async def test_sample_book_can_be_turned_off(tmp_path: Path):
    runtime = Runtime(settings=make_settings(tmp_path, BOOKCHAT_SAMPLE_BOOK=False))
    try:
        await runtime.start()
        assert runtime.retriever is not None
        assert (await runtime.retriever.check())["status"] == "empty"
    finally:
        await runtime.aclose()
