"""Qdrant failures as one clear sentence: what happened, where, and what to do."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

T = TypeVar("T")

DEFAULT_PORT = 6333  # what qdrant-client assumes when QDRANT_URL names no port
HF_HINT = (
    "Hugging Face Spaces allow outbound connections only on ports 80, 443 and 8080; "
    "Qdrant Cloud also serves on 443 (use https://…:443)"
)


class VectorStoreError(Exception):
    """Qdrant failed or refused; the message says what happened and what to do."""


class StoreUnavailable(VectorStoreError):
    """Qdrant cannot be reached or opened right now."""


class EmbedderMismatch(VectorStoreError):
    """The collection was built by other embedders than the ones configured."""


def timed_out(where: str, limit: float) -> StoreUnavailable:
    """No answer in time: most often a blocked port."""
    return StoreUnavailable(
        f"{where} did not answer within {limit:g} s: is the port blocked? {HF_HINT}"
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
        return StoreUnavailable(f"{where} could not be reached ({reason}). {HF_HINT}")
    return StoreUnavailable(f"{where} could not be reached: {type(exc).__name__}")


class Call(Protocol):
    """One client call, time-bounded, with the errors above (VectorStore._call)."""

    async def __call__(
        self, make: Callable[[], Awaitable[T]], *, timeout: float | None = None
    ) -> T: ...


async def guarded(
    make: Callable[[], Awaitable[T]], *, where: str, limit: float, embedded: bool
) -> T:
    """Run one client call with a bounded time and errors that name host and cause."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    try:
        if embedded:
            # Local mode does its work in-process; a time limit would only abandon it.
            return await make()
        return await asyncio.wait_for(make(), timeout=limit + 1.0)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise timed_out(where, limit) from exc
    except ResponseHandlingException as exc:
        raise transport_error(exc.source, where, limit) from exc
    except httpx.TransportError as exc:
        raise transport_error(exc, where, limit) from exc
    except UnexpectedResponse as exc:
        if exc.status_code in (401, 403):
            raise StoreUnavailable(
                f"{where} refused access (HTTP {exc.status_code}): check QDRANT_API_KEY"
            ) from exc
        raise VectorStoreError(
            f"{where} answered HTTP {exc.status_code} {exc.reason_phrase}".strip()
        ) from exc
