"""The conversation store's tables and the values it hands out (messages, turns, views)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Table, Text, Uuid
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Role = Literal["user", "assistant"]
# stopped: the reader pressed Stop; what was streamed until then is kept (a partial answer).
Status = Literal["complete", "partial", "stopped", "failed"]
ROLES = ("user", "assistant")
STATUSES = ("complete", "partial", "stopped", "failed")


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """The conversation store's tables."""


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class MessageRow(Base):
    __tablename__ = "messages"
    # AUTOINCREMENT so SQLite never reuses a sequence number.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy's declarative form

    # The order of messages: a monotonic sequence, since two can share a timestamp.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="complete")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class AnsweringRow(Base):
    """A question being answered, and which process answers it (stores/owners.py).

    Written with the question and deleted with its answer, each in the same transaction: a
    row left behind means the process died mid-answer, and only then does another process
    give the question its `failed` answer (in the place, and with the id, of the real one).
    Its own table, as feedback's: create_all adds a missing table, never a missing column.
    """

    __tablename__ = "answering"

    question_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    # The id the answer will be stored with, chosen before the question is stored.
    answer_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    # Refreshed while the owner answers: how a process on another machine is judged alive.
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Turn(NamedTuple):
    """One earlier message as the prompt and the query rewrite use it: (role, text)."""

    role: str
    content: str


class TurnStarted(NamedTuple):
    """What start_turn stored: the conversation, the user message's id, and the earlier turns."""

    conversation_id: uuid.UUID
    user_message_id: uuid.UUID
    history: list[Turn]


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message, as GET /api/conversation/{id} shows it."""

    id: uuid.UUID
    role: str
    content: str
    sources: list[dict[str, Any]]
    status: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": str(self.id),
            "role": self.role,
            "content": self.content,
            "sources": self.sources,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ConversationView:
    """A conversation with its messages, oldest first."""

    conversation_id: uuid.UUID
    created_at: datetime
    messages: list[Message]
    # Whether a live process is answering one of its questions right now.
    answering: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"conversation_id", "messages": [...]}."""
        return {
            "conversation_id": str(self.conversation_id),
            "messages": [m.to_dict() for m in self.messages],
        }


def message_of(row: MessageRow) -> Message:
    """A stored row as the Message value callers get."""
    return Message(
        id=row.id,
        role=row.role,
        content=row.content,
        sources=list(row.sources or []),
        status=row.status,
        created_at=utc(row.created_at),
    )


def upsert(bind: AsyncSession | AsyncConnection, table: type[Base] | Table) -> Any:
    """An INSERT … ON CONFLICT in the dialect of the session's or connection's database."""
    engine = bind.bind if isinstance(bind, AsyncSession) else bind
    dialect = engine.dialect.name if engine is not None else ""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {dialect!r}")


def utc(moment: datetime) -> datetime:
    """The moment as aware UTC (SQLite hands back naive datetimes; all stored times are UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


RATINGS = ("up", "down")


class FeedbackRow(Base):
    """A reader's vote on one answer: one row per message, a repeated vote replaces it.

    Its own table rather than columns on messages: create_all adds a missing table to an
    existing database, but never a missing column.
    """

    __tablename__ = "feedback"

    message_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    rating: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


@dataclass(frozen=True, slots=True)
class Feedback:
    """A stored vote on an answer."""

    message_id: uuid.UUID
    rating: str
    reason: str | None
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "message_id": str(self.message_id),
            "rating": self.rating,
            "reason": self.reason,
            "updated_at": self.updated_at.isoformat(),
        }


class LlmCallsRow(Base):
    """LLM calls spent on one UTC day by one client; client "" is the day's total.

    In the conversation database so every worker and every restart share one count
    (bookchat.stores.budget); rows of past days are deleted as a new day starts.
    """

    __tablename__ = "llm_calls"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # 2026-12-01
    client: Mapped[str] = mapped_column(String(80), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
