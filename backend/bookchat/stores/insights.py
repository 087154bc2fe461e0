"""What the owner's report reads: each answer with its question and the reader's vote."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bookchat.stores.conversation_models import FeedbackRow, MessageRow, utc


@dataclass(frozen=True, slots=True)
class AnsweredQuestion:
    """One stored answer, the question it answers, and the vote on it if any."""

    question: str
    answer: str
    status: str
    sources: list[dict[str, Any]]
    answered_at: datetime
    rating: str | None
    reason: str | None


async def answered_since(*, session: AsyncSession, since: datetime) -> list[AnsweredQuestion]:
    """Answers stored since `since`, or voted on since then, oldest first, with their questions."""
    voted = select(FeedbackRow.message_id).where(FeedbackRow.updated_at >= since)
    answers = (
        await session.execute(
            select(MessageRow, FeedbackRow)
            .outerjoin(FeedbackRow, FeedbackRow.message_id == MessageRow.id)
            .where(
                MessageRow.role == "assistant",
                or_(MessageRow.created_at >= since, MessageRow.id.in_(voted)),
            )
            .order_by(MessageRow.seq)
        )
    ).all()
    if not answers:
        return []
    # The question of an answer is the last question before it in its conversation.
    conversations: set[uuid.UUID] = {row.conversation_id for row, _ in answers}
    questions = (
        await session.execute(
            select(MessageRow.conversation_id, MessageRow.seq, MessageRow.content)
            .where(MessageRow.role == "user", MessageRow.conversation_id.in_(conversations))
            .order_by(MessageRow.seq)
        )
    ).all()
    asked: dict[uuid.UUID, list[tuple[int, str]]] = {}
    for conversation_id, seq, content in questions:
        asked.setdefault(conversation_id, []).append((seq, content))
    out = []
    for row, vote in answers:
        before = [text for seq, text in asked.get(row.conversation_id, []) if seq < row.seq]
        out.append(
            AnsweredQuestion(
                question=before[-1] if before else "",
                answer=row.content,
                status=row.status,
                sources=list(row.sources or []),
                answered_at=utc(row.created_at),
                rating=vote.rating if vote is not None else None,
                reason=vote.reason if vote is not None else None,
            )
        )
    return out
