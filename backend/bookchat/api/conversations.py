"""GET /api/conversation/{id}: a stored conversation, oldest message first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from bookchat.api.deps import ConversationStoreDep
from bookchat.api.errors import ApiError
from bookchat.stores.errors import StoreError

router = APIRouter(tags=["conversations"])

# The most a response carries: the newest messages that fit (a conversation holds at most 200,
# but one answer has no fixed length). The page needs the recent turns, not a megabyte.
MAX_RESPONSE_BYTES = 256 * 1024


class MessageOut(BaseModel):
    """One stored message; `status` tells a complete answer from a partial or failed one."""

    id: str
    role: Literal["user", "assistant"]
    content: str
    sources: list[dict[str, Any]]
    created_at: datetime
    status: str = "complete"
    # The reader's vote on an answer, {"rating": "up"|"down", "reason": ...}; null without one.
    feedback: dict[str, Any] | None = None


class ConversationOut(BaseModel):
    """A conversation and its messages, oldest first (the newest that fit, when truncated)."""

    conversation_id: uuid.UUID
    messages: list[MessageOut]
    # How many messages are stored, and whether older ones were left out to bound the size.
    total_messages: int
    truncated: bool = False
    # A live server process is answering its last question now: the answer is stored when its
    # stream ends. (A question whose process died has its `failed` answer by the time it reads.)
    answering: bool = False


def newest_that_fit(messages: list[MessageOut], budget: int) -> list[MessageOut]:
    """The newest messages whose JSON fits in budget bytes, oldest first (always the newest)."""
    kept: list[MessageOut] = []
    for message in reversed(messages):
        budget -= len(message.model_dump_json()) + 1
        if budget < 0 and kept:
            break
        kept.append(message)
    kept.reverse()
    return kept


def _message_out(message: Any, votes: dict[uuid.UUID, Any]) -> MessageOut:
    vote = votes.get(message.id)
    return MessageOut(
        feedback={"rating": vote.rating, "reason": vote.reason} if vote is not None else None,
        id=str(message.id),
        role=message.role,
        content=message.content,
        sources=list(message.sources or []),
        created_at=message.created_at,
        status=getattr(message, "status", None) or "complete",
    )


@router.get(
    "/api/conversation/{conversation_id}",
    responses={404: {"description": "no such conversation"}, 422: {"description": "not a UUID"}},
)
async def read_conversation(
    conversation_id: uuid.UUID, store: ConversationStoreDep
) -> ConversationOut:
    """A conversation's messages, oldest first."""
    try:
        found = await store.read(conversation_id)
    except StoreError:
        raise ApiError(
            503,
            "database_unavailable",
            "the conversation store cannot be reached; please retry",
            headers={"Retry-After": "5"},
        ) from None
    if found is None:
        raise ApiError(404, "conversation_not_found", f"no conversation has id {conversation_id}")
    conversation, votes = found
    messages = [_message_out(m, votes) for m in conversation.messages]
    kept = newest_that_fit(messages, MAX_RESPONSE_BYTES)
    return ConversationOut(
        conversation_id=conversation_id,
        messages=kept,
        total_messages=len(messages),
        truncated=len(kept) < len(messages),
        answering=conversation.answering,
    )
