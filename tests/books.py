"""Test material for indexing and retrieval: a small book, offline settings, counting embedders.

Its fixtures (small_book, settings, store) reach every test through tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bookchat.backends import open_retriever, open_vector_store
from bookchat.config import DEFAULT_GEMINI_MODEL, Settings
from bookchat.ingest.indexer import IngestReport
from bookchat.ingest.model import Chunk
from bookchat.ingest.pipeline import ensure_sample_book, index_docs
from bookchat.rag.retrieve import BookRetriever
from bookchat.stores.vectors import VectorStore

SMALL_BOOK = {
    "intro.md": """---
title: Welcome
---

This handbook teaches you to build and program a small mobile robot.

## How to read it

Start with the hardware chapter, then move on to software.
""",
    "hardware/motors.md": """# Motors and wheels

## Choosing a motor

Brushed DC motors are cheap; stepper motors hold their position without feedback.
A gearbox trades speed for torque.

## Wiring the motor driver

Connect the H-bridge outputs to the motor terminals and never power the motor from the
microcontroller's pins.
""",
    "software/navigation.md": """# Navigation

## Odometry

Wheel encoders count ticks; odometry integrates them into the robot's pose estimate,
which drifts over time.

## Path planning

The A* planner searches the occupancy grid for the shortest collision-free path.
""",
    "software/config.md": """# Configuration

Set `ROBOT_SERIAL_PORT` to the device of the controller board, for example /dev/ttyUSB0.
The `maxSpeed` option caps the wheel speed in metres per second.
""",
}


def write_small_book(root: Path) -> Path:
    """A site folder with docusaurus.config.js and four pages; returns the docs folder."""
    docs = root / "docs"
    for name, text in SMALL_BOOK.items():
        path = docs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "docusaurus.config.js").write_text(
        "module.exports = { url: 'https://robots.example.org', baseUrl: '/handbook/' };\n",
        encoding="utf-8",
    )
    return docs


@pytest.fixture
def small_book(tmp_path: Path) -> Path:
    """The small book's docs folder."""
    return write_small_book(tmp_path / "site")


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Offline settings with everything under tmp_path (the environment cannot leak in)."""
    values: dict[str, object] = {
        "BOOKCHAT_DATA_DIR": tmp_path / "data",
        "GEMINI_API_KEY": "",
        "QDRANT_URL": "",
        "QDRANT_API_KEY": "",
        "QDRANT_COLLECTION": "test-book",
        "BOOKCHAT_EMBEDDER": "local",
        "BOOKCHAT_SAMPLE_BOOK": True,
        "GEMINI_BASE_URL": "",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[VectorStore]:
    """An embedded store under tmp_path, closed afterwards."""
    vector_store = open_vector_store(settings)
    yield vector_store
    await vector_store.close()


def make_chunk(file: str, text: str, *, title: str = "Page", heading: str = "", position: int = 0):
    """A hand-made chunk with a content hash over what identifies it."""
    digest = hashlib.sha256(f"{file}\x1f{heading}\x1f{text}".encode()).hexdigest()
    return Chunk(
        file=file,
        title=title,
        heading=heading,
        url=f"https://book.example.org/docs/{file.removesuffix('.md')}",
        text=text,
        content_hash=digest,
        position=position,
    )


class CountingEmbedder:
    """A deterministic bag-of-words DenseEmbedder that records every text it embeds."""

    def __init__(self, name: str = "test:bag-of-words", dimensions: int = 64) -> None:
        self._name = name
        self._dimensions = dimensions
        self.documents: list[str] = []
        self.queries: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self._dimensions
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self._dimensions] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.documents.extend(texts)
        return [self._vector(t) for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return self._vector(text)


async def index_into(retriever: BookRetriever, docs: Path) -> IngestReport:
    """Index a docs folder with the retriever's own store and embedders."""
    return await index_docs(
        docs, store=retriever.store, dense=retriever.dense, sparse=retriever.sparse
    )


async def sample_book_into(retriever: BookRetriever) -> IngestReport | None:
    """The runtime's start-up step: the sample book into an empty embedded collection."""
    return await ensure_sample_book(
        store=retriever.store, dense=retriever.dense, sparse=retriever.sparse
    )


def base_env(data_dir: Path, database_url: str | None = None) -> dict[str, Any]:
    """Settings values that isolate a test from the process environment."""
    return {
        "BOOKCHAT_DATA_DIR": data_dir,
        "GEMINI_API_KEY": "",
        "GEMINI_BASE_URL": "",
        "GEMINI_MODEL": DEFAULT_GEMINI_MODEL,
        "GEMINI_TIMEOUT": 30,
        "QDRANT_URL": "",
        "QDRANT_API_KEY": "",
        "DATABASE_URL": database_url or "",
        "ALLOWED_ORIGINS": "",
        # The book is indexed with the offline embedders once per session (ingested_qdrant);
        # Gemini tests use the fake only for answers, so the copy stays valid.
        "BOOKCHAT_EMBEDDER": "local",
        "LOG_LEVEL": "INFO",
        # The abuse limits are off here: these tests send bursts from one client on purpose.
        # tests/api/test_admission.py tests them at their defaults.
        **NO_LIMITS,
        "BOOKCHAT_TRUSTED_PROXIES": "",
        "SPACE_ID": "",
    }


NO_LIMITS = {
    "BOOKCHAT_CHATS_PER_MINUTE": 0,
    "BOOKCHAT_STREAMS_PER_CLIENT": 0,
    "BOOKCHAT_CONCURRENT_LLM_CALLS": 0,
    "BOOKCHAT_DAILY_LLM_CALLS": 0,
    "BOOKCHAT_DAILY_LLM_CALLS_PER_CLIENT": 0,
}


@pytest.fixture(scope="session")
def ingested_qdrant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded Qdrant folder holding the sample book, built once and copied per test."""
    data = tmp_path_factory.mktemp("ingested") / "data"
    settings = Settings(**base_env(data))

    async def build() -> None:
        retriever = await open_retriever(settings)
        try:
            await sample_book_into(retriever)
        finally:
            await retriever.aclose()

    asyncio.run(build())
    return settings.qdrant_path
