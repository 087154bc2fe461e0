"""Typed dependencies: the lifespan's clients, handed to routes through request.state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from bookchat.api.admission import Admission
from bookchat.api.errors import ApiError
from bookchat.runtime import Runtime

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Seconds a client is told to wait while start-up work (tables, sample book) is running.
RETRY_AFTER_STARTING = "2"


def get_runtime(request: Request) -> Runtime:
    """The app's Runtime, placed in request.state by the lifespan (app.state without a server)."""
    # Servers copy the lifespan's state into each request; an in-process test transport
    # does not, and reaches the same object through app.state.
    runtime = getattr(request.state, "runtime", None)
    return runtime if runtime is not None else request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_admission(request: Request) -> Admission:
    """The app's abuse limits (see get_runtime for why app.state too)."""
    admission = getattr(request.state, "admission", None)
    return admission if admission is not None else request.app.state.admission


AdmissionDep = Annotated[Admission, Depends(get_admission)]


# Fixed sentences per code: which step failed, and why (hosts, ports, drivers' words), is
# for the log and the owner's health view, never for a reader.
STARTING = "bookchat is starting; retry in a moment"
NOT_READY = "bookchat cannot answer yet: start-up failed and it keeps retrying; retry shortly"


def get_ready_runtime(runtime: RuntimeDep) -> Runtime:
    """The Runtime once start-up work is done; a 503 the client can retry until then."""
    if runtime.phase == "starting":
        raise ApiError(503, "starting", STARTING, headers={"Retry-After": RETRY_AFTER_STARTING})
    if runtime.phase == "failed":
        raise ApiError(503, "unavailable", NOT_READY, headers={"Retry-After": "10"})
    return runtime


ReadyRuntimeDep = Annotated[Runtime, Depends(get_ready_runtime)]


def get_sessionmaker(runtime: ReadyRuntimeDep) -> async_sessionmaker[AsyncSession]:
    """The conversation store's session factory (for short sessions around a stream)."""
    assert runtime.sessionmaker is not None
    return runtime.sessionmaker


async def get_session(runtime: ReadyRuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session for one request that does not stream."""
    assert runtime.sessionmaker is not None
    async with runtime.sessionmaker() as session:
        yield session


def get_retriever(runtime: ReadyRuntimeDep) -> Any:
    """The book retriever."""
    return runtime.retriever


def get_answerer(runtime: ReadyRuntimeDep) -> Any:
    """The answerer (Gemini or offline)."""
    return runtime.answerer


if TYPE_CHECKING:
    from bookchat.rag.answerer import Answerer
    from bookchat.rag.retrieve import BookRetriever

    SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
    SessionDep = Annotated[AsyncSession, Depends(get_session)]
    RetrieverDep = Annotated[BookRetriever, Depends(get_retriever)]
    AnswererDep = Annotated[Answerer, Depends(get_answerer)]
else:
    # At run time FastAPI evaluates these annotations; Any keeps SQLAlchemy and the SDKs out
    # of the import path of /api/health (a quarter of a second each at start-up).
    SessionmakerDep = Annotated[Any, Depends(get_sessionmaker)]
    SessionDep = Annotated[Any, Depends(get_session)]
    RetrieverDep = Annotated[Any, Depends(get_retriever)]
    AnswererDep = Annotated[Any, Depends(get_answerer)]
