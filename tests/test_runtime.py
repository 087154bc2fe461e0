"""The Runtime's start-up work: what it opens and what it indexes, without an HTTP server."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bookchat.rag.retrieve import BookRetriever
from bookchat.runtime import Runtime
from tests.books import make_settings

ROOT = Path(__file__).resolve().parent.parent

# Starts a Runtime in a fresh interpreter (the GC and sys.modules are per process) and prints
# what the test asks about, as JSON.
FRESH_START = """
import asyncio, gc, json, sys
from pathlib import Path
if sys.argv[2] == "gc-off":
    gc.disable()  # as `bookchat serve` does before its imports
from bookchat.runtime import Runtime
from tests.books import make_settings

async def main():
    settings = make_settings(Path(sys.argv[1]), **json.loads(sys.argv[3]))
    runtime = Runtime(settings=settings)
    await runtime.start()
    await runtime.aclose()
    return runtime.ready

ready = asyncio.run(main())
print(json.dumps({
    "ready": ready,
    "gc_enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count(),
    "modules": sorted(m for m in ("google.genai", "qdrant_client") if m in sys.modules),
    "anyio_backend": "anyio._backends._asyncio" in sys.modules,
}))
"""


def start_fresh(tmp_path: Path, *, gc_off: bool, **overrides: object) -> dict[str, object]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_START,
            str(tmp_path),
            "gc-off" if gc_off else "gc-on",
            json.dumps({"BOOKCHAT_SAMPLE_BOOK": False, **overrides}),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


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


async def test_ready_comes_after_the_warm_up_query(tmp_path: Path, monkeypatch):
    """Healthy means the answer path is warm: the warm-up query runs before "ready"."""
    runtime = Runtime(settings=make_settings(tmp_path))
    phases: list[str] = []
    original = BookRetriever.retrieve

    async def recording(self: BookRetriever, *args: Any, **kwargs: Any) -> Any:
        phases.append(runtime.phase)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(BookRetriever, "retrieve", recording)
    try:
        await runtime.start()
        assert runtime.ready
        assert phases == ["starting"]
    finally:
        await runtime.aclose()


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


def test_start_up_imports_with_the_gc_off_turn_it_back_on_and_freeze_what_they_made(
    tmp_path: Path,
):
    started = start_fresh(tmp_path, gc_off=True)
    assert started["ready"]
    assert started["gc_enabled"]
    # Imported off the loop: the first request's thread-pool hop would import it on the loop.
    assert started["anyio_backend"]
    # The modules and classes the imports made are out of every later collection's way.
    assert isinstance(started["frozen"], int)
    assert started["frozen"] > 10_000


def test_a_process_that_kept_the_gc_on_is_left_as_it_was(tmp_path: Path):
    frozen_before = gc.get_freeze_count()
    started = start_fresh(tmp_path, gc_off=False)
    assert started["ready"]
    assert started["gc_enabled"]
    assert started["frozen"] == 0
    assert gc.get_freeze_count() == frozen_before  # nor is this test process touched


def test_gemini_answers_do_not_load_the_google_genai_sdk(tmp_path: Path):
    """Answers stream over httpx (providers/gemini_stream.py); the SDK is for embeddings."""
    started = start_fresh(
        tmp_path, gc_off=True, GEMINI_API_KEY="test-key", GEMINI_BASE_URL="http://127.0.0.1:9"
    )
    assert started["ready"]
    assert started["modules"] == ["qdrant_client"]
