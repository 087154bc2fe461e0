"""The embedded index a server serves: under BOOKCHAT_DATA_DIR, or a prebuilt BOOKCHAT_INDEX_DIR.

A prebuilt index may be read-only (the image's baked book lives in the Nix store). A server reads
it in place when it holds a fresh read snapshot (stores/snapshot.py; `bookchat ingest` writes
one): nothing there is opened for writing. Qdrant's local mode cannot open a read-only folder
(it takes a lock file in it and opens its SQLite file for writing), so one without a fresh
snapshot (made by an older bookchat) is served from a fresh copy under the data dir, made at
each start (the store path may change with every image). Writes never go to the prebuilt folder.

`bookchat ingest` leaves a small manifest beside the index (which book, how many chunks, from
which revision) that /api/health reports; it holds no time, so a rebuild gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bookchat.stores.connection import LOCK_FILE, FolderLock, folder_in_use
from bookchat.stores.errors import StoreUnavailable

if TYPE_CHECKING:
    from bookchat.stores.memory_index import MemoryIndex
    from bookchat.stores.snapshot import Snapshot

log = logging.getLogger(__name__)

MANIFEST = "bookchat-index.json"
# Under the data dir; replaced at every start of a server that serves a read-only index.
SERVED_COPY = "served-index"
MANIFEST_FIELDS = ("site_url", "collection", "pages", "chunks", "source_revision", "embedder")

# data_dir: the index under BOOKCHAT_DATA_DIR; baked: a prebuilt BOOKCHAT_INDEX_DIR (served in
# place when writable or its read snapshot is fresh, else from a copy); qdrant_server:
# QDRANT_URL (the manifest is not read).
Source = Literal["data_dir", "baked", "qdrant_server"]


@dataclass
class ServedIndex:
    """Which index a server serves, for the retriever and /api/health."""

    source: Source
    # The folder embedded Qdrant opens (None for a server).
    path: Path | None = None
    # The prebuilt folder (baked), and when it was copied, what the copy cost.
    prebuilt: Path | None = None
    copied_from: Path | None = None
    copy_seconds: float | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    # Read by several processes at once (`bookchat serve`'s workers), none of which writes it;
    # `readers_lock` is the shared folder lock of the process that started them, `loaded` its
    # snapshot and search index, read once there for the workers to inherit (share_for_readers).
    shared: bool = False
    readers_lock: FolderLock | None = field(default=None, repr=False, compare=False)
    loaded: tuple[Snapshot, MemoryIndex] | None = field(default=None, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        """The health report's `index` block (paths are local, never secrets)."""
        info: dict[str, Any] = {"source": self.source}
        for name in MANIFEST_FIELDS:
            if name in self.manifest:
                info[name] = self.manifest[name]
        if self.prebuilt is not None:
            info["prebuilt"] = str(self.prebuilt)
        if self.copied_from is not None:
            info["copy_seconds"] = self.copy_seconds
        return info


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest `bookchat ingest` wrote into an index folder; {} when there is none."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: data[k] for k in MANIFEST_FIELDS if k in data} if isinstance(data, dict) else {}


def write_manifest(folder: Path, **fields: Any) -> None:
    """Record which book an index holds (stable bytes: sorted keys, no timestamps)."""
    data = {k: v for k, v in fields.items() if k in MANIFEST_FIELDS and v is not None}
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    (folder / MANIFEST).write_text(text, encoding="utf-8")


def _read_only(folder: Path) -> bool:
    """Whether the folder or a file in it is read-only: not writable by this user, or with no
    write bit at all (root may write anywhere, but a folder made read-only is meant to stay so,
    like every path in the Nix store)."""
    for root, _dirs, files in os.walk(folder):
        for name in (root, *(os.path.join(root, f) for f in files if f != LOCK_FILE)):
            if not os.access(name, os.W_OK) or not os.stat(name).st_mode & 0o222:
                return True
    return False


def _copy(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    # copyfile, not copy2: the store's read-only modes must not come along.
    shutil.copytree(
        source,
        target,
        copy_function=shutil.copyfile,
        ignore=shutil.ignore_patterns(LOCK_FILE),
    )
    # copytree still copies each directory's mode; local mode creates files in them.
    for root, _dirs, _files in os.walk(target):
        os.chmod(root, 0o700)


def prepare_served_index(
    *, embedded: bool, collection: str, qdrant_path: Path, index_dir: Path | None, data_dir: Path
) -> ServedIndex:
    """The index to open: as configured, or a fresh copy of a read-only BOOKCHAT_INDEX_DIR
    that holds no fresh read snapshot of `collection`.

    embedded: no Qdrant server is configured; qdrant_path: the embedded index's folder (the
    index_dir when one is set); data_dir: where a read-only index_dir is copied.
    """
    if not embedded:
        return ServedIndex(source="qdrant_server")
    if index_dir is None:
        return ServedIndex(source="data_dir", path=qdrant_path, manifest=read_manifest(qdrant_path))
    prebuilt = index_dir
    if not (prebuilt / "meta.json").is_file():
        raise StoreUnavailable(
            f"BOOKCHAT_INDEX_DIR={prebuilt} holds no embedded Qdrant index (no meta.json): "
            "point it at a folder `bookchat ingest` wrote, or unset it"
        )
    manifest = read_manifest(prebuilt)
    # numpy comes with the snapshot module: only once an index is prepared.
    from bookchat.stores.snapshot import snapshot_is_fresh

    if not _read_only(prebuilt) or snapshot_is_fresh(prebuilt, collection):
        return ServedIndex(source="baked", path=prebuilt, prebuilt=prebuilt, manifest=manifest)
    target = data_dir / SERVED_COPY
    started = time.perf_counter()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        _copy(prebuilt, target)
    except OSError as exc:
        raise StoreUnavailable(
            f"the read-only index {prebuilt} cannot be copied into BOOKCHAT_DATA_DIR="
            f"{data_dir}: {exc.strerror or exc}"
        ) from None
    seconds = round(time.perf_counter() - started, 3)
    log.info("serving the read-only index %s from a copy in %s (%.3f s)", prebuilt, target, seconds)
    return ServedIndex(
        source="baked",
        path=target,
        prebuilt=prebuilt,
        copied_from=prebuilt,
        copy_seconds=seconds,
        manifest=manifest,
    )


def unshared_because(index: ServedIndex, collection: str, *, needs_points: bool) -> str | None:
    """Why processes that only read the embedded `index` could not serve it now; None: they can.

    They read its read snapshot and write nothing, so it must be fresh, and hold points when
    start-up would index the sample book into an empty collection (needs_points). Only the
    snapshot's description is read.
    """
    # numpy comes with the snapshot module: only once an index is prepared.
    from bookchat.stores.snapshot import fresh_snapshot_points

    assert index.path is not None, "a Qdrant server is shared as it is"
    points = fresh_snapshot_points(index.path, collection)
    if points is None:
        return f"the index in {index.path} has no fresh read snapshot of {collection!r}"
    if points == 0 and needs_points:
        return f"collection {collection!r} in {index.path} is empty (the sample book goes there)"
    return None


def share_for_readers(index: ServedIndex, collection: str) -> ServedIndex:
    """`index` marked shared, with its folder's lock taken shared by this process: readers
    (worker processes) take it too, and a writer (`bookchat ingest`) is refused until the last
    of them exits. Its snapshot and search index are loaded here, once: forked workers share
    those pages instead of each holding a copy (at 9,000 chunks, 140 MiB each; benchmarks.md).
    Raises StoreUnavailable when a writer holds the folder now or the snapshot is unusable."""
    assert index.path is not None, "a Qdrant server is shared as it is"
    from bookchat.stores.memory_index import MemoryIndex
    from bookchat.stores.snapshot import Snapshot, SnapshotUnusable, writable

    lock = None
    if writable(index.path):  # a read-only folder (the image's baked index) takes no lock
        lock = FolderLock(index.path / LOCK_FILE, shared=True)
        if not lock.acquire():
            raise folder_in_use(index.path)
    try:
        # Read under the lock: no writer can change it from here on.
        snapshot = Snapshot.read(index.path, collection)
    except SnapshotUnusable as why:
        if lock is not None:
            lock.release()
        raise StoreUnavailable(f"the read snapshot in {index.path} is unusable: {why}") from None
    loaded = snapshot, MemoryIndex.from_snapshot(snapshot)
    return dataclasses.replace(index, shared=True, readers_lock=lock, loaded=loaded)
