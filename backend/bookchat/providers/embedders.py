"""Building the embedders the settings ask for: Gemini or the offline static model, and BM25."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bookchat.config import Settings
    from bookchat.providers.embedding import DenseEmbedder
    from bookchat.providers.local_sparse import Bm25Encoder


class ConfigurationError(Exception):
    """The settings ask for something that cannot work; the message says what to change."""


def make_dense_embedder(settings: Settings) -> DenseEmbedder | None:
    """Gemini when configured, else the offline static model when installed, else None."""
    if settings.use_gemini_embeddings:
        if settings.gemini_api_key is None:
            raise ConfigurationError("BOOKCHAT_EMBEDDER=gemini needs GEMINI_API_KEY")
        from bookchat.providers.gemini_embedder import GeminiEmbedder

        return GeminiEmbedder.from_settings(settings)
    try:
        from bookchat.providers.static_embedder import StaticEmbedder
    except ModuleNotFoundError as exc:
        if exc.name != "bookchat.providers.static_embedder":
            raise
        return None
    return StaticEmbedder.load()


def make_sparse_encoder() -> Bm25Encoder:
    """The lexical encoder (always present)."""
    from bookchat.providers.local_sparse import Bm25Encoder

    return Bm25Encoder()
