"""Gemini's failures as codes: HTTP statuses, RetryInfo delays, finish reasons that block."""

from __future__ import annotations

import re
from typing import Any

BLOCKED_FINISH_REASONS = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE"}
)
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


class LLMError(Exception):
    """Gemini gave no (complete) reply; `code` says why, e.g. "llm_rate_limited"."""

    def __init__(self, code: str, *, started: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.started = started  # True when some of the reply had already been streamed


def code_for_status(status: int | None) -> str:
    """The error code for an HTTP status from the Gemini API."""
    if status == 429:
        return "llm_rate_limited"
    if status in (401, 403, 404):
        return "llm_misconfigured"
    if status == 400:
        return "llm_rejected"
    return "llm_unavailable"


def retry_delay(exc: Any) -> float | None:
    """The server's RetryInfo delay ("31s"), when a 429 carries one."""
    details = getattr(exc, "details", None)
    error = details.get("error", details) if isinstance(details, dict) else None
    for item in (error or {}).get("details", []) if isinstance(error, dict) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            match = _RETRY_DELAY.match(str(item.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def describe_error(exc: BaseException) -> str:
    """The exception's type and status code, for the log; never its text (URLs, prompt)."""
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__}" + (f" {code}" if code else "")
