"""The one redaction module: secrets out of every text that leaves the process (health, logs).

Callers pass the secrets they know (Settings.secrets(): the API keys and the database
password); patterns catch what no one configured: a password in a URL, a key in a query string.
Use `describe(exc, secrets)` wherever an exception becomes text, `redact(text, secrets)` for any
other text, `redact_url(url)` to show where a service is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
MAX_DESCRIPTION_CHARS = 300
MIN_SECRET_CHARS = 3  # shorter values would mask ordinary words
_CREDENTIALS_IN_URL = re.compile(r"(://[^/\s:@]+):[^@\s/]+@")
_KEY_IN_QUERY = re.compile(r"((?:key|api_key|password|token)=)[^&\s]+", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with each secret, URL password and key=… query value replaced by ***."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, MASK)
    text = _CREDENTIALS_IN_URL.sub(rf"\1:{MASK}@", text)
    return _KEY_IN_QUERY.sub(rf"\1{MASK}", text)


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """One line for a log or an operator: the error's type and first line, secrets removed."""
    first = (str(exc).strip().splitlines() or [""])[0].strip()
    message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return redact(message, secrets)[:MAX_DESCRIPTION_CHARS]


def redact_all(value: Any, secrets: Iterable[str] = ()) -> Any:
    """redact() over every string in a JSON-like value (dicts, lists), keys left alone."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_all(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_all(v, secrets) for v in value]
    return value


def redact_url(url: str) -> str:
    """Where a service is: scheme, host, port and path; no user, password or query string.

    A user name is half a credential, and a query string is where keys and tokens go.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
