"""Chat benchmark: first-token latency, token throughput, server CPU and memory under load.

    python backend/bench/chat.py --table [--database-url postgresql://…] [--runs 5]
    python backend/bench/chat.py [--tokens-per-second 50] [--reply-tokens 100] [--levels 1,10,100]
                                 [--database-url postgresql://…] [--skip-offline]
    (either form) [--server-src DIR]  # serve another checkout's backend/, e.g. a "before" copy

Spawns the fake Gemini (`python -m tests.fakes.gemini`, streaming one token per SSE chunk at a
fixed rate, 50 tokens/s = 20 ms per token by default) and `bookchat serve` against it, so the
server talks real HTTP to a Gemini wire protocol.

`--table` prints the rows of the hot-path table (issue 12): at 50 concurrent readers the
first-token p50/p95 (request sent to first token event), answer tokens per second (tokens, not
events: the server joins pieces into one event under load), server CPU milliseconds per answer,
peak RSS; server CPU per answer with one reader; errors and lost answers at 100 readers (an
answer is lost when the stored conversation does not hold it, complete, as it was streamed)
with the slowest /api/health answer and any non-200 health answer while they stream; and
spawn -> healthy, median of `--runs`, on an ingested data dir, on SQLite and (given
`--database-url`) on PostgreSQL, with the server CPU seconds spent by then (steadier than the
wall clock on a shared machine). Server CPU and RSS cover the server process and its children
(worker processes). Memory is printed per process after the load (peak RSS, and from
/proc/PID/smaps_rollup RSS, PSS, USS = private pages, and the shared part of RSS), then the
largest process's peak RSS (what one process costs) and the sums: summed peak RSS counts the
pages forked workers share once per process, summed PSS counts them once in all (the memory
the whole server really holds).
The other form prints per concurrency level, for both answerers.

The fake and the client share the machine's cores with the server, so wall-clock latencies
partly reflect them; server CPU per answer is the number to compare between changes.
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
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 300.0
SINGLE_READER_ANSWERS = 10


@dataclass
class Stream:
    first_token: float | None
    tokens: int
    duration: float
    ok: bool
    conversation_id: str | None = None
    text: str = ""
    answerer: str | None = None  # the metadata event's backend ("gemini", "offline")


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    spawned_to_healthy: float
    # Server CPU seconds spent by then: on a shared machine, steadier than the wall clock.
    cpu_to_healthy: float = float("nan")

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class HealthProbe:
    """/api/health polled while a load runs: the slowest answer and every non-200 status."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def fake_gemini(rate: float, reply_tokens: int) -> Iterator[str]:
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
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"the fake Gemini did not start: {line!r}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


# Throughput is measured here, so the abuse limits (measured by backend/bench/abuse.py) are off.
NO_LIMITS = {
    "BOOKCHAT_CHATS_PER_MINUTE": "0",
    "BOOKCHAT_STREAMS_PER_CLIENT": "0",
    "BOOKCHAT_CONCURRENT_LLM_CALLS": "0",
    "BOOKCHAT_DAILY_LLM_CALLS": "0",
    # The per-client share is counted in the database and survives restarts: with it on, a
    # reused benchmark database answers from the offline answerer after 50 calls a day.
    "BOOKCHAT_DAILY_LLM_CALLS_PER_CLIENT": "0",
    "BOOKCHAT_MAX_CONNECTIONS": "1000",
}


def server_env(
    data_dir: Path,
    port: int,
    server_src: Path | None,
    abuse_limits: bool = False,
    **extra: str,
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "QDRANT_")) and k not in NO_LIMITS
    }
    env.pop("DATABASE_URL", None)
    env.update(
        BOOKCHAT_DATA_DIR=str(data_dir),
        PORT=str(port),
        LOG_LEVEL="WARNING",
        BOOKCHAT_EMBEDDER="local",
        **({} if abuse_limits else NO_LIMITS),
        **{k: v for k, v in extra.items() if v},
    )
    if server_src is not None:
        # Ahead of the editable install's path entry, so this checkout's bookchat is served.
        env["PYTHONPATH"] = str(server_src / "backend")
    return env


def start_server(
    data_dir: Path, server_src: Path | None = None, abuse_limits: bool = False, **env_extra: str
) -> Server:
    """`bookchat serve` on a free port, once healthy; abuse_limits keeps their defaults on."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bookchat", "serve"],
        env=server_env(data_dir, port, server_src, abuse_limits, **env_extra),
        cwd=server_src or ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = started + READY_TIMEOUT
    with httpx.Client(timeout=5) as client:
        while time.perf_counter() < deadline:
            try:
                if client.get(f"{url}/api/health").status_code == 200:
                    healthy = time.perf_counter() - started
                    return Server(process, url, healthy, cpu_seconds(process.pid))
            except httpx.TransportError:
                pass
            time.sleep(0.01)
    process.kill()
    raise RuntimeError("bookchat serve never became healthy")


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=60)


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's worker processes, if any)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process tree has used so far, in seconds."""
    total = 0
    for member in process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        # The fields after the command name (which may contain spaces) start at field 3.
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Memory:
    """One process's memory, in MiB: its peak RSS (VmHWM) and, from smaps_rollup now, its RSS,
    PSS (a page shared by n processes counts 1/n), USS (private pages: what ending it frees)
    and the shared part of its RSS (the forked workers' copy-on-write pages)."""

    pid: int
    peak_rss: float
    rss: float
    pss: float
    uss: float
    shared: float
    swap_pss: float


def memory_of(pid: int) -> Memory | None:
    """The process's Memory; None when it has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in (*status.splitlines(), *rollup.splitlines()):
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            fields[name] = int(parts[0])
    return Memory(
        pid=pid,
        peak_rss=fields.get("VmHWM", 0) / 1024,
        rss=fields.get("Rss", 0) / 1024,
        pss=fields.get("Pss", 0) / 1024,
        uss=(fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)) / 1024,
        shared=(fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0)) / 1024,
        swap_pss=fields.get("SwapPss", 0) / 1024,
    )


def tree_memory(pid: int) -> list[Memory]:
    """Memory of the process and each descendant (the supervisor first, then its workers)."""
    return [m for m in map(memory_of, process_tree(pid)) if m is not None]


def peak_rss_mb(pid: int) -> float:
    """The peak resident set sizes (VmHWM) of the process tree, summed, in MiB."""
    return sum(m.peak_rss for m in tree_memory(pid))


async def one_chat(client: httpx.AsyncClient, i: int) -> Stream:
    started = time.perf_counter()
    first = None
    tokens = 0
    ok = False
    conversation_id = None
    answerer = None
    pieces: list[str] = []
    body = {"message": f"How do I install bookchat and configure it? ({i})"}
    try:
        async with client.stream("POST", "/api/chat", json=body) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "metadata":
                    conversation_id = event.get("conversation_id")
                    answerer = (event.get("answerer") or {}).get("backend")
                elif event["type"] == "token":
                    # Words, not events: under load the server joins pieces into one event.
                    tokens += len(event["content"].split())
                    pieces.append(event["content"])
                    if first is None:
                        first = time.perf_counter() - started
                elif event["type"] == "done":
                    ok = True
        ok = ok and response.status_code == 200
    except httpx.HTTPError:
        ok = False
    return Stream(
        first,
        tokens,
        time.perf_counter() - started,
        ok,
        conversation_id,
        "".join(pieces),
        answerer,
    )


async def probe_health(url: str, probe: HealthProbe, stop: asyncio.Event) -> None:
    # Its own client and connection: a platform's health check does not queue behind chats.
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = await client.get("/api/health")
                if response.status_code != 200:
                    probe.failures.append(f"{response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                probe.failures.append(type(exc).__name__)
            probe.latencies.append(time.perf_counter() - started)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)


async def lost_answers(client: httpx.AsyncClient, streams: list[Stream]) -> int:
    """Answers the reader saw complete that the stored conversation does not hold as such."""
    lost = 0
    for stream in streams:
        if not stream.ok or stream.conversation_id is None:
            continue
        response = await client.get(f"/api/conversation/{stream.conversation_id}")
        messages = response.json().get("messages", []) if response.status_code == 200 else []
        last = messages[-1] if messages else {}
        if not (
            last.get("role") == "assistant"
            and last.get("status") == "complete"
            and last.get("content") == stream.text
        ):
            lost += 1
    return lost


@dataclass
class Level:
    streams: list[Stream]
    wall: float
    cpu: float  # server CPU seconds over the level
    lost: int
    health: HealthProbe


async def run_level(
    url: str, concurrency: int, pid: int, *, warm: bool = True, check: bool = False
) -> Level:
    """`concurrency` chats at once; with check=True also the stored answers and health."""
    limits = httpx.Limits(max_connections=concurrency + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        if warm:
            await one_chat(client, -1)  # the first answer after start is measured separately
        probe, stop = HealthProbe(), asyncio.Event()
        prober = asyncio.create_task(probe_health(url, probe, stop)) if check else None
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        streams = await asyncio.gather(*(one_chat(client, i) for i in range(concurrency)))
        wall = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before
        stop.set()
        if prober is not None:
            await prober
        lost = await lost_answers(client, list(streams)) if check else 0
        return Level(list(streams), wall, cpu, lost, probe)


async def sequential(url: str, pid: int, answers: int) -> tuple[float, float, list[Stream]]:
    """(server CPU seconds per answer, first-token seconds of the very first answer, streams)."""
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        first = await one_chat(client, -1)
        cpu_before = cpu_seconds(pid)
        streams = [await one_chat(client, i) for i in range(answers)]
        cpu = (cpu_seconds(pid) - cpu_before) / answers
        return cpu, first.first_token or float("nan"), [first, *streams]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, levels: list[int], url: str, pid: int) -> None:
    for level in levels:
        run = asyncio.run(run_level(url, level, pid))
        firsts = [s.first_token * 1000 for s in run.streams if s.first_token is not None]
        rates = [s.tokens / s.duration for s in run.streams if s.ok and s.duration > 0]
        total_tokens = sum(s.tokens for s in run.streams)
        errors = sum(not s.ok for s in run.streams)
        cpu_per_1k = run.cpu / total_tokens * 1000 if total_tokens else float("nan")
        p50, p95 = percentile(firsts, 0.5), percentile(firsts, 0.95)
        print(
            f"{label:<22}{level:>6}{p50:>10.0f}{p95:>10.0f}"
            f"{statistics.median(rates) if rates else 0:>12.1f}{total_tokens / run.wall:>12.0f}"
            f"{errors:>8}{peak_rss_mb(pid):>10.0f}{cpu_per_1k:>12.2f}",
            flush=True,
        )


def levels_main(args: argparse.Namespace) -> int:
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
        with fake_gemini(args.tokens_per_second, args.reply_tokens) as fake_url:
            server = start_server(
                Path(tmp) / "gemini",
                args.server_src,
                GEMINI_API_KEY="bench-key",
                GEMINI_BASE_URL=fake_url,
                DATABASE_URL=args.database_url,
            )
            try:
                report("gemini (fake)", levels, server.url, server.pid)
            finally:
                stop_server(server)
        if args.skip_offline:
            return 0
        server = start_server(
            Path(tmp) / "offline", args.server_src, DATABASE_URL=args.database_url
        )
        try:
            report("offline", levels, server.url, server.pid)
        finally:
            stop_server(server)
    return 0


def row(name: str, value: str) -> None:
    print(f"{name:<62}{value}", flush=True)


def memory_rows(memory: list[Memory]) -> None:
    """Per process, then summed: what one process costs and what the whole server holds.

    Summed RSS counts every shared page once per process; summed PSS (or USS of every process
    plus the shared pages once) is what the machine really gives the server.
    """
    roles = ["supervisor", *("worker" for _ in memory[1:])] if len(memory) > 1 else ["server"]
    for role, m in zip(roles, memory, strict=True):
        row(
            f"  {role} {m.pid}: peak RSS / RSS / PSS / USS / shared, MiB",
            f"{m.peak_rss:.0f} / {m.rss:.0f} / {m.pss:.0f} / {m.uss:.0f} / {m.shared:.0f}"
            + (f" (swap PSS {m.swap_pss:.0f})" if m.swap_pss >= 0.5 else ""),
        )
    worst = max(memory, key=lambda m: m.peak_rss)
    row(
        "peak RSS after 50 (and 100) readers, largest process",
        f"{worst.peak_rss:.0f} MiB ({roles[memory.index(worst)]}; USS {worst.uss:.0f} MiB)",
    )
    row(
        f"peak RSS summed over {len(memory)} processes / PSS sum now",
        f"{sum(m.peak_rss for m in memory):.0f} MiB / {sum(m.pss for m in memory):.0f} MiB",
    )


def table_main(args: argparse.Namespace) -> int:
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"bookchat hot path: fake Gemini at {args.tokens_per_second:g} tokens/s, "
        f"{args.reply_tokens} tokens per answer, {database} conversations, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bookchat-bench-") as tmp,
        fake_gemini(args.tokens_per_second, args.reply_tokens) as fake_url,
    ):
        gemini = {"GEMINI_API_KEY": "bench-key", "GEMINI_BASE_URL": fake_url}
        data_dir = Path(tmp) / "data"
        # The first start ingests the sample book; every later one opens an ingested dir.
        stop_server(start_server(data_dir, args.server_src, **gemini))

        server = start_server(data_dir, args.server_src, DATABASE_URL=args.database_url, **gemini)
        try:
            cpu_one, first_after_start, singles = asyncio.run(
                sequential(server.url, server.pid, SINGLE_READER_ANSWERS)
            )
            fifty = asyncio.run(run_level(server.url, 50, server.pid))
            hundred = asyncio.run(run_level(server.url, 100, server.pid, check=True))
            memory = tree_memory(server.pid)
        finally:
            stop_server(server)

        firsts = [s.first_token for s in fifty.streams if s.first_token is not None]
        tokens = sum(s.tokens for s in fifty.streams)
        row(
            "first token p50 / p95, 50 readers",
            f"{percentile(firsts, 0.5):.2f} s / {percentile(firsts, 0.95):.2f} s",
        )
        row("answer tokens/s, 50 readers", f"{tokens / fifty.wall:,.0f}")
        row(
            "server CPU per answer, 50 readers",
            f"{fifty.cpu / len(fifty.streams) * 1000:.0f} ms",
        )
        row(
            f"server CPU per answer, 1 reader ({SINGLE_READER_ANSWERS} answers)",
            f"{cpu_one * 1000:.0f} ms",
        )
        row("first token of the first answer after start", f"{first_after_start:.3f} s")
        memory_rows(memory)
        errors = sum(not s.ok for s in hundred.streams)
        row("errors / lost answers, 100 readers", f"{errors} / {hundred.lost}")
        # Every figure above is for Gemini answers: one from the offline answerer (a limit
        # left on) would make the numbers meaningless, so they are counted.
        everything = [*singles, *fifty.streams, *hundred.streams]
        row(
            "answers not from Gemini (must be 0)",
            f"{sum(s.answerer != 'gemini' for s in everything)} of {len(everything)}",
        )
        health = hundred.health
        row(
            "/api/health during 100 readers: slowest / non-200",
            f"{max(health.latencies, default=float('nan')):.2f} s / {len(health.failures)}"
            + (f" ({health.failures[0][:80]})" if health.failures else ""),
        )

        targets = [("SQLite", "")]
        if args.database_url:
            targets.append(("PostgreSQL", args.database_url))
        for name, url in targets:
            times, cpus = [], []
            for _ in range(args.runs):
                started = start_server(data_dir, args.server_src, DATABASE_URL=url, **gemini)
                stop_server(started)
                times.append(started.spawned_to_healthy)
                cpus.append(started.cpu_to_healthy)
            row(
                f"spawn -> healthy, ingested data dir, {name} (median of {args.runs})",
                f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}); "
                f"server CPU {statistics.median(cpus):.2f} s",
            )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the hot-path table")
    parser.add_argument("--tokens-per-second", type=float, default=50.0)
    parser.add_argument("--reply-tokens", type=int, default=100)
    parser.add_argument("--levels", default="1,10,100")
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL for conversations (default: SQLite)"
    )
    parser.add_argument("--runs", type=int, default=5, help="start-ups to take the median of")
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument(
        "--server-src", type=Path, default=None, help="a checkout whose backend/ is served"
    )
    args = parser.parse_args()
    return table_main(args) if args.table else levels_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
