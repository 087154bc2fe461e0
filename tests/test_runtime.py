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
        # The warm-up query after start-up has loaded the new collection into memory too, so
        # the first reader's question does not wait for it.
        assert runtime.retriever.store._memory is not None
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


async def test_the_warm_up_query_is_not_a_paid_gemini_call(tmp_path: Path, fake_gemini):
    settings = make_settings(
        tmp_path,
        GEMINI_API_KEY="test-key",
        GEMINI_BASE_URL=fake_gemini.base_url,
        BOOKCHAT_EMBEDDER="gemini",
    )
    runtime = Runtime(settings=settings)
    try:
        await runtime.start()
        assert runtime.ready
    finally:
        await runtime.aclose()
    # The sample book was embedded as documents; no query was embedded to warm up.
    assert "RETRIEVAL_DOCUMENT" in fake_gemini.task_types
    assert "RETRIEVAL_QUERY" not in fake_gemini.task_types
