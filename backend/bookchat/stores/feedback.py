"""Readers' votes on answers: stored with the message they are about, one per message."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bookchat.stores.conversation_models import (
    RATINGS,
    Feedback,
    FeedbackRow,
    MessageRow,
    now,
    upsert,
    utc,
)


def _feedback_of(row: FeedbackRow) -> Feedback:
    return Feedback(
        message_id=row.message_id,
        rating=row.rating,
        reason=row.reason,
        updated_at=utc(row.updated_at),
    )


async def set_feedback(
    *, session: AsyncSession, message_id: uuid.UUID, rating: str, reason: str | None
) -> Feedback | None:
    """Store (or replace) the vote on an answer and commit; None if no answer has that id."""
    if rating not in RATINGS:
        raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
    role = await session.scalar(select(MessageRow.role).where(MessageRow.id == message_id))
    if role != "assistant":
        return None
    moment = now()
    values = {
        "message_id": message_id,
        "rating": rating,
        "reason": reason,
        "created_at": moment,
        "updated_at": moment,
    }
    # A second vote (or a reason added after the thumb) updates the row: never two votes.
    statement = upsert(session, FeedbackRow).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[FeedbackRow.message_id],
        set_={"rating": rating, "reason": reason, "updated_at": moment},
    )
    await session.execute(statement)
    await session.commit()
    row = await session.get(FeedbackRow, message_id, populate_existing=True)
    return _feedback_of(row) if row is not None else None


async def feedback_for(
    *, session: AsyncSession, message_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Feedback]:
    """The stored votes on these messages, by message id (messages without one are absent)."""
    ids = list(message_ids)
    if not ids:
        return {}
    rows = await session.scalars(select(FeedbackRow).where(FeedbackRow.message_id.in_(ids)))
    return {row.message_id: _feedback_of(row) for row in rows}
