"""Typed dependencies: the lifespan's clients, handed to routes from app.state.

Every one is `async def` though none awaits: FastAPI runs a plain `def` dependency in AnyIO's
thread pool, a thread hop per dependency per request; at 50 readers that pool grew to 40
threads, each with its own stack and glibc malloc arena (backend/docs/benchmarks.md, issue 12
memory pass). These only read app.state, so they belong on the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from bookchat.api.admission import Admission
from bookchat.api.errors import ApiError
from bookchat.runtime import Runtime

if TYPE_CHECKING:
    from bookchat.stores.conversation_store import ConversationStore

# Seconds a client is told to wait while start-up work (tables, sample book) is running.
RETRY_AFTER_STARTING = "2"


async def get_runtime(request: Request) -> Runtime:
    """The app's Runtime, which its lifespan placed in app.state."""
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_admission(request: Request) -> Admission:
    """The app's abuse limits, which its lifespan placed in app.state."""
    return request.app.state.admission


AdmissionDep = Annotated[Admission, Depends(get_admission)]


# Fixed sentences per code: which step failed, and why (hosts, ports, drivers' words), is
# for the log and the owner's health view, never for a reader.
STARTING = "bookchat is starting; retry in a moment"
NOT_READY = "bookchat cannot answer yet: start-up failed and it keeps retrying; retry shortly"


async def get_ready_runtime(runtime: RuntimeDep) -> Runtime:
    """The Runtime once start-up work is done; a 503 the client can retry until then."""
    if runtime.phase == "starting":
        raise ApiError(503, "starting", STARTING, headers={"Retry-After": RETRY_AFTER_STARTING})
    if runtime.phase == "failed":
        raise ApiError(503, "unavailable", NOT_READY, headers={"Retry-After": "10"})
    return runtime


ReadyRuntimeDep = Annotated[Runtime, Depends(get_ready_runtime)]


async def get_conversation_store(runtime: ReadyRuntimeDep) -> ConversationStore:
    """The conversation store (opened by start-up, before the runtime is ready)."""
    assert runtime.conversations is not None
    return runtime.conversations


async def get_retriever(runtime: ReadyRuntimeDep) -> Any:
    """The book retriever."""
    return runtime.retriever


async def get_answerer(runtime: ReadyRuntimeDep) -> Any:
    """The answerer (Gemini or offline)."""
    return runtime.answerer


if TYPE_CHECKING:
    from bookchat.rag.answerer import Answerer
    from bookchat.rag.retrieve import BookRetriever

    ConversationStoreDep = Annotated[ConversationStore, Depends(get_conversation_store)]
    RetrieverDep = Annotated[BookRetriever, Depends(get_retriever)]
    AnswererDep = Annotated[Answerer, Depends(get_answerer)]
else:
    # At run time FastAPI evaluates these annotations; Any keeps SQLAlchemy and the SDKs out
    # of the import path of /api/health (a quarter of a second each at start-up).
    ConversationStoreDep = Annotated[Any, Depends(get_conversation_store)]
    RetrieverDep = Annotated[Any, Depends(get_retriever)]
    AnswererDep = Annotated[Any, Depends(get_answerer)]
