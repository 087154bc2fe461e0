"""The day's LLM calls in the conversation database: one count for every worker and restart."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from bookchat.config import Settings
from bookchat.stores.budget import LlmCallLedger, today
from bookchat.stores.conversations import create_tables
from bookchat.stores.database import create_engine


async def _open(settings: Settings):
    engine = create_engine(settings.sqlalchemy_url)
    await create_tables(engine)
    return engine


async def test_workers_sharing_a_database_never_spend_more_than_the_total(
    database_settings: Settings,
) -> None:
    # Two engines stand for two worker processes: 30 calls race for a total of 10.
    engines = [await _open(database_settings) for _ in range(2)]
    try:
        ledgers = [LlmCallLedger(engine) for engine in engines]
        verdicts = await asyncio.gather(
            *(ledgers[n % 2].spend(f"203.0.113.{n % 3}", per_client=0, total=10) for n in range(30))
        )
        assert verdicts.count("ok") == 10
        assert set(verdicts) == {"ok", "total"}
        # Refused calls take nothing: the count stays at the limit.
        assert await ledgers[0].spent() == 10
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_clients_share_is_its_own_and_a_refusal_spends_nothing(
    database_settings: Settings,
) -> None:
    engine = await _open(database_settings)
    try:
        ledger = LlmCallLedger(engine)
        spend = [await ledger.spend("198.51.100.7", per_client=2, total=5) for _ in range(4)]
        other = await ledger.spend("198.51.100.8", per_client=2, total=5)
        assert spend == ["ok", "ok", "client", "client"]
        assert other == "ok"
        assert await ledger.spent("198.51.100.7") == 2
        assert await ledger.spent() == 3  # the refused calls did not count against the total
    finally:
        await engine.dispose()


async def test_the_count_survives_a_restart_and_past_days_are_dropped(
    database_settings: Settings,
) -> None:
    engine = await _open(database_settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO llm_calls (day, client, calls) VALUES ('2001-01-01', '', 7)")
            )
        assert await LlmCallLedger(engine).spend("192.0.2.1", per_client=0, total=2) == "ok"
    finally:
        await engine.dispose()
    engine = await _open(database_settings)  # a restart: a new process, a new engine
    try:
        ledger = LlmCallLedger(engine)
        assert await ledger.spend("192.0.2.1", per_client=0, total=2) == "ok"
        assert await ledger.spend("192.0.2.1", per_client=0, total=2) == "total"
        async with engine.connect() as connection:
            days = (await connection.execute(text("SELECT DISTINCT day FROM llm_calls"))).all()
        assert [day for (day,) in days] == [today()]
    finally:
        await engine.dispose()
