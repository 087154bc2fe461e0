"""create_app(settings): the one way to build the bookchat HTTP service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from bookchat import __version__
from bookchat.api import api_docs, book_pages, chat, conversations, feedback, health, page
from bookchat.api.admission import Admission, AdmissionPolicy
from bookchat.api.errors import (
    BodyLimitMiddleware,
    UnhandledErrorMiddleware,
    install_error_handlers,
)
from bookchat.api.headers import DefaultHeadersMiddleware
from bookchat.config import Settings
from bookchat.logs import AccessLogMiddleware
from bookchat.runtime import Runtime
from bookchat.stores.index_dir import ServedIndex

log = logging.getLogger(__name__)


def admission_policy(settings: Settings) -> AdmissionPolicy:
    """The abuse limits as configured."""
    return AdmissionPolicy(
        chats_per_minute=settings.chats_per_minute,
        streams_per_client=settings.streams_per_client,
        concurrent_answers=settings.concurrent_llm_calls,
        queue=settings.llm_queue,
        queue_seconds=settings.llm_queue_seconds,
        daily_llm_calls=settings.daily_llm_calls,
        daily_llm_calls_per_client=settings.daily_llm_calls_per_client,
        trusted_proxies=tuple(settings.trusted_proxies),
        on_space=settings.space_id is not None,
    )


def _lifespan(settings: Settings, index: ServedIndex | None, started_at: datetime | None):
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(
            settings=settings, index=index, started_at=started_at or datetime.now(UTC)
        )
        admission = Admission(admission_policy(settings))
        # The one place routes (api/deps.py) and the server (cli/serve.py: announcing, draining
        # streams on shutdown) find them.
        app.state.runtime = runtime
        app.state.admission = admission
        app.state.health = health.SharedCheck()
        # Start-up work runs in the background so /api/health answers "starting" at once.
        startup = asyncio.create_task(runtime.start(), name="bookchat-startup")
        try:
            yield
        finally:
            startup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await startup
            await runtime.aclose()
            await admission.aclose()

    return lifespan


def create_app(
    settings: Settings, *, index: ServedIndex | None = None, started_at: datetime | None = None
) -> FastAPI:
    """A configured bookchat app; its lifespan opens the clients and readies the data.

    For `bookchat serve`'s worker processes: index, the embedded index as serve prepared it
    (backends.share_embedded_index; otherwise start-up prepares it), and started_at, when
    serve started them (otherwise when the lifespan starts): questions stored without an owner
    (by an older bookchat), asked before it and left unanswered, are marked failed, so a worker
    started later must not take its own start.
    """
    app = FastAPI(
        title="bookchat",
        version=__version__,
        summary="Cited answers about a Docusaurus book, streamed over Server-Sent Events.",
        lifespan=_lifespan(settings, index, started_at),
        # FastAPI's own /docs would load CDN scripts with no policy (and /docs/ is the sample
        # book's): its docs pages come from api_docs, when turned on, or not at all.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(conversations.router)
    app.include_router(feedback.router)
    app.include_router(page.build_router(frame_ancestors=settings.frame_ancestors))
    app.include_router(book_pages.router)
    if settings.api_docs == "on":
        app.include_router(
            api_docs.build_router(openapi_url=app.openapi_url or "", title=app.title)
        )

    # Innermost first: errors become JSON inside CORS, so a browser can read a 500 too.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    if settings.allowed_origins:
        # Exactly the configured origins; with none configured no CORS header is ever sent.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
            # The widget on a book's site reads how long to wait after a 429 or 503.
            expose_headers=["Retry-After"],
            max_age=600,
        )
    app.add_middleware(DefaultHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware)
    return app
