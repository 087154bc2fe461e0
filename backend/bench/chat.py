"""Chat benchmark: first-token latency and token throughput at 1, 10 and 100 concurrent chats.

    python backend/bench/chat.py [--tokens-per-second 50] [--reply-tokens 100] [--levels 1,10,100]
                                 [--database-url postgresql://…] [--skip-offline]

Spawns the fake Gemini (`python -m tests.fakes.gemini`, streaming at a fixed token rate) and
`bookchat serve` against it (the real google-genai SDK over HTTP), then the offline answerer.
Prints per level: first-token latency p50/p95 (request sent to first token event), tokens per
second per stream (median) and in aggregate, errors, the server's peak RSS, and the server
process's CPU seconds per 1,000 streamed tokens (user + system time from /proc/PID/stat over the
level's concurrent chats). Compare changes by that last number: the fake and the client share
the machine's cores, so wall-clock latencies mostly reflect them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 300.0


@dataclass
class Stream:
    first_token: float | None
    tokens: int
    duration: float
    ok: bool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_fake(rate: float, reply_tokens: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.gemini",
            "--port",
            str(port),
            "--tokens-per-second",
            str(rate),
            "--min-reply-tokens",
            str(reply_tokens),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening" not in line:
        raise RuntimeError(f"the fake Gemini did not start: {line!r}")
    return process, f"http://127.0.0.1:{port}"


def start_server(data_dir: Path, **env_extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "QDRANT_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        BOOKCHAT_DATA_DIR=str(data_dir),
        PORT=str(port),
        LOG_LEVEL="WARNING",
        BOOKCHAT_EMBEDDER="local",
        **env_extra,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bookchat", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("bookchat serve never became healthy")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far, in seconds."""
    # The fields after the command name (which may contain spaces) start at field 3.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one_chat(client: httpx.AsyncClient, i: int) -> Stream:
    started = time.perf_counter()
    first = None
    tokens = 0
    ok = False
    body = {"message": f"How do I install bookchat and configure it? ({i})"}
    async with client.stream("POST", "/api/chat", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "token":
                # Words, not events: under load the server joins pieces into one event.
                tokens += len(event["content"].split())
                if first is None:
                    first = time.perf_counter() - started
            elif event["type"] == "done":
                ok = True
    return Stream(first, tokens, time.perf_counter() - started, ok and response.status_code == 200)


async def run_level(url: str, concurrency: int, pid: int) -> tuple[list[Stream], float, float]:
    """The level's streams, its wall time, and the server's CPU seconds per 1,000 tokens."""
    limits = httpx.Limits(max_connections=concurrency + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        await one_chat(client, -1)  # warm the path (first retrieval, SDK connection)
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        streams = await asyncio.gather(*(one_chat(client, i) for i in range(concurrency)))
        wall = time.perf_counter() - started
        tokens = sum(s.tokens for s in streams)
        cpu_per_1k = (cpu_seconds(pid) - cpu_before) / tokens * 1000 if tokens else float("nan")
        return list(streams), wall, cpu_per_1k


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, levels: list[int], url: str, pid: int) -> list[str]:
    rows = []
    for level in levels:
        streams, wall, cpu_per_1k = asyncio.run(run_level(url, level, pid))
        firsts = [s.first_token * 1000 for s in streams if s.first_token is not None]
        rates = [s.tokens / s.duration for s in streams if s.ok and s.duration > 0]
        total_tokens = sum(s.tokens for s in streams)
        errors = sum(not s.ok for s in streams)
        p50, p95 = percentile(firsts, 0.5), percentile(firsts, 0.95)
        rows.append(
            f"{label:<22}{level:>6}{p50:>10.0f}{p95:>10.0f}"
            f"{statistics.median(rates) if rates else 0:>12.1f}{total_tokens / wall:>12.0f}"
            f"{errors:>8}{peak_rss_mb(pid):>10.0f}{cpu_per_1k:>12.2f}"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens-per-second", type=float, default=50.0)
    parser.add_argument("--reply-tokens", type=int, default=100)
    parser.add_argument("--levels", default="1,10,100")
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL for conversations (default: SQLite)"
    )
    parser.add_argument("--skip-offline", action="store_true")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]

    print(
        f"chat benchmark: fake Gemini at {args.tokens_per_second:g} tokens/s, "
        f"~{args.reply_tokens} tokens per reply; {os.cpu_count()} CPUs"
    )
    print(
        f"{'answerer':<22}{'chats':>6}{'ttft p50':>10}{'ttft p95':>10}"
        f"{'tok/s each':>12}{'tok/s all':>12}{'errors':>8}{'RSS MiB':>10}{'CPU s/1k':>12}"
    )
    print(f"{'':<22}{'':>6}{'(ms)':>10}{'(ms)':>10}{'':>12}{'':>12}{'':>8}{'':>10}{'tokens':>12}")
    with tempfile.TemporaryDirectory(prefix="bookchat-bench-") as tmp:
        fake, fake_url = start_fake(args.tokens_per_second, args.reply_tokens)
        try:
            server, url = start_server(
                Path(tmp) / "gemini",
                GEMINI_API_KEY="bench-key",
                GEMINI_BASE_URL=fake_url,
                DATABASE_URL=args.database_url,
            )
            try:
                report("gemini (fake, SDK)", levels, url, server.pid)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=60)
        finally:
            fake.send_signal(signal.SIGTERM)
            fake.wait(timeout=30)
        if args.skip_offline:
            return 0
        server, url = start_server(Path(tmp) / "offline", DATABASE_URL=args.database_url)
        try:
            report("offline", levels, url, server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
