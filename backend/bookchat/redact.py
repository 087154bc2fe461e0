"""The one redaction module: secrets and internals out of every text that leaves the process.

Two strengths, one module:
- `redact(text, secrets)` masks credentials: the configured secrets (Settings.secrets(): the
  API keys and the database password) and what no one configured (a password in a URL, an API
  key as `key=`, `api-key=`, `api_key:`, `Bearer …`, a Google API key). Every log line gets it.
- `scrub(text, secrets)` also hides where things are (URLs, file paths, hosts and ports, IP
  addresses, `user "…"`): for text from outside (an upstream's error) and for anyone on the
  internet (public health).
Use `describe(exc, secrets)` wherever an exception becomes text for a log or an operator,
`redact_url(url)` to show where a service is, and `escape_controls(text)` for any line a log or a
terminal shows.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
MAX_DESCRIPTION_CHARS = 300
MIN_SECRET_CHARS = 3  # shorter values would mask ordinary words

# Every pattern here runs on every log line, including a request path a stranger chose, so each
# one is linear: a repeated part starts only where a run of its characters starts (a negative
# lookbehind) and is possessive (*+, ++: Python 3.11), so a failed match never backtracks into
# it. A plain \b[\w-]*key= took 3.6 s on a 16 KB path of "a-a-a-…" (quadratic).
_NAME_CHARS = r"[\w\-]"
# A secret's value after its name: up to a separator, a quote or a closing bracket.
_VALUE = r"[^\s&'\",;)]++"
# Names whose `name=value` is a credential (lookbehinds at the end of the name's run), and the
# fewer whose `name: value` is one: `key:` alone is prose ("primary key: id").
_ENDS_LIKE_A_SECRET = "|".join(
    f"(?<={end})" for end in ("key", "token", "password", "passwd", "secret", "signature", "sig")
)

# What a credential looks like wherever it was echoed: a URL's userinfo, a `key=` query or
# form value, an `api-key: …` header or `Consumer 'api_key:…'` (Google's quota errors), a
# bearer token, and a Google API key's own shape (AIza + 35 characters).
_CREDENTIALS: tuple[tuple[re.Pattern[str], Any], ...] = (
    (re.compile(r"(://)[^/\s@'\"]++@"), rf"\1{MASK}@"),
    (
        re.compile(
            rf"(?<!{_NAME_CHARS})({_NAME_CHARS}*+(?:{_ENDS_LIKE_A_SECRET})['\"]?\s*+=\s*+['\"]?)"
            rf"{_VALUE}",
            re.IGNORECASE,
        ),
        rf"\1{MASK}",
    ),
    (
        re.compile(
            rf"(?<!{_NAME_CHARS})((?:x-goog-)?api[-_]?key['\"]?\s*+:\s*+['\"]?){_VALUE}",
            re.IGNORECASE,
        ),
        rf"\1{MASK}",
    ),
    (re.compile(r"\b(bearer\s++)[\w\-.~+/]++=*+", re.IGNORECASE), rf"\1{MASK}"),
    (re.compile(r"(?<![\w\-])AIza[\w\-]{30,}+"), MASK),
)


def _ipv6(match: re.Match[str]) -> str:
    candidate = match.group().rstrip(".")
    if candidate.count(":") < 2:
        return match.group()
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return match.group()
    return "<host>" + match.group()[len(candidate) :]


# Where things are: for the owner's eyes (BOOKCHAT_HEALTH_DETAIL=full, the CLI), not a stranger's.
# Linear like the credentials' patterns above.
_WHERE: tuple[tuple[re.Pattern[str], Any], ...] = (
    (re.compile(r"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*+://\S++", re.IGNORECASE), "<url>"),
    (re.compile(r"(?<![\w:/<])(?:[A-Za-z]:\\|\\\\)[^\s'\"]++"), "<path>"),  # C:\… and \\share\…
    (re.compile(r"(?<![\w:<./~@+\-])(?:/[\w.\-~@+]++)++/?"), "<path>"),
    (re.compile(r"\b(user|role|database)\s++\"[^\"]{0,200}+\"", re.IGNORECASE), r'\1 "<hidden>"'),
    (re.compile(r"\[[0-9a-f:.]++\](?::\d++)?", re.IGNORECASE), "<host>"),
    (re.compile(r"(?<![\w\-.])[\w\-]++(?:\.[\w\-]++)++:\d{1,5}\b"), "<host>"),
    (re.compile(r"\blocalhost:\d{1,5}\b"), "<host>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<host>"),
    # A bare IPv6 address: candidates are checked by ipaddress, so "12:30:45" stays a time.
    (re.compile(r"(?<![\w:.])[0-9a-f:.]*+(?![\w:])", re.IGNORECASE), _ipv6),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with each secret and anything shaped like a credential replaced by ***."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, MASK)
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """redact(), and no URL, file path, host, address or user name left in the text either."""
    text = redact(text, secrets)
    for pattern, replacement in _WHERE:
        text = pattern.sub(replacement, text)
    return text


def first_line(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """An exception's own first line, credentials masked, bounded (for bookchat's own errors)."""
    line = (str(exc).strip().splitlines() or [""])[0].strip()
    return redact(line, secrets)[:MAX_DESCRIPTION_CHARS]


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """One line for a log or an operator: the error's type and first line, scrubbed.

    Scrubbed, not only redacted: an exception's text is often an upstream's, and it names
    hosts, paths and users as readily as keys.
    """
    first = (str(exc).strip().splitlines() or [""])[0].strip()
    message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return scrub(message, secrets)[:MAX_DESCRIPTION_CHARS]


def redact_all(value: Any, secrets: Iterable[str] = (), *, hide_where: bool = False) -> Any:
    """redact() (or scrub(), hide_where) over every string in a JSON-like value, keys kept."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return scrub(value, secrets) if hide_where else redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_all(v, secrets, hide_where=hide_where) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_all(v, secrets, hide_where=hide_where) for v in value]
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


# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional
# controls: any of them in a logged or printed value (a request path with %0a, an upstream
# error, a stranger's question in `bookchat report`) could start a forged log line, drive a
# terminal, or show text in another order than it is (U+202E).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """The text with every control character written as an escape (\\n, \\x1b, \\u202e)."""

    def escaped(match: re.Match[str]) -> str:
        char = match.group()
        if char in _NAMED:
            return _NAMED[char]
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"

    return _CONTROL.sub(escaped, text)
