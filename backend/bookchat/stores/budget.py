"""The day's LLM calls, counted in the conversation database: shared by every worker, kept
across restarts.

One row per (UTC day, client) and one for the day's total (client ""); a call is spent by
upserting both in one transaction, so two workers can never both take the last call.
INSERT … ON CONFLICT DO UPDATE … RETURNING works alike on SQLite (3.35+) and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bookchat.stores.conversation_models import LlmCallsRow, upsert

TOTAL = ""  # the day's total row; a client key is never empty
Spent = Literal["ok", "client", "total"]
_TABLE: Table = LlmCallsRow.__table__  # type: ignore[assignment]


async def _take(connection: AsyncConnection, day: str, client: str) -> int:
    """Add one call to (day, client) and return the new count, atomically."""
    statement = (
        upsert(connection, _TABLE)
        .values(day=day, client=client, calls=1)
        .on_conflict_do_update(
            index_elements=[_TABLE.c.day, _TABLE.c.client], set_={"calls": _TABLE.c.calls + 1}
        )
        .returning(_TABLE.c.calls)
    )
    return int((await connection.execute(statement)).scalar_one())


def today() -> str:
    """The budget's day: the UTC date, so every worker and every restart agree on it."""
    return datetime.now(UTC).date().isoformat()


class LlmCallLedger:
    """Spends the day's LLM calls against a client's share and the total (0: no limit)."""

    def __init__(self, engine: AsyncEngine, write_lock: asyncio.Lock | None = None) -> None:
        self._engine = engine
        # SQLite takes one writer at a time: the store's own lock orders this write with theirs.
        self._write_lock = write_lock
        self._pruned: str | None = None

    async def spend(self, client: str, *, per_client: int, total: int) -> Spent:
        """Take one call for client, or say which limit it is past (nothing is taken then)."""
        day = today()
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self._engine.connect() as connection:
            if self._pruned != day:
                # Yesterday's rows are done with: the table holds one day's clients at most.
                await connection.execute(delete(_TABLE).where(_TABLE.c.day < day))
                await connection.commit()
                self._pruned = day
            verdict = await self._spend(connection, day, client, per_client, total)
            if verdict == "ok":
                await connection.commit()
            else:
                await connection.rollback()  # the counts stay at their limits
            return verdict

    @staticmethod
    async def _spend(
        connection: AsyncConnection, day: str, client: str, per_client: int, total: int
    ) -> Spent:
        # Client first, total second, in every transaction: one lock order, no deadlock.
        if per_client and await _take(connection, day, client) > per_client:
            return "client"
        if total and await _take(connection, day, TOTAL) > total:
            return "total"
        return "ok"

    async def spent(self, client: str = TOTAL) -> int:
        """Calls taken today by client (the total by default)."""
        query = select(_TABLE.c.calls).where(_TABLE.c.day == today(), _TABLE.c.client == client)
        async with self._engine.connect() as connection:
            calls = (await connection.execute(query)).scalar()
        return int(calls or 0)
