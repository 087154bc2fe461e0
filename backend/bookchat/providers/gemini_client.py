"""One place that builds the google-genai client, imported lazily to keep start-up fast."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bookchat.config import Settings

if TYPE_CHECKING:
    from google import genai


def make_genai_client(settings: Settings) -> genai.Client:
    """An async-capable google-genai client for the Gemini Developer API (or GEMINI_BASE_URL)."""
    from google import genai
    from google.genai import types

    if settings.gemini_api_key is None:
        raise ValueError("GEMINI_API_KEY is not set")
    http_options = types.HttpOptions(
        base_url=settings.gemini_base_url,
        # The SDK's timeout is in milliseconds and applies per HTTP request.
        timeout=int(settings.gemini_timeout * 1000),
    )
    return genai.Client(
        api_key=settings.gemini_api_key.get_secret_value(),
        http_options=http_options,
    )
