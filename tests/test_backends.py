"""backends.py: PRELOADABLE (the list checks.imports imports through the image launcher's site
directories) covers what start-up preloads in every configuration, and imports here; how many
serve processes each configuration gets, and what each one may use."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import os
from pathlib import Path

import pytest

from bookchat import backends
from bookchat.backends import PRELOADABLE, preload_modules
from bookchat.config import Settings
from bookchat.stores.embedded import EmbeddedVectorStore
from bookchat.stores.errors import StoreUnavailable
from bookchat.stores.qdrant_http import ServerVectorStore
from bookchat.stores.snapshot import fresh_snapshot_points, remove_snapshot, snapshot_path
from tests.books import make_settings


@pytest.mark.parametrize(
    ("gemini", "database"),
    list(itertools.product(["", "key"], ["", "postgresql://u@db.example/book"])),
)
def test_every_configuration_preloads_a_subset(gemini: str, database: str, tmp_path: Path) -> None:
    settings = Settings(
        BOOKCHAT_DATA_DIR=tmp_path, GEMINI_API_KEY=gemini, DATABASE_URL=database, QDRANT_URL=""
    )
    modules = preload_modules(settings)
    assert set(modules) <= set(PRELOADABLE)
    assert ("psycopg" in modules) == bool(database)
    assert ("google.genai" in modules) == bool(gemini)


@pytest.mark.parametrize("name", PRELOADABLE)
def test_every_preloadable_module_imports(name: str) -> None:
    importlib.import_module(name)


PG = "postgresql://bookchat@db.example:5432/bookchat"
QDRANT = "https://qdrant.example:6333"


@pytest.mark.parametrize("qdrant", [None, QDRANT], ids=["embedded", "server"])
def test_sqlite_means_one_process(tmp_path: Path, qdrant) -> None:
    settings = make_settings(tmp_path, QDRANT_URL=qdrant or "")
    assert backends.worker_processes(settings, cpus=8) == 1
    asked = make_settings(tmp_path, QDRANT_URL=qdrant or "", BOOKCHAT_WORKERS=2)
    with pytest.raises(backends.ConfigurationError, match="BOOKCHAT_WORKERS=2 needs PostgreSQL"):
        backends.worker_processes(asked, cpus=8)


def test_postgresql_and_a_qdrant_server_get_one_process_per_core(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=PG, QDRANT_URL=QDRANT)
    assert backends.worker_processes(settings, cpus=2) == 2
    assert backends.worker_processes(settings, cpus=1) == 1
    low_memory = make_settings(tmp_path, DATABASE_URL=PG, QDRANT_URL=QDRANT, BOOKCHAT_WORKERS=1)
    assert backends.worker_processes(low_memory, cpus=2) == 1


def test_postgresql_and_the_embedded_index_get_one_process_unless_asked(tmp_path: Path) -> None:
    # Each worker would hold its own copy of the index's search structures.
    settings = make_settings(tmp_path, DATABASE_URL=PG)
    assert backends.worker_processes(settings, cpus=8) == 1


@pytest.mark.parametrize("qdrant", [None, QDRANT], ids=["embedded", "server"])
def test_bookchat_workers_sets_the_count_with_postgresql(tmp_path: Path, qdrant) -> None:
    # Embedded, the workers only read the index (share_embedded_index readies it first).
    fixed = make_settings(tmp_path, DATABASE_URL=PG, QDRANT_URL=qdrant or "", BOOKCHAT_WORKERS=3)
    assert backends.worker_processes(fixed, cpus=2) == 3


def test_qdrant_url_chooses_the_server_and_no_folder_is_made(tmp_path: Path) -> None:
    key = "key-123"
    settings = make_settings(
        tmp_path, QDRANT_URL="https://u:secret@qdrant.example", QDRANT_API_KEY=key
    )
    store = backends.open_vector_store(settings, timeout=1.5)
    try:
        assert isinstance(store, ServerVectorStore)
        assert store.collection == settings.qdrant_collection
        assert store.location.host_port == "qdrant.example:6333"
        assert "secret" not in (store.location.url or "")
        assert not settings.qdrant_path.exists()
    finally:
        asyncio.run(store.close())
    embedded = backends.open_vector_store(make_settings(tmp_path))
    try:
        assert isinstance(embedded, EmbeddedVectorStore)
        assert embedded.location.path == str(settings.qdrant_path)
        assert settings.qdrant_path.is_dir()
    finally:
        asyncio.run(embedded.close())


def test_the_embedded_index_is_written_once_then_shared_by_readers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=PG)
    # A fresh data dir: the sample book is indexed here, before any worker starts.
    index = backends.share_embedded_index(settings)
    try:
        assert index.shared
        assert index.path == settings.qdrant_path
        assert fresh_snapshot_points(settings.qdrant_path, settings.qdrant_collection)
        # Readers coexist with the lock this process holds for them ...
        readers = [backends.open_vector_store(settings, index=index) for _ in range(2)]
        assert all(reader.embedded and reader._local is None for reader in readers)
        for reader in readers:
            asyncio.run(reader.close())
        # ... and a writer (`bookchat ingest`) is refused while it is held.
        with pytest.raises(StoreUnavailable, match="in use by another bookchat process"):
            backends.open_vector_store(settings)
    finally:
        assert index.readers_lock is not None
        index.readers_lock.release()
    asyncio.run(backends.open_vector_store(settings).close())
    # Already written: a second start only checks it (no ingest runs: the store is not opened).
    again = backends.share_embedded_index(settings)
    assert again.shared
    assert again.readers_lock is not None
    again.readers_lock.release()


def test_workers_use_the_snapshot_read_once_before_they_started(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=PG)
    index = backends.share_embedded_index(settings)
    try:
        assert index.loaded is not None
        snapshot, _ = index.loaded
        # Read once, under the lock: a worker opening the index takes that copy, not the file.
        snapshot_path(settings.qdrant_path, settings.qdrant_collection).unlink()
        reader = backends.open_vector_store(settings, index=index)
        assert asyncio.run(reader.count()) == len(snapshot) > 0
        asyncio.run(reader.close())
    finally:
        assert index.readers_lock is not None
        index.readers_lock.release()


def test_a_stale_read_snapshot_is_made_again_before_readers_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=PG)
    first = backends.share_embedded_index(settings)
    assert first.readers_lock is not None
    first.readers_lock.release()
    remove_snapshot(settings.qdrant_path, settings.qdrant_collection)
    index = backends.share_embedded_index(settings)
    assert index.readers_lock is not None
    index.readers_lock.release()
    assert fresh_snapshot_points(settings.qdrant_path, settings.qdrant_collection)


def test_an_index_in_use_or_missing_is_not_shared_and_says_why(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=PG)
    writer = backends.open_vector_store(settings)  # as `bookchat ingest` holds it
    try:
        with pytest.raises(backends.IndexNotShared, match="in use by another bookchat process"):
            backends.share_embedded_index(settings)
    finally:
        asyncio.run(writer.close())
    # No collection and no sample book to put there: the workers would have nothing to read.
    bare = make_settings(tmp_path, DATABASE_URL=PG, BOOKCHAT_SAMPLE_BOOK=False)
    with pytest.raises(backends.IndexNotShared, match="no fresh read snapshot"):
        backends.share_embedded_index(bare)


def test_server_wide_caps_are_split_but_not_the_shared_budget(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        BOOKCHAT_CONCURRENT_LLM_CALLS=8,
        BOOKCHAT_LLM_QUEUE=5,
        BOOKCHAT_DAILY_LLM_CALLS=1000,
        BOOKCHAT_MAX_CONNECTIONS=200,
        BOOKCHAT_CHATS_PER_MINUTE=10,
        BOOKCHAT_STREAMS_PER_CLIENT=2,
    )
    one = backends.per_worker(settings, 2)
    assert (one.concurrent_llm_calls, one.llm_queue, one.max_connections) == (4, 3, 100)
    # The daily budget is one count in the shared database, not a per-process one.
    assert one.daily_llm_calls == 1000
    # Per client: a client's connections may land on either process.
    assert (one.chats_per_minute, one.streams_per_client) == (10, 2)
    assert backends.per_worker(settings, 1) is settings


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, None),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: two processes can use it
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ],
    ids=["no-cgroup", "v2-unlimited", "v2-two", "v2-1.5", "v2-half", "v1-one", "v1-none"],
)
def test_a_containers_cpu_quota_caps_the_default_workers(
    tmp_path: Path, files: dict[str, str], expected: int | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    affinity = len(os.sched_getaffinity(0))
    usable = backends.usable_cpus(tmp_path)
    assert usable == (min(affinity, expected) if expected is not None else affinity)
