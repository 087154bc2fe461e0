"""backends.py: PRELOADABLE (the list checks.imports imports through the image launcher's site
directories) covers what start-up preloads in every configuration, and imports here; how many
serve processes each configuration gets, and what each one may use."""

from __future__ import annotations

import importlib
import itertools
import os
from pathlib import Path

import pytest

from bookchat import backends
from bookchat.backends import PRELOADABLE, preload_modules
from bookchat.config import Settings
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


@pytest.mark.parametrize(
    ("database", "qdrant"),
    [(None, None), (PG, None), (None, QDRANT)],
    ids=["sqlite+embedded", "postgresql+embedded", "sqlite+server"],
)
def test_a_one_process_store_means_one_process(tmp_path: Path, database, qdrant) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=database or "", QDRANT_URL=qdrant or "")
    assert backends.worker_processes(settings, cpus=8) == 1
    asked = make_settings(
        tmp_path, DATABASE_URL=database or "", QDRANT_URL=qdrant or "", BOOKCHAT_WORKERS=2
    )
    with pytest.raises(backends.ConfigurationError, match="BOOKCHAT_WORKERS=2 needs PostgreSQL"):
        backends.worker_processes(asked, cpus=8)


def test_shared_stores_get_one_process_per_core_or_as_configured(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DATABASE_URL=PG, QDRANT_URL=QDRANT)
    assert backends.worker_processes(settings, cpus=2) == 2
    assert backends.worker_processes(settings, cpus=1) == 1
    fixed = make_settings(tmp_path, DATABASE_URL=PG, QDRANT_URL=QDRANT, BOOKCHAT_WORKERS=3)
    assert backends.worker_processes(fixed, cpus=2) == 3


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
