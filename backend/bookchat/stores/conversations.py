"""Conversations and their messages, in PostgreSQL or SQLite through SQLAlchemy's async API:
the statements, each on a session the ConversationStore (conversation_store.py) opens.

Each write function commits before it returns, so the reader's question is durable before the
answer starts streaming and callers can keep their sessions short.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bookchat.stores.conversation_models import (
    ROLES,
    STATUSES,
    AnsweringRow,
    Base,
    ConversationRow,
    ConversationView,
    Message,
    MessageRow,
    Role,
    Status,
    Turn,
    TurnStarted,
    message_of,
    now,
    upsert,
    utc,
)

# The advisory lock create_tables takes on PostgreSQL (any fixed number: it names the lock).
CREATE_TABLES_LOCK = 0x626F6F6B63686174  # "bookchat"


async def create_tables(engine: AsyncEngine) -> None:
    """Create the tables that do not exist yet (idempotent)."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Worker processes start together, and two CREATE TABLEs of one table on a fresh
            # database collide (a unique violation in pg_type): one at a time, the later ones
            # find the tables there. The lock ends with the transaction.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": CREATE_TABLES_LOCK}
            )
        await connection.run_sync(Base.metadata.create_all)


async def conversation_exists(*, session: AsyncSession, conversation_id: uuid.UUID) -> bool:
    """Whether a conversation with this id is stored."""
    found = await session.scalar(
        select(ConversationRow.id).where(ConversationRow.id == conversation_id)
    )
    return found is not None


async def count_messages(*, session: AsyncSession, conversation_id: uuid.UUID) -> int:
    """How many messages the conversation holds (0 if it is not stored)."""
    count = await session.scalar(
        select(func.count())
        .select_from(MessageRow)
        .where(MessageRow.conversation_id == conversation_id)
    )
    return int(count or 0)


# Judges whether the owner of a question (seen then) is dead, now: AnswerOwner.dead.
Judge = Callable[[str, datetime, datetime], bool]


async def mark_orphans(
    *, session: AsyncSession, dead: Judge, conversation_id: uuid.UUID | None = None
) -> tuple[int, set[str]]:
    """Give each question whose answering process died a `failed` answer, and commit.

    The failed answer takes the id the real one would have had, so if its owner was only
    taken for dead (a lapsed heartbeat) its answer still replaces it (add_message). Only the
    questions of one conversation with conversation_id. Returns how many were marked, and the
    owners found dead.
    """
    query = select(AnsweringRow)
    if conversation_id is not None:
        query = query.where(AnsweringRow.conversation_id == conversation_id)
    moment = now()
    orphans = [c for c in await session.scalars(query) if dead(c.owner, utc(c.seen_at), moment)]
    marked = 0
    for claim in orphans:
        _, inserted = await _insert_message(
            session,
            claim.conversation_id,
            role="assistant",
            content="",
            sources=None,
            status="failed",
            message_id=claim.answer_id,
        )
        await session.execute(
            delete(AnsweringRow).where(AnsweringRow.question_id == claim.question_id)
        )
        marked += inserted
    if orphans:
        await session.commit()
    return marked, {claim.owner for claim in orphans}


async def answering(*, session: AsyncSession, conversation_id: uuid.UUID) -> bool:
    """Whether a question of the conversation is still owned by the process answering it."""
    found = await session.scalar(
        select(AnsweringRow.question_id).where(AnsweringRow.conversation_id == conversation_id)
    )
    return found is not None


async def owners(*, session: AsyncSession) -> set[str]:
    """The processes that own questions now."""
    return set(await session.scalars(select(AnsweringRow.owner).distinct()))


async def refresh_owner(*, session: AsyncSession, owner: str) -> None:
    """The owner's heartbeat: it is alive and still answering its questions; commits."""
    await session.execute(
        update(AnsweringRow).where(AnsweringRow.owner == owner).values(seen_at=now())
    )
    await session.commit()


async def mark_unowned(*, session: AsyncSession, asked_before: datetime) -> int:
    """Give an unanswered question that no process owns, asked before `asked_before`, a
    `failed` answer; commits; how many.

    Questions stored with an owner are judged by mark_orphans; these were stored by a version
    of bookchat that recorded none (or without an answer to come, which no chat does), and
    `asked_before` is when the serving started. A conversation whose last message is such a
    question gets an empty `failed` answer, and reads honestly.
    """
    last = (
        select(MessageRow.conversation_id, func.max(MessageRow.seq).label("seq"))
        .group_by(MessageRow.conversation_id)
        .subquery()
    )
    orphans = await session.scalars(
        select(MessageRow.conversation_id)
        .join(last, MessageRow.seq == last.c.seq)
        .outerjoin(AnsweringRow, AnsweringRow.question_id == MessageRow.id)
        .where(
            MessageRow.role == "user",
            MessageRow.created_at < asked_before,
            AnsweringRow.question_id.is_(None),
        )
    )
    marked = 0
    for conversation_id in list(orphans):
        await _insert_message(
            session, conversation_id, role="assistant", content="", sources=None, status="failed"
        )
        marked += 1
    await session.commit()
    return marked


async def start_turn(
    *,
    session: AsyncSession,
    conversation_id: uuid.UUID | None,
    user_text: str,
    history_limit: int = 6,
    answer: tuple[uuid.UUID, str] | None = None,
) -> TurnStarted:
    """Store the reader's message (creating the conversation if needed) and commit.

    A None id starts a new conversation; an id not stored yet is created with that id (the
    caller decides beforehand, with conversation_exists, whether that should be a 404). The
    returned history is the turns before this message, at most history_limit, oldest first.
    answer: the id its answer will have and the owner answering it (stores/owners.py), stored
    with it so that the question of a process that dies gets its `failed` answer.
    """
    if conversation_id is None:
        conversation_id = uuid.uuid4()
        history: list[Turn] = []
    else:
        history = await recent_turns(
            session=session, conversation_id=conversation_id, limit=history_limit
        )
    await _ensure_conversation(session, conversation_id)
    message, _ = await _insert_message(
        session, conversation_id, role="user", content=user_text, sources=None, status="complete"
    )
    if answer is not None:
        answer_id, owner = answer
        await session.execute(
            insert(AnsweringRow).values(
                question_id=message.id,
                conversation_id=conversation_id,
                answer_id=answer_id,
                owner=owner,
                seen_at=message.created_at,
            )
        )
    await session.commit()
    return TurnStarted(conversation_id, message.id, history)


async def add_message(
    *,
    session: AsyncSession,
    conversation_id: uuid.UUID,
    role: Role,
    content: str,
    sources: Sequence[Mapping[str, Any]] | None = None,
    status: Status = "complete",
    message_id: uuid.UUID | None = None,
) -> Message:
    """Store one message (an answer with its sources, possibly partial or failed) and commit.

    With a message_id, storing it again (a retry after a commit whose reply was lost) returns
    the stored message instead of a second copy.
    """
    await _ensure_conversation(session, conversation_id)
    message, inserted = await _insert_message(
        session,
        conversation_id,
        role=role,
        content=content,
        sources=sources,
        status=status,
        message_id=message_id,
    )
    if role == "assistant":
        # Answered: no longer the answering process's to lose (mark_orphans).
        await session.execute(delete(AnsweringRow).where(AnsweringRow.answer_id == message.id))
    if not inserted:
        # Stored before: the row that is there is the answer, not what this retry holds. Read
        # only then, so a first save is two statements and a commit, not three.
        existing = (
            await session.scalars(select(MessageRow).where(MessageRow.id == message.id))
        ).one()
        if (
            existing.status == "failed"
            and not existing.content
            and (status, content) != ("failed", "")
        ):
            # mark_orphans took this process for dead (its heartbeat lapsed) and stored a
            # `failed` answer in this one's place: the real answer replaces it.
            await session.execute(
                update(MessageRow)
                .where(MessageRow.id == message.id)
                .values(content=content, sources=message.sources, status=status)
            )
        else:
            message = message_of(existing)
    await session.commit()
    return message


async def get_conversation(
    *, session: AsyncSession, conversation_id: uuid.UUID
) -> ConversationView | None:
    """The conversation with all its messages, oldest first; None if it is not stored."""
    conversation = await session.get(ConversationRow, conversation_id)
    if conversation is None:
        return None
    rows = await session.scalars(
        select(MessageRow)
        .where(MessageRow.conversation_id == conversation_id)
        .order_by(MessageRow.seq)
    )
    return ConversationView(
        conversation_id=conversation.id,
        created_at=utc(conversation.created_at),
        messages=[message_of(row) for row in rows],
    )


async def recent_turns(
    *, session: AsyncSession, conversation_id: uuid.UUID, limit: int
) -> list[Turn]:
    """The last `limit` messages with text, oldest first, for the prompt and query rewrite."""
    if limit <= 0:
        return []
    rows = await session.execute(
        select(MessageRow.role, MessageRow.content)
        .where(MessageRow.conversation_id == conversation_id, MessageRow.content != "")
        .order_by(MessageRow.seq.desc())
        .limit(limit)
    )
    return [Turn(role, content) for role, content in reversed(rows.all())]


async def _ensure_conversation(session: AsyncSession, conversation_id: uuid.UUID) -> None:
    moment = now()
    values = {"id": conversation_id, "created_at": moment, "updated_at": moment}
    # Two first messages racing for one new id must both land in the same conversation.
    statement = upsert(session, ConversationRow).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[ConversationRow.id], set_={"updated_at": moment}
    )
    await session.execute(statement)


async def _insert_message(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    *,
    role: str,
    content: str,
    sources: Sequence[Mapping[str, Any]] | None,
    status: str,
    message_id: uuid.UUID | None = None,
) -> tuple[Message, bool]:
    """Insert one message: the message as written, and False if one with this id was already
    stored (then nothing was written).

    An INSERT … ON CONFLICT (id) DO NOTHING rather than the ORM's unit of work: one statement,
    idempotent for a retried save even when two attempts race, and a fraction of the ORM's
    CPU per row (a save was a seventh of the event loop's time at 50 readers).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
    message = Message(
        id=message_id or uuid.uuid4(),
        role=role,
        content=content,
        sources=[dict(source) for source in sources or []],
        status=status,
        created_at=now(),
    )
    statement = (
        upsert(session, MessageRow)
        .values(
            id=message.id,
            conversation_id=conversation_id,
            role=role,
            content=content,
            sources=message.sources,
            status=status,
            created_at=message.created_at,
        )
        .on_conflict_do_nothing(index_elements=[MessageRow.id])
        # RETURNING says whether the row went in: psycopg's rowcount here is -1.
        .returning(MessageRow.seq)
    )
    inserted = await session.scalar(statement)
    return message, inserted is not None
