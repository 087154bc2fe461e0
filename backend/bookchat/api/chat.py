"""POST /api/chat: a question in, the cited answer out as Server-Sent Events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bookchat.api.admission import (
    Admission,
    Admitted,
    BudgetSpent,
    Refused,
    client_of,
    origin_of,
)
from bookchat.api.deps import (
    AdmissionDep,
    AnswererDep,
    ConversationStoreDep,
    ReadyRuntimeDep,
    RetrieverDep,
)
from bookchat.api.errors import NO_NUL_PATTERN, NOT_BLANK_NO_NUL_PATTERN, ApiError, storable
from bookchat.api.sse import documented_events, event_stream
from bookchat.rag.chat import MAX_CONVERSATION_MESSAGES, ChatTurn, begin_turn, stream_turn
from bookchat.runtime import Runtime
from bookchat.stores.errors import (
    ConversationFull,
    ConversationNotFound,
    StorageFull,
    StoreUnavailable,
)

router = APIRouter(tags=["chat"])

MAX_MESSAGE_CHARS = 2000
# A highlighted passage can be long, but the whole body is capped at 64 KiB anyway.
MAX_CONTEXT_CHARS = 20_000


class ChatRequest(BaseModel):
    """What the widget sends: a message, the mode, the highlighted text, the conversation."""

    model_config = ConfigDict(
        extra="ignore",
        # The selection rule below, said in the schema as well (the validator decides).
        json_schema_extra={
            "if": {"properties": {"mode": {"const": "selection"}}, "required": ["mode"]},
            "then": {
                "required": ["context"],
                "properties": {"context": {"type": "string", "pattern": NOT_BLANK_NO_NUL_PATTERN}},
            },
        },
    )

    message: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        json_schema_extra={"pattern": NOT_BLANK_NO_NUL_PATTERN},
    )
    mode: Literal["general", "selection"] = "general"
    # validate_default: the selection check below must also run when context is omitted.
    context: str | None = Field(
        default=None,
        max_length=MAX_CONTEXT_CHARS,
        validate_default=True,
        json_schema_extra={"pattern": NO_NUL_PATTERN},
    )
    conversation_id: uuid.UUID | None = None

    @field_validator("message", "context")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return storable(value)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain some text, not only spaces")
        return value.strip()

    @field_validator("context")
    @classmethod
    def _selection_needs_context(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("mode") == "selection" and not (value and value.strip()):
            raise ValueError('is required when mode is "selection": send the highlighted text')
        return value


# Shown to the reader (the page and the widget) when the offline answerer stands in for Gemini.
BUDGET_SPENT_NOTICE = {
    "code": "llm_budget_spent",
    "message": "Today's budget of AI answers is spent: this answer quotes the book's passages "
    "directly instead.",
}
CLIENT_BUDGET_SPENT_NOTICE = {
    "code": "llm_client_budget_spent",
    "message": "You have used today's share of AI answers: this answer quotes the book's "
    "passages directly instead. AI answers are back tomorrow (UTC).",
}
_NOTICES: dict[BudgetSpent, dict[str, str]] = {
    "client": CLIENT_BUDGET_SPENT_NOTICE,
    "total": BUDGET_SPENT_NOTICE,
}


def _ledger(admission: Admission, runtime: Runtime) -> None:
    """Count the day's LLM calls in the conversation database once it is open."""
    if admission.ledger is None and runtime.conversations is not None:
        admission.ledger = runtime.conversations.llm_calls


async def admit_chat(
    request: Request, admission: AdmissionDep, runtime: ReadyRuntimeDep
) -> AsyncIterator[Admitted]:
    """Apply the abuse limits before anything is stored; held until the stream has ended."""
    client = client_of(request.scope, admission.policy)
    if runtime.llm_backed:
        _ledger(admission, runtime)
    async with AsyncExitStack() as stack:
        try:
            admitted = await stack.enter_async_context(
                admission.admit(client, llm_backed=runtime.llm_backed)
            )
        except Refused as refused:
            raise ApiError(
                429,
                refused.code,
                refused.message,
                headers={"Retry-After": str(refused.retry_after)},
                retry_after=refused.retry_after,
            ) from None
        yield admitted


AdmittedDep = Annotated[Admitted, Depends(admit_chat)]


async def open_turn(
    body: ChatRequest,
    store: ConversationStoreDep,
    runtime: ReadyRuntimeDep,
    admitted: AdmittedDep,  # admitted first: a refused chat stores nothing
) -> AsyncIterator[ChatTurn]:
    """Store the question before the stream starts, so store errors are plain HTTP errors."""
    try:
        turn = await begin_turn(
            store,
            conversation_id=body.conversation_id,
            message=body.message,
            mode=body.mode,
            context=body.context,
        )
    except ConversationNotFound:
        raise ApiError(
            404,
            "conversation_not_found",
            f"no conversation has id {body.conversation_id}; "
            "omit conversation_id to start a new conversation",
        ) from None
    except ConversationFull:
        raise ApiError(
            409,
            "conversation_too_long",
            f"this conversation has reached {MAX_CONVERSATION_MESSAGES} messages; "
            "omit conversation_id to start a new conversation",
        ) from None
    except StorageFull:
        raise ApiError(
            507,
            "storage_full",
            "the conversation store is full, so the question could not be stored; "
            "the site's owner has to free space",
            headers={"Retry-After": "60"},
        ) from None
    except StoreUnavailable:
        raise ApiError(
            503,
            "database_unavailable",
            "the conversation store cannot be reached; nothing was stored, please retry",
            headers={"Retry-After": "5"},
        ) from None
    runtime.streaming[turn.user_message_id] = turn
    try:
        yield turn
    finally:
        runtime.streaming.pop(turn.user_message_id, None)
        # Runs after the response has ended, whatever ended it: a safety net for an answer
        # cut short before the stream could store it itself.
        await turn.close()


TurnDep = Annotated[ChatTurn, Depends(open_turn)]


@router.post(
    "/api/chat",
    # Documented as FastAPI documents a yielding SSE route; the route returns the response.
    response_class=Response,
    responses={
        200: {
            "description": "metadata, token…, then done (with sources) or error events",
            "content": documented_events("Streamitem Chat Api Chat Post"),
        },
        404: {"description": "conversation_id names no conversation"},
        409: {"description": "the conversation is full; start a new one"},
        422: {"description": "the body is out of range; `detail` says which field and why"},
        429: {"description": "a limit was reached; `code` says which, Retry-After when to retry"},
        503: {"description": "starting, or the conversation store is unreachable"},
        507: {"description": "the conversation store is full (a full disk)"},
    },
)
async def chat(
    turn: TurnDep,
    admitted: AdmittedDep,
    runtime: ReadyRuntimeDep,
    retriever: RetrieverDep,
    answerer: AnswererDep,
    admission: AdmissionDep,
    request: Request,
) -> EventSourceResponse:
    """Answer a question about the book as a stream of JSON events, one per `data:` line."""
    notice: dict[str, str] | None = None
    if admitted.budget_spent is not None:
        answerer, notice = runtime.offline_answerer(), _NOTICES[admitted.budget_spent]
    stream = stream_turn(
        turn,
        retriever=retriever,
        answerer=answerer,
        stopping=runtime.stopping,
        origin=origin_of(request.scope, admission.policy),
    )
    # Returned as a response rather than yielded through FastAPI's SSE path: the same bytes
    # for a fraction of the CPU per event (api/sse.py). The dependencies above (the admission,
    # the stored question) are held until the stream has ended, as for a yielding route.
    return event_stream(_with_notice(stream, notice))


async def _with_notice(
    stream: AsyncIterator[dict[str, Any]], notice: dict[str, str] | None
) -> AsyncIterator[dict[str, Any]]:
    async with aclosing(stream) as events:
        async for event in events:
            if notice is not None and event.get("type") == "metadata":
                event = {**event, "notice": notice}
            yield event


class StopRequest(BaseModel):
    """Which answer to stop: the `user_message_id` of its question, from the metadata event."""

    model_config = ConfigDict(extra="ignore")

    user_message_id: uuid.UUID


@router.post(
    "/api/chat/stop",
    status_code=202,
    responses={
        202: {"description": "the answer stops; its stream ends with done (stopped: true)"},
        404: {"description": "no answer to that question is streaming (never, or finished)"},
        422: {"description": "user_message_id is missing or not a UUID"},
    },
)
async def stop_chat(body: StopRequest, runtime: ReadyRuntimeDep) -> dict[str, Any]:
    """Stop a streaming answer: what was streamed is stored with status "stopped"."""
    turn = runtime.streaming.get(body.user_message_id)
    if turn is None:
        raise ApiError(
            404,
            "not_streaming",
            f"no answer to question {body.user_message_id} is streaming; it may have finished",
        )
    turn.stop_requested.set()
    return {"user_message_id": str(body.user_message_id), "stopping": True}
