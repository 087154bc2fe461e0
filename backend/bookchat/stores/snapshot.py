"""A compact read snapshot of an embedded collection, so a server that only reads it never
imports qdrant-client (its REST models and gRPC: 40 MiB and a third of start-up).

Beside local mode's own files, `bookchat-snapshot.<collection>` holds what serving needs:
every point's id, BM25 postings (CSR), dense vector and payload, the collection's bookchat
metadata, and a token of the storage it was made from. The format is a fixed header, a JSON
description and raw little-endian arrays: no timestamps, so a baked index stays byte-for-byte
reproducible, and no pickle, so reading it runs no code.

Staleness: the token is a SHA-256 over local mode's meta.json and every row of the collection's
storage.sqlite (read with the stdlib sqlite3, read-only). Any write by any writer (this version
or another, or qdrant-client itself) changes a stored point or the collection's config, and so
the token: a snapshot is used only when the storage it describes is exactly what is on disk.
Reading the rows costs about 1 ms per 100 points (backend/docs/benchmarks.md), far less than
opening local mode, which unpickles every point into pydantic models. The embedded store
(stores/embedded.py) also removes the snapshot before it writes, so a write that dies half-way
leaves none behind.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import pickle
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from bookchat.stores.identity import DENSE, SPARSE

log = logging.getLogger(__name__)

# Bump when the layout below changes: a snapshot of another format is ignored and rewritten.
FORMAT = 1
MAGIC = b"bookchat-snapshot\n"
_HEAD = struct.Struct("<II")  # format, length of the JSON description
# Local mode's layout (qdrant_client/local): meta.json, collection/<name>/storage.sqlite.
META_FILE = "meta.json"
STORAGE_FILE = "storage.sqlite"


class SnapshotUnusable(Exception):
    """Missing, stale, corrupt or of another format: open local mode instead."""


def snapshot_path(folder: Path, collection: str) -> Path:
    return folder / f"bookchat-snapshot.{collection}"


def storage_token(folder: Path, collection: str) -> str:
    """What the snapshot of `collection` in `folder` must have been made from.

    Raises SnapshotUnusable when local mode holds no such collection (or cannot be read).
    """
    if not writable(folder):
        # Nothing can change a read-only index (the image's baked book): its token is read
        # once per process, not again when the index that was judged servable is opened.
        return _read_only_token(folder.resolve(), collection)
    return _read_storage(folder, collection, keep_points=False)[0]


@functools.cache
def _read_only_token(folder: Path, collection: str) -> str:
    return _read_storage(folder, collection, keep_points=False)[0]


def _read_storage(
    folder: Path, collection: str, *, keep_points: bool = True
) -> tuple[str, bytes, list[bytes]]:
    """(token, meta.json, every stored point's pickle in key order) of `collection`; with
    keep_points False the pickles are hashed row by row and none is kept (the list is empty):
    the token alone held every point at once, a peak as large as the collection's storage."""
    storage = folder / "collection" / collection / STORAGE_FILE
    try:
        meta = (folder / META_FILE).read_bytes()
    except OSError as exc:
        raise SnapshotUnusable(f"no local mode metadata: {exc.strerror or exc}") from None
    if not storage.is_file():
        raise SnapshotUnusable(f"collection {collection!r} has no storage file")
    digest = hashlib.sha256(meta)
    points: list[bytes] = []
    try:
        for key, point in _read_rows(storage):
            digest.update(struct.pack("<II", len(key), len(point)))
            digest.update(key.encode())
            digest.update(point)
            if keep_points:
                points.append(point)
    except sqlite3.Error as exc:
        raise SnapshotUnusable(f"storage unreadable: {exc}") from None
    return digest.hexdigest(), meta, points


def writable(folder: Path) -> bool:
    """Whether anything may write in `folder`: this user may, and it has a write bit at all
    (root may write anywhere, but a folder made read-only, like the Nix store, is meant to
    stay as it is: no lock file, no SQLite side files)."""
    try:
        return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
    except OSError:
        return False


def _read_rows(storage: Path) -> Iterator[tuple[str, bytes]]:
    """Every (id, pickle) row in id order, one at a time (one SELECT: one consistent read)."""
    # Read-only. Where the folder cannot be written (the image's Nix store) no writer can
    # change the file either, and SQLite must be told so (`immutable`) to read a WAL database
    # without making its -shm file there.
    mode = "mode=ro" if writable(storage.parent) else "mode=ro&immutable=1"
    connection = sqlite3.connect(f"{storage.resolve().as_uri()}?{mode}", uri=True)
    try:
        yield from connection.execute("SELECT id, point FROM points ORDER BY id")
    finally:
        connection.close()


@dataclass(slots=True)
class Snapshot:
    """Every point of one collection as serving reads it; arrays aligned with `ids`."""

    collection: str
    # The collection's config metadata (holding its IndexIdentity); None: no such collection.
    metadata: dict[str, Any] | None
    dims: int | None  # the dense vector's size; None: the collection has no dense vector
    ids: list[str]
    payloads: list[dict[str, Any]]
    sparse_offsets: np.ndarray  # int64, n + 1: point i's terms are [offsets[i], offsets[i+1])
    sparse_indices: np.ndarray  # int64
    sparse_values: np.ndarray  # float64 (exactly what local mode returns)
    dense_rows: np.ndarray  # int64, n: point i's row in `dense`, -1 when it has none
    # float64, (points with a dense vector, dims): what local mode returns, to the last bit
    # (the search itself runs on a float32 copy, as before).
    dense: np.ndarray
    token: str = ""

    @classmethod
    def from_points(
        cls,
        *,
        collection: str,
        metadata: dict[str, Any] | None,
        dims: int | None,
        points: list[tuple[str, dict[str, Any], tuple[list[int], list[float]], Any]],
    ) -> Snapshot:
        """From (id, payload, (indices, values), dense or None) per point, in scroll order."""
        lengths = [len(sparse[0]) for _, _, sparse, _ in points]
        offsets = np.zeros(len(points) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        indices = [i for _, _, sparse, _ in points for i in sparse[0]]
        values = [v for _, _, sparse, _ in points for v in sparse[1]]
        dense = [d for *_, d in points if d is not None]
        rows = np.full(len(points), -1, dtype=np.int64)
        rows[[i for i, (*_, d) in enumerate(points) if d is not None]] = np.arange(len(dense))
        return cls(
            collection=collection,
            metadata=metadata,
            dims=dims,
            ids=[pid for pid, *_ in points],
            payloads=[payload for _, payload, *_ in points],
            sparse_offsets=offsets,
            sparse_indices=np.asarray(indices, dtype=np.int64),
            sparse_values=np.asarray(values, dtype=np.float64),
            dense_rows=rows,
            dense=np.asarray(dense, dtype=np.float64).reshape(len(dense), dims or 0),
        )

    @classmethod
    def from_storage(cls, folder: Path, collection: str) -> Snapshot:
        """What local mode's files in `folder` hold for `collection`, with their token.

        Read from the files themselves (the same bytes the token covers, so the two agree
        even mid-write) and exactly as local mode returns them after it opens the folder:
        its own scroll right after a write returns float32-rounded vectors instead. The
        points are pickled pydantic models: unpickling imports qdrant-client's models, so
        this is for a writer, or for a reader whose snapshot was missing or stale.
        Raises SnapshotUnusable when there is no such collection.
        """
        token, meta, pickles = _read_storage(folder, collection)
        try:
            config = json.loads(meta)["collections"][collection]
        except (ValueError, KeyError, TypeError) as exc:
            raise SnapshotUnusable(
                f"collection {collection!r} is not in meta.json: {exc}"
            ) from None
        vectors = config.get("vectors") or {}
        dims = vectors[DENSE]["size"] if isinstance(vectors, dict) and DENSE in vectors else None
        points = []
        for blob in pickles:
            # Local mode's own storage, read the way local mode reads it.
            point = pickle.loads(blob)  # noqa: S301
            named = point.vector if isinstance(point.vector, dict) else {}
            sv = named.get(SPARSE)
            sparse = (list(sv.indices), list(sv.values)) if sv is not None else ([], [])
            points.append((str(point.id), point.payload or {}, sparse, named.get(DENSE)))
        # Local mode's scroll order (by id), which the search's tie-breaks follow.
        points.sort(key=lambda p: p[0])
        snapshot = cls.from_points(
            collection=collection,
            metadata=config.get("metadata") or {},
            dims=dims,
            points=points,
        )
        snapshot.token = token
        return snapshot

    def __len__(self) -> int:
        return len(self.ids)

    def sparse_of(self, row: int) -> tuple[list[int], list[float]]:
        start, end = int(self.sparse_offsets[row]), int(self.sparse_offsets[row + 1])
        return self.sparse_indices[start:end].tolist(), self.sparse_values[start:end].tolist()

    def dense_of(self, row: int) -> list[float] | None:
        at = int(self.dense_rows[row])
        return None if at < 0 else self.dense[at].tolist()

    def sparse_view(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """sparse_of as views of the postings arrays, not copies (as dense_view)."""
        start, end = int(self.sparse_offsets[row]), int(self.sparse_offsets[row + 1])
        return self.sparse_indices[start:end], self.sparse_values[start:end]

    def dense_view(self, row: int) -> np.ndarray | None:
        """dense_of as a view of the matrix row, not a copy: for a scroll of every point,
        where a list per point (32 bytes a float) held the whole collection's vectors at once
        as Python floats (issue 12 memory pass)."""
        at = int(self.dense_rows[row])
        return None if at < 0 else self.dense[at]

    # The file.

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "sparse_offsets": self.sparse_offsets,
            "sparse_indices": self.sparse_indices,
            "sparse_values": self.sparse_values,
            "dense_rows": self.dense_rows,
            "dense": self.dense,
        }

    def write(self, folder: Path) -> bool:
        """Atomically replace the snapshot in `folder`; False (logged) when it cannot be written."""
        arrays = self._arrays()
        blobs: list[bytes] = []
        layout: dict[str, Any] = {}
        at = 0
        for name, array in arrays.items():
            data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
            layout[name] = {"dtype": array.dtype.str.lstrip("<>|="), "shape": array.shape}
            layout[name].update(offset=at, size=len(data))
            blobs.append(data)
            at += len(data)
        payloads = json.dumps(self.payloads, ensure_ascii=False, separators=(",", ":")).encode()
        layout["payloads"] = {"offset": at, "size": len(payloads)}
        description = json.dumps(
            {
                "collection": self.collection,
                "token": self.token,
                "metadata": self.metadata,
                "dims": self.dims,
                "ids": self.ids,
                "arrays": layout,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        target = snapshot_path(folder, self.collection)
        try:
            with tempfile.NamedTemporaryFile(
                dir=folder, prefix=f".{target.name}.", delete=False
            ) as handle:
                try:
                    handle.write(MAGIC + _HEAD.pack(FORMAT, len(description)) + description)
                    for blob in blobs:
                        handle.write(blob)
                    handle.write(payloads)
                    handle.flush()
                    os.fsync(handle.fileno())
                except BaseException:
                    os.unlink(handle.name)
                    raise
            os.chmod(handle.name, 0o644)
            os.replace(handle.name, target)
        except OSError as exc:
            log.info("no read snapshot written in %s: %s", folder, exc.strerror or exc)
            return False
        return True

    @classmethod
    def read(cls, folder: Path, collection: str) -> Snapshot:
        """The snapshot of `collection` if it describes the storage on disk now.

        Raises SnapshotUnusable (missing, stale, corrupt, another format) otherwise.
        """
        path = snapshot_path(folder, collection)
        try:
            with path.open("rb") as handle:
                snapshot = cls._parse(handle, collection)
        except FileNotFoundError:
            raise SnapshotUnusable("no snapshot") from None
        except OSError as exc:
            raise SnapshotUnusable(f"unreadable: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            raise SnapshotUnusable(f"corrupt: {exc}") from None
        if snapshot.token != storage_token(folder, collection):
            raise SnapshotUnusable("stale: the collection changed since it was written")
        return snapshot

    @classmethod
    def _parse(cls, handle: BinaryIO, collection: str) -> Snapshot:
        # Section by section, each array into a buffer of its own: a view into one read of
        # the whole file kept the file alive beside the parsed payloads, so every payload's
        # text was held twice, as JSON bytes and as str (issue 12 memory pass).
        head, start = _read_description(handle.read)
        if head["collection"] != collection:
            raise ValueError(f"snapshot of {head['collection']!r}")
        layout = head["arrays"]

        length = os.fstat(handle.fileno()).st_size

        def section(name: str) -> bytes:
            spec = layout[name]
            at, size = start + spec["offset"], spec["size"]
            # Checked before reading: a corrupt size must not become a huge allocation.
            if not 0 <= at <= length - size:
                raise ValueError(f"{name} is cut short")
            handle.seek(at)
            chunk = handle.read(size)
            if len(chunk) != size:
                raise ValueError(f"{name} is cut short")
            return chunk

        arrays: dict[str, np.ndarray] = {}
        for name in ("sparse_offsets", "sparse_indices", "sparse_values", "dense_rows", "dense"):
            dtype = np.dtype("<" + layout[name]["dtype"])
            arrays[name] = np.frombuffer(section(name), dtype=dtype).reshape(layout[name]["shape"])
        payloads = json.loads(section("payloads"))
        ids = head["ids"]
        n = len(ids)
        if len(payloads) != n or arrays["sparse_offsets"].shape != (n + 1,):
            raise ValueError("arrays do not match the points")
        if arrays["dense_rows"].shape != (n,) or arrays["sparse_offsets"][-1] != len(
            arrays["sparse_indices"]
        ):
            raise ValueError("arrays do not match the points")
        return cls(
            collection=collection,
            metadata=head["metadata"],
            dims=head["dims"],
            ids=ids,
            payloads=payloads,
            token=head["token"],
            **arrays,
        )


def _read_description(read: Callable[[int], bytes]) -> tuple[dict[str, Any], int]:
    """A snapshot's JSON description and the offset its arrays start at; `read(n)` gives the
    file's next n bytes. Raises ValueError (not a snapshot), SnapshotUnusable (another format)."""
    head = read(len(MAGIC) + _HEAD.size)
    if not head.startswith(MAGIC):
        raise ValueError("not a bookchat snapshot")
    version, length = _HEAD.unpack_from(head, len(MAGIC))
    if version != FORMAT:
        raise SnapshotUnusable(f"format {version}, this version reads {FORMAT}")
    return json.loads(read(length)), len(head) + length


def snapshot_is_fresh(folder: Path, collection: str) -> bool:
    """Whether `folder` holds a snapshot of `collection` made from the storage on disk now
    (its description only is read: for deciding whether a read-only folder can be served)."""
    return fresh_snapshot_points(folder, collection) is not None


def fresh_snapshot_points(folder: Path, collection: str) -> int | None:
    """How many points the snapshot of `collection` in `folder` holds if it was made from the
    storage on disk now; None when it is missing, stale or unreadable (its description only is
    read)."""
    try:
        with snapshot_path(folder, collection).open("rb") as handle:
            description, _ = _read_description(handle.read)
        if description["token"] != storage_token(folder, collection):
            return None
        return len(description["ids"])
    except (OSError, ValueError, KeyError, TypeError, struct.error, SnapshotUnusable):
        return None


def remove_snapshot(folder: Path, collection: str) -> None:
    """Before a write: a snapshot must never outlive the storage it describes."""
    # Not removable (a read-only folder, which no write reaches either): the token still
    # tells the next reader that it is stale.
    with contextlib.suppress(OSError):
        snapshot_path(folder, collection).unlink()
