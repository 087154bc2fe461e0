"""One place that builds the google-genai client, imported lazily to keep start-up fast."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google import genai


def genai_client(*, api_key: str, base_url: str | None, timeout: float) -> genai.Client:
    """An async-capable google-genai client for the Gemini Developer API (or base_url)."""
    from google import genai
    from google.genai import types

    http_options = types.HttpOptions(
        base_url=base_url,
        # The SDK's timeout is in milliseconds and applies per HTTP request.
        timeout=int(timeout * 1000),
    )
    return genai.Client(api_key=api_key, http_options=http_options)
