"""Offline dense embedder: a static token table distilled from all-MiniLM-L6-v2, in the package.

A text's vector is the L2-normalised mean of its tokens' rows, so embedding needs only numpy
and tokenizers: no network, no model download, no torch. How the table was made:
static_model/README.md and backend/tools/distill_static_model.py.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import itertools
import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

MODEL_DIR = Path(__file__).with_name("static_model")
# Longer inputs are cut: a mean over 512 word pieces is already stable, and the cut bounds the
# cost of a pathological chunk. Characters are cut first so the tokenizer never sees megabytes.
MAX_TOKENS = 512
MAX_CHARS = MAX_TOKENS * 12
# Batches up to this size are embedded inline (well under a millisecond); larger ones in a thread
# so a big ingest batch does not stall the event loop.
INLINE_BATCH = 8


class StaticEmbedder:
    """DenseEmbedder over a static token-embedding table; documents and queries embed alike."""

    # Embedding costs microseconds and no request: retrieval may embed extra texts (the pages'
    # outlines, rag/pages.py) that a remote embedder would charge for.
    local = True

    def __init__(
        self, *, tokenizer: Tokenizer, values: np.ndarray, scales: np.ndarray, fingerprint: str
    ) -> None:
        # Rows stay int8 (a quarter of the memory); a row is values[i] * scales[i].
        self._tokenizer = tokenizer
        self._values = values
        self._scales = scales
        self._name = f"local:minilm-static-{values.shape[1]}-{fingerprint[:12]}"

    @classmethod
    def load(cls) -> StaticEmbedder:
        """The embedder over the model files shipped in the package, loaded once per process."""
        return _load_shipped()

    @classmethod
    def from_directory(cls, directory: Path) -> StaticEmbedder:
        """Load tokenizer.json and embeddings.npz from `directory` (used by load and the tools)."""
        tokenizer_bytes = (directory / "tokenizer.json").read_bytes()
        table_bytes = (directory / "embeddings.npz").read_bytes()
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        # The name must change whenever the files do, so a collection built with other vectors
        # is recognised as stale rather than silently queried with incompatible ones.
        fingerprint = hashlib.sha256(tokenizer_bytes + table_bytes).hexdigest()
        tokenizer = Tokenizer.from_str(tokenizer_bytes.decode("utf-8"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        with np.load(io.BytesIO(table_bytes), allow_pickle=False) as arrays:
            values, scales = arrays["values"], arrays["scales"].astype(np.float32)
        if (
            values.shape != (tokenizer.get_vocab_size(), config["dimensions"])
            or values.shape[:1] != scales.shape
        ):
            raise ValueError(f"{directory}: table shape {values.shape} does not match its config")
        return cls(tokenizer=tokenizer, values=values, scales=scales, fingerprint=fingerprint)

    @property
    def name(self) -> str:
        """Identity including a fingerprint of the model files, e.g. local:minilm-static-256-…."""
        return self._name

    @property
    def dimensions(self) -> int:
        """Length of every vector."""
        return int(self._values.shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts synchronously: a unit-length float32 row each (zeros: no known token)."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if not texts:
            return out
        # Special tokens are not added, and their rows (like [UNK]'s) are zero, so they add nothing.
        encodings = self._tokenizer.encode_batch(
            [text[:MAX_CHARS] for text in texts], add_special_tokens=False
        )
        ids = [encoding.ids for encoding in encodings]
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64)
        rows = self._values[flat].astype(np.float32) * self._scales[flat, None]
        start = 0
        for index, text_ids in enumerate(ids):
            end = start + len(text_ids)
            # A per-text sum (not reduceat, which is slow along rows) keeps a text's vector
            # independent of the batch it arrives in.
            total = rows[start:end].sum(axis=0)
            start = end
            norm = float(np.linalg.norm(total))
            # Normalising the sum equals normalising the mean; a text without known tokens stays
            # a zero vector, which matches nothing rather than producing NaN.
            if norm > 0:
                out[index] = total / norm
        return out

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages; big batches run in a worker thread."""
        if len(texts) <= INLINE_BATCH:
            return self.encode(texts).tolist()
        return (await asyncio.to_thread(self.encode, texts)).tolist()

    async def embed_query(self, text: str) -> list[float]:
        """Embed one question."""
        return self.encode([text])[0].tolist()


@functools.cache
def _load_shipped() -> StaticEmbedder:
    return StaticEmbedder.from_directory(MODEL_DIR)
