"""Abuse benchmark: one client floods /api/chat while a second reader asks now and then.

    python backend/bench/abuse.py [--seconds 20] [--attackers 50] [--reader-every 1]
                                  [--database-url postgresql://…] [--no-limits]

Spawns the fake Gemini (50 tokens/s, ~100-token replies) and `bookchat serve` against it with
the abuse limits at their defaults (or all off with --no-limits, to see the attack unchecked).
The server trusts X-Forwarded-For from 127.0.0.1 here, as it would from a Space's proxy, so the
two clients are told apart by that header: the attacker always sends the same address (the
server ignores what it prepends), the reader another. Prints the attacker's statuses (200, each
429 code, 503) and lost answers (a 200 stream that did not end in `done` with a stored
message_id), the fake's generate calls, and the reader's first-token p50/p95 and lost answers
(checked against GET /api/conversation/{id} too).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# The script's folder is on sys.path: the chat benchmark's helpers start the same processes.
from chat import fake_gemini, percentile, start_server, stop_server

ATTACKER = "203.0.113.66"
READER = "198.51.100.7"


@dataclass
class Tally:
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    lost: int = 0
    first_tokens: list[float] = field(default_factory=list)
    conversations: list[tuple[str, str | None]] = field(default_factory=list)


async def chat(client: httpx.AsyncClient, address: str, message: str, tally: Tally) -> None:
    started = time.perf_counter()
    try:
        async with client.stream(
            "POST", "/api/chat", json={"message": message}, headers={"X-Forwarded-For": address}
        ) as response:
            if response.status_code != 200:
                body = await response.aread()
                try:
                    code = json.loads(body).get("code", "")
                except ValueError:
                    code = ""
                tally.statuses[f"{response.status_code} {code}".strip()] += 1
                return
            tally.statuses["200"] += 1
            conversation, message_id, first = None, None, None
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "metadata":
                    conversation = event["conversation_id"]
                elif event["type"] == "token" and first is None:
                    first = time.perf_counter() - started
                elif event["type"] == "done":
                    message_id = event.get("message_id")
            if first is not None:
                tally.first_tokens.append(first)
            if message_id is None:
                tally.lost += 1
            if conversation is not None:
                tally.conversations.append((conversation, message_id))
    except httpx.HTTPError as exc:
        tally.statuses[type(exc).__name__] += 1


async def attack(
    url: str, seconds: float, workers: int, reader_every: float
) -> tuple[Tally, Tally]:
    attacker, reader = Tally(), Tally()
    limits = httpx.Limits(max_connections=workers + 10, max_keepalive_connections=workers)
    stop_at = time.perf_counter() + seconds
    async with (
        httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as flood,
        httpx.AsyncClient(base_url=url, timeout=120) as calm,
    ):

        async def flooder(n: int) -> None:
            i = 0
            while time.perf_counter() < stop_at:
                await chat(flood, ATTACKER, f"Tell me everything ({n}.{i})", attacker)
                i += 1

        async def asker() -> None:
            i = 0
            while time.perf_counter() < stop_at:
                await chat(calm, READER, f"How do I install bookchat? ({i})", reader)
                i += 1
                await asyncio.sleep(reader_every)

        await asyncio.gather(asker(), *(flooder(n) for n in range(workers)))
        # Nothing of the reader's may be lost: every answer it got must be stored.
        for conversation, message_id in reader.conversations:
            stored = (await calm.get(f"/api/conversation/{conversation}")).json()
            ids = {m["id"] for m in stored.get("messages", []) if m["role"] == "assistant"}
            if message_id is not None and message_id not in ids:
                reader.lost += 1  # (a stream without a stored message_id was counted already)
    return attacker, reader


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--attackers", type=int, default=50, help="the flooder's parallel chats")
    parser.add_argument("--reader-every", type=float, default=1.0, help="seconds between questions")
    parser.add_argument("--tokens-per-second", type=float, default=50.0)
    parser.add_argument("--reply-tokens", type=int, default=100)
    parser.add_argument("--database-url", default="", help="PostgreSQL (default: SQLite)")
    parser.add_argument("--no-limits", action="store_true", help="turn every abuse limit off")
    args = parser.parse_args()

    env = {"BOOKCHAT_TRUSTED_PROXIES": "127.0.0.1", "DATABASE_URL": args.database_url}
    print(
        f"abuse benchmark: {args.attackers} parallel chats from one client for "
        f"{args.seconds:g} s, a reader every {args.reader_every:g} s; limits "
        f"{'off' if args.no_limits else 'at their defaults'}; "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="bookchat-abuse-") as tmp,
        fake_gemini(args.tokens_per_second, args.reply_tokens) as fake_url,
    ):
        server = start_server(
            Path(tmp) / "data",
            abuse_limits=not args.no_limits,
            GEMINI_API_KEY="bench-key",
            GEMINI_BASE_URL=fake_url,
            **env,
        )
        try:
            attacker, reader = asyncio.run(
                attack(server.url, args.seconds, args.attackers, args.reader_every)
            )
        finally:
            stop_server(server)
    refused = sum(n for status, n in attacker.statuses.items() if status.startswith("429"))
    print(f"attacker: {sum(attacker.statuses.values())} requests, {dict(attacker.statuses)}")
    print(f"attacker: 429s {refused}, lost answers {attacker.lost}")
    firsts = [t * 1000 for t in reader.first_tokens]
    if firsts:
        print(
            f"reader: {len(firsts)} answers, first token p50 {percentile(firsts, 0.5):.0f} ms, "
            f"p95 {percentile(firsts, 0.95):.0f} ms, max {max(firsts):.0f} ms "
            f"(mean {statistics.mean(firsts):.0f} ms)"
        )
    print(f"reader: statuses {dict(reader.statuses)}, lost answers {reader.lost}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
