"""GET /api/conversation/{id}: a stored conversation, oldest message first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from bookchat.api.deps import SessionDep
from bookchat.api.errors import ApiError

router = APIRouter(tags=["conversations"])


class MessageOut(BaseModel):
    """One stored message; `status` tells a complete answer from a partial or failed one."""

    id: str
    role: Literal["user", "assistant"]
    content: str
    sources: list[dict[str, Any]]
    created_at: datetime
    status: str = "complete"


class ConversationOut(BaseModel):
    """A conversation and its messages, oldest first."""

    conversation_id: uuid.UUID
    messages: list[MessageOut]


def _message_out(message: Any) -> MessageOut:
    return MessageOut(
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
async def read_conversation(conversation_id: uuid.UUID, session: SessionDep) -> ConversationOut:
    """A conversation's messages, oldest first."""
    from sqlalchemy.exc import SQLAlchemyError

    from bookchat.stores.conversations import get_conversation

    try:
        conversation = await get_conversation(session=session, conversation_id=conversation_id)
    except (SQLAlchemyError, OSError, TimeoutError):
        raise ApiError(
            503,
            "database_unavailable",
            "the conversation store cannot be reached; please retry",
            headers={"Retry-After": "5"},
        ) from None
    if conversation is None:
        raise ApiError(404, "conversation_not_found", f"no conversation has id {conversation_id}")
    return ConversationOut(
        conversation_id=conversation_id,
        messages=[_message_out(m) for m in conversation.messages],
    )
