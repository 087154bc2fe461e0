"""POST /api/feedback: a reader's thumbs up or down on an answer, with an optional reason."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bookchat.api.deps import ConversationStoreDep
from bookchat.api.errors import NO_NUL_PATTERN, ApiError, storable
from bookchat.stores.errors import StoreError

router = APIRouter(tags=["feedback"])

MAX_REASON_CHARS = 500


class FeedbackRequest(BaseModel):
    """A vote on the answer with this `message_id` (from the done event or the conversation)."""

    model_config = ConfigDict(extra="ignore")

    message_id: uuid.UUID
    rating: Literal["up", "down"]
    reason: str | None = Field(
        default=None, max_length=MAX_REASON_CHARS, json_schema_extra={"pattern": NO_NUL_PATTERN}
    )

    @field_validator("reason")
    @classmethod
    def _clean_reason(cls, value: str | None) -> str | None:
        value = storable(value)
        return None if value is None else value.strip() or None


class FeedbackOut(BaseModel):
    """The vote as stored: a repeated vote replaces the earlier one."""

    message_id: uuid.UUID
    rating: str
    reason: str | None
    updated_at: datetime


@router.post(
    "/api/feedback",
    responses={
        404: {"description": "no answer has this message_id"},
        422: {"description": "rating is not up or down, the reason is too long, or a bad id"},
        503: {"description": "the conversation store cannot be reached"},
    },
)
async def give_feedback(body: FeedbackRequest, store: ConversationStoreDep) -> FeedbackOut:
    """Store a reader's vote on an answer (one per answer; voting again updates it)."""
    try:
        stored = await store.set_feedback(
            message_id=body.message_id, rating=body.rating, reason=body.reason
        )
    except StoreError:
        raise ApiError(
            503,
            "database_unavailable",
            "the conversation store cannot be reached; the vote was not stored, please retry",
            headers={"Retry-After": "5"},
        ) from None
    if stored is None:
        raise ApiError(
            404, "message_not_found", f"no answer has id {body.message_id}; votes are on answers"
        )
    return FeedbackOut(
        message_id=stored.message_id,
        rating=stored.rating,
        reason=stored.reason,
        updated_at=stored.updated_at,
    )
