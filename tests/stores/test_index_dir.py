"""stores.index_dir: which index a server opens; a read-only BOOKCHAT_INDEX_DIR is served from
a fresh copy under the data dir, a writable one in place, a wrong one is a clear error."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bookchat.backends import prepare_index
from bookchat.config import Settings
from bookchat.stores.errors import StoreUnavailable
from bookchat.stores.index_dir import (
    MANIFEST,
    SERVED_COPY,
    prepare_served_index,
    read_manifest,
    write_manifest,
)
from tests.stores.test_snapshot import written


def settings(data: Path, index: Path | None = None, **extra: str) -> Settings:
    return Settings(
        BOOKCHAT_DATA_DIR=data,
        BOOKCHAT_INDEX_DIR=str(index) if index else "",
        QDRANT_URL=extra.get("QDRANT_URL", ""),
    )


def prebuilt(folder: Path) -> Path:
    (folder / "collection" / "book").mkdir(parents=True)
    (folder / "meta.json").write_text("{}")
    (folder / "collection" / "book" / "storage.sqlite").write_bytes(b"points")
    (folder / ".lock").write_text("tmp lock file")
    write_manifest(folder, site_url="https://docs.example.org/", chunks=3, pages=1, other="x")
    return folder


def read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_without_an_index_dir_the_index_is_under_the_data_dir(tmp_path: Path) -> None:
    served = prepare_index(settings(tmp_path / "data"))
    assert served.source == "data_dir"
    assert served.path == tmp_path / "data" / "qdrant"
    assert served.describe() == {"source": "data_dir"}


def test_a_server_reads_no_folder(tmp_path: Path) -> None:
    served = prepare_index(settings(tmp_path, QDRANT_URL="https://q.example:443"))
    assert served.source == "qdrant_server"
    assert served.path is None


def test_a_writable_index_dir_is_served_in_place(tmp_path: Path) -> None:
    index = prebuilt(tmp_path / "index")
    served = prepare_index(settings(tmp_path / "data", index))
    assert (served.source, served.path, served.copied_from) == ("baked", index, None)
    assert served.describe()["site_url"] == "https://docs.example.org/"


def test_a_read_only_index_is_copied_fresh_at_each_start(tmp_path: Path) -> None:
    index = prebuilt(tmp_path / "index")
    read_only(index)
    data = tmp_path / "data"
    try:
        served = prepare_index(settings(data, index))
        copy = data / SERVED_COPY
        assert served.path == copy
        assert (copy / "collection" / "book" / "storage.sqlite").read_bytes() == b"points"
        # The lock is per process; the copy's files and folders are writable for local mode.
        assert not (copy / ".lock").exists()
        for path in [copy, *copy.rglob("*")]:
            assert path.stat().st_mode & stat.S_IWUSR, path
        (copy / "stale").write_text("from the last start")
        again = prepare_index(settings(data, index))
    finally:
        writable(index)
    assert not (again.path / "stale").exists()
    info = again.describe()
    assert info["source"] == "baked"
    assert info["prebuilt"] == str(index)
    assert info["chunks"] == 3
    assert "other" not in info  # only the manifest's known fields are reported
    assert isinstance(info["copy_seconds"], float)


async def test_a_read_only_index_with_a_fresh_read_snapshot_is_served_in_place(
    tmp_path: Path,
) -> None:
    index = await written(tmp_path / "index")
    (index / ".lock").unlink()
    data = tmp_path / "data"

    def serve(collection: str):
        read_only(index)
        try:
            return prepare_served_index(
                embedded=True,
                collection=collection,
                qdrant_path=index,
                index_dir=index,
                data_dir=data,
            )
        finally:
            writable(index)

    served = serve("book")
    assert (served.path, served.copied_from) == (index, None)
    assert not (data / SERVED_COPY).exists()
    assert served.describe() == {"source": "baked", "prebuilt": str(index)}
    # Another collection's snapshot does not count: that one is copied.
    assert serve("other").copied_from == index


def test_an_index_dir_that_holds_no_index_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreUnavailable, match=r"BOOKCHAT_INDEX_DIR=.*empty holds no embedded"):
        prepare_index(settings(tmp_path / "data", tmp_path / "empty"))


def test_a_data_dir_that_cannot_take_the_copy_is_a_clear_error(tmp_path: Path) -> None:
    index = prebuilt(tmp_path / "index")
    read_only(index)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the data dir should be")
    try:
        with pytest.raises(StoreUnavailable, match="cannot be copied into BOOKCHAT_DATA_DIR"):
            prepare_index(settings(blocked, index))
    finally:
        writable(index)


def test_the_manifest_is_stable_bytes_and_tolerates_garbage(tmp_path: Path) -> None:
    write_manifest(tmp_path, chunks=2, site_url="u", source_revision=None)
    first = (tmp_path / MANIFEST).read_bytes()
    write_manifest(tmp_path, site_url="u", chunks=2)
    assert (tmp_path / MANIFEST).read_bytes() == first
    assert read_manifest(tmp_path) == {"chunks": 2, "site_url": "u"}
    (tmp_path / MANIFEST).write_text("[not an object")
    assert read_manifest(tmp_path) == {}
    assert os.path.exists(tmp_path / MANIFEST)
