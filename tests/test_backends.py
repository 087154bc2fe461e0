"""backends.PRELOADABLE, the list checks.imports imports through the image launcher's site
directories, covers what start-up preloads in every configuration, and imports here."""

from __future__ import annotations

import importlib
import itertools
from pathlib import Path

import pytest

from bookchat.backends import PRELOADABLE, preload_modules
from bookchat.config import Settings


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
