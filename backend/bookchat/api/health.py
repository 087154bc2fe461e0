"""GET /api/health: cheap, bounded, concurrent checks of every dependency; never a secret."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bookchat.api.deps import RuntimeDep
from bookchat.backends import describe_embedder
from bookchat.redact import describe, redact_all
from bookchat.runtime import Runtime

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
# A dependency the chat cannot work without makes the service unhealthy; the others degrade it.
REQUIRED = ("database", "vector_store", "embedder")
_UP = {"up", "ok", "healthy", "ready"}


# A check that ran out of time while the event loop itself ran this late is not held against
# the dependency: its answer may have been waiting for the loop (100 busy streams), not late.
BUSY_LOOP_SECONDS = 0.5
_LAG_PROBE_SECONDS = 0.05


class LoopLag:
    """How late the event loop ran a short timer, at worst, while a health request ran."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def watch(self) -> None:
        """Measure until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(_LAG_PROBE_SECONDS)
            self.worst = max(self.worst, loop.time() - started - _LAG_PROBE_SECONDS)


def _database_target(runtime: Runtime) -> dict[str, Any]:
    # Until the engine is open, only which kind of database is configured.
    backend = "sqlite" if runtime.settings.sqlalchemy_url.startswith("sqlite") else "postgresql"
    return {"backend": backend}


async def _bounded(
    runtime: Runtime,
    check: Callable[[], Awaitable[dict[str, Any]]] | None,
    base: dict[str, Any],
    lag: LoopLag,
) -> dict[str, Any]:
    if check is None:
        return {**base, "status": "starting"}
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        # The check's own timeout is the contract; this one is the guarantee.
        result = dict(await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS + 1.0))
    except TimeoutError:
        result = {"status": "down", "error": f"no answer within {CHECK_TIMEOUT_SECONDS:.0f} s"}
    except Exception as exc:
        result = {"status": "down", "error": describe(exc, runtime.settings.secrets())}
    status = str(result.pop("status", "down")).lower()
    timed_out = loop.time() - started >= CHECK_TIMEOUT_SECONDS
    if status not in _UP and timed_out and lag.worst >= BUSY_LOOP_SECONDS:
        # A refusal or an error fails at once and still counts; only running out of time on
        # a loop this late is the server's own busyness.
        log.warning("health: a check ran out of time on a busy event loop (%.1f s late)", lag.worst)
        result.pop("error", None)
        result["detail"] = (
            f"no answer within {CHECK_TIMEOUT_SECONDS:g} s while the server was busy (its event "
            f"loop ran {lag.worst:.1f} s late); not counted as down"
        )
        status = "up"
    # "empty": a vector store that answers but holds no book yet (degraded, not down).
    status = "up" if status in _UP else status if status == "empty" else "down"
    return {**base, **result, "status": status}


async def _services(runtime: Runtime) -> dict[str, dict[str, Any]]:
    described: dict[str, Any] = {}
    if runtime.retriever is not None:
        described = dict(runtime.retriever.describe())

    async def database() -> dict[str, Any]:
        assert runtime.conversations is not None
        return await runtime.conversations.ping(timeout=CHECK_TIMEOUT_SECONDS)

    async def vector_store() -> dict[str, Any]:
        assert runtime.retriever is not None
        return await runtime.retriever.check(timeout=CHECK_TIMEOUT_SECONDS)

    async def llm() -> dict[str, Any]:
        assert runtime.answerer is not None
        return await runtime.answerer.check(timeout=CHECK_TIMEOUT_SECONDS)

    lag = LoopLag()
    checks = {
        "database": _bounded(
            runtime,
            database if runtime.conversations is not None else None,
            _database_target(runtime),
            lag,
        ),
        "vector_store": _bounded(
            runtime, vector_store if runtime.retriever is not None else None, {}, lag
        ),
        "llm": _bounded(
            runtime, llm if runtime.answerer is not None else None, runtime.describe_llm(), lag
        ),
    }
    watcher = asyncio.create_task(lag.watch())
    try:
        results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    finally:
        watcher.cancel()
    results["embedder"] = _embedder(runtime, described, results["vector_store"])
    return results


def _embedder(
    runtime: Runtime, described: dict[str, Any], vector_store: dict[str, Any]
) -> dict[str, Any]:
    info = describe_embedder(runtime.settings)
    # The retriever's check names the embedders its collection was built with.
    built_with = vector_store.pop("embedder", None)
    if runtime.retriever is None:
        return {**info, "status": "starting"}
    info.update(
        dense=described.get("dense"),
        dimensions=described.get("dense_dimensions"),
        sparse=described.get("sparse"),
        legs=described.get("legs"),
    )
    if isinstance(built_with, dict):
        info["index_built_with"] = built_with
    # Query embedding is checked on use (a Gemini probe would be a paid call per health
    # check); a failure shows up as the chat's retrieval_unavailable error.
    return {**info, "status": "up"}


def _overall(runtime: Runtime, services: dict[str, dict[str, Any]]) -> str:
    if runtime.phase == "starting":
        return "starting"
    if runtime.phase == "failed":
        return "unhealthy"
    if any(services[name]["status"] in {"down", "starting"} for name in REQUIRED):
        return "unhealthy"
    if any(service["status"] != "up" for service in services.values()):
        return "degraded"
    return "healthy"


class SharedCheck:
    """One health check at a time: requests that arrive while one runs share its answer.

    A flood of health requests (a platform's probes, a stranger's loop) then costs one check
    of each dependency, not one per request, and the readers' streams keep the event loop.
    """

    def __init__(self) -> None:
        self._running: asyncio.Future[tuple[dict[str, Any], int]] | None = None

    async def answer(self, runtime: Runtime) -> tuple[dict[str, Any], int]:
        """The health body and status code, from the check under way or a new one."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(_answer(runtime))
        # Shielded: a requester that goes away does not cancel the others' answer.
        return await asyncio.shield(self._running)


@router.get(
    "/api/health",
    responses={503: {"description": "starting, degraded or unhealthy; `services` says why"}},
)
async def health(runtime: RuntimeDep, request: Request) -> JSONResponse:
    """Whether bookchat can answer now, and the state of each dependency."""
    body, status_code = await request.app.state.health.answer(runtime)
    return JSONResponse(body, status_code=status_code)


async def _answer(runtime: Runtime) -> tuple[dict[str, Any], int]:
    services = await _services(runtime)
    status = _overall(runtime, services)
    body: dict[str, Any] = {
        "status": status,
        "services": services,
        # Which book's index is served: baked into the image, under the data dir, or a server.
        "index": runtime.index.describe() if runtime.index is not None else None,
        "timestamp": datetime.now(UTC).isoformat(),
        "startup": {
            "phase": runtime.phase,
            "step": runtime.step,
            "attempts": runtime.attempts,
            "error": runtime.error,
        },
    }
    # Belt and braces: whatever a check reported, no configured secret leaves the process.
    body = redact_all(body, runtime.settings.secrets())
    if runtime.settings.health_detail != "full":
        body = public_view(body, runtime.settings.secrets())
    return body, 200 if status == "healthy" else 503


# Where things are: for the owner (BOOKCHAT_HEALTH_DETAIL=full), not for anyone on the internet.
_WHERE_KEYS = frozenset({"target", "host", "url", "prebuilt", "path"})


def public_view(body: dict[str, Any], secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """The health body anyone may read: states, backends and causes, not where things are.

    Keys that only say where are dropped; every other text is scrubbed by bookchat.redact,
    the same function the logs use for upstream text.
    """

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _WHERE_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return redact_all(strip(body), secrets, hide_where=True)
