"""The stores' errors: Qdrant's failures as one clear sentence (what happened, where, what to
do), and the conversation store's outcomes a route turns into an HTTP status."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_PORT = 6333  # what qdrant-client assumes when QDRANT_URL names no port
# Ports Hugging Face Spaces let a Space connect out to; others (PostgreSQL's 5432) may be blocked.
OPEN_OUTBOUND_PORTS = (80, 443, 8080)
HF_HINT = (
    "Hugging Face Spaces allow outbound connections only on ports 80, 443 and 8080; "
    "Qdrant Cloud also serves on 443 (use https://…:443)"
)


def port_may_be_blocked(host_port: str | None) -> bool:
    """Whether the Spaces port rule can explain a failure to reach host:port.

    Not for this machine or a private network (the service is not on a Space then, and the
    hint would only be noise), nor for a port a Space may use.
    """
    if not host_port:
        return False
    host, _, port = host_port.rpartition(":")
    host = host.strip("[]").lower()
    if port.isdigit() and int(port) in OPEN_OUTBOUND_PORTS:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a host name: a remote service, as far as we can tell
    return not (address.is_loopback or address.is_private or address.is_link_local)


def _where_hint(where: str) -> str:
    """HF_HINT when the host and port in "Qdrant at host:port" make it relevant, else ''."""
    return HF_HINT if port_may_be_blocked(where.rpartition(" ")[2]) else ""


class StoreError(Exception):
    """A store (Qdrant or the conversation database) failed or refused."""


class StoreUnavailable(StoreError):
    """A store cannot be reached or opened right now; for the conversation store, nothing was
    stored. The message says what to do (Qdrant's) or names the driver's error kind."""


class StorageFull(StoreError):
    """The conversation store has no room for the question (a full disk); nothing was stored."""


class ConversationNotFound(StoreError):
    """The conversation_id names no stored conversation."""


class ConversationFull(StoreError):
    """The conversation holds as many messages as it may; nothing was stored."""


class VectorStoreError(StoreError):
    """Qdrant failed or refused; the message says what happened and what to do."""


class EmbedderMismatch(VectorStoreError):
    """The collection was built by other embedders than the ones configured."""


class QdrantHTTPError(Exception):
    """A Qdrant server answered with an error status (stores/qdrant_http.py); guarded() words it.

    Only the status is kept: the body's text comes from outside and may name the collection,
    a host or a key.
    """

    def __init__(self, status_code: int, reason_phrase: str) -> None:
        super().__init__(f"HTTP {status_code} {reason_phrase}".strip())
        self.status_code = status_code
        self.reason_phrase = reason_phrase


def timed_out(where: str, limit: float) -> StoreUnavailable:
    """No answer in time: most often a blocked port."""
    hint = _where_hint(where)
    if hint:
        return StoreUnavailable(
            f"{where} did not answer within {limit:g} s: is the port blocked? {hint}"
        )
    return StoreUnavailable(
        f"{where} did not answer within {limit:g} s: is Qdrant running there, and busy?"
    )


def transport_error(exc: BaseException, where: str, limit: float) -> StoreUnavailable:
    """An httpx transport failure (refused, unresolvable, timed out) in a reader's words."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return timed_out(where, limit)
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc) or "connection failed"
        if "refused" in reason.lower() or "errno 111" in reason.lower():
            return StoreUnavailable(
                f"{where} refused the connection: is Qdrant running, and is QDRANT_URL right?"
            )
        hint = _where_hint(where)
        if hint:
            return StoreUnavailable(f"{where} could not be reached ({reason}). {hint}")
        return StoreUnavailable(
            f"{where} could not be reached ({reason}): is Qdrant running, and is QDRANT_URL right?"
        )
    return StoreUnavailable(f"{where} could not be reached: {type(exc).__name__}")


async def guarded(make: Callable[[], Awaitable[T]], *, where: str, limit: float) -> T:
    """Run one call to a Qdrant server with a bounded time and errors that name host and cause."""
    import httpx

    try:
        return await asyncio.wait_for(make(), timeout=limit + 1.0)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise timed_out(where, limit) from exc
    except httpx.TransportError as exc:
        raise transport_error(exc, where, limit) from exc
    except QdrantHTTPError as exc:
        if exc.status_code in (401, 403):
            raise StoreUnavailable(
                f"{where} refused access (HTTP {exc.status_code}): check QDRANT_API_KEY"
            ) from exc
        message = f"{where} answered HTTP {exc.status_code} {exc.reason_phrase}".strip()
        if exc.status_code == 404:
            # The collection is gone (deleted, or never ingested there), or QDRANT_URL's path
            # is not Qdrant's root.
            message += (
                ": are QDRANT_URL and QDRANT_COLLECTION right, and has `bookchat ingest` run?"
            )
        raise VectorStoreError(message) from exc
