"""Start-up benchmark: how soon `bookchat serve` answers /api/health, and the app's import time.

    python backend/bench/startup.py [--runs 5]
    python backend/bench/startup.py --qdrant fake [--runs 5] [--workers 2 --database-url URL]
                                    [--server-src DIR ...]
    python backend/bench/startup.py --server-src DIR --server-src . [--runs 5] [--gemini]
                                    [--database-url URL] [--bytecode]

Prints medians over `runs`: import time of bookchat.app; spawn to the first /api/health answer
(any status: "starting" counts, it is what a platform health check sees) and spawn to
"healthy", with an already-ingested data dir and with an empty one (the sample book is
ingested at start-up, in the background).

`--qdrant fake` measures the Qdrant server configuration instead: the sample book is ingested
once into the fake Qdrant server (`python -m tests.fakes.qdrant`, real HTTP), then each run
spawns `bookchat serve` with QDRANT_URL and prints the medians of spawn -> healthy, the server's
CPU seconds by then, its RSS (summed over worker processes) once healthy and after 20
answers, and its CPU milliseconds per answer over those 20 (offline answerer: retrieval's
share of the hot path). Each `--server-src` checkout (its backend/ is served; "." is this one)
is run in turn within every round, so before and after share the machine's load.

With `--server-src` and the embedded index (the default), each checkout serves an ingested data
dir (embedded Qdrant, offline embedder; `--gemini` answers through the fake Gemini server,
`--database-url` keeps conversations in PostgreSQL) and the medians printed are spawn ->
healthy, the server's CPU seconds by then, and the first answer's first token and server CPU:
"healthy" must mean a reader's first answer is fast, so start-up work moved past health would
show there. `--bytecode` compiles each checkout's bookchat/ first, as the image ships it (a
venv whose interpreter may not write .pyc, PYTHONDONTWRITEBYTECODE=1, compiles it on every
start instead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_for(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "QDRANT_"))}
    env.pop("DATABASE_URL", None)
    env.update(BOOKCHAT_DATA_DIR=str(data_dir), PORT=str(port), LOG_LEVEL="WARNING")
    return env


def import_time() -> float:
    """Seconds to import bookchat.app in a fresh interpreter (interpreter start excluded)."""
    code = (
        "import time; t = time.perf_counter(); import bookchat.app; print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(out.stdout.strip())


def spawn_to_health(data_dir: Path, *, timeout: float = 300) -> tuple[float, float]:
    """(seconds to the first /api/health answer, seconds to "healthy") for one server run."""
    return spawn_to_health_env(env_for(data_dir, free_port()), timeout=timeout)


def spawn_to_health_env(env: dict[str, str], *, timeout: float = 300) -> tuple[float, float]:
    """spawn_to_health for a server started with this environment (its PORT included)."""
    url = f"http://127.0.0.1:{env['PORT']}/api/health"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bookchat", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    first = healthy = None
    try:
        with httpx.Client(timeout=5) as client:
            while time.perf_counter() - started < timeout:
                try:
                    response = client.get(url)
                except httpx.TransportError:
                    time.sleep(0.01)
                    continue
                now = time.perf_counter() - started
                first = first if first is not None else now
                if response.status_code == 200:
                    healthy = now
                    break
                time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    if first is None or healthy is None:
        raise RuntimeError("the server never became healthy")
    return first, healthy


def tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's worker processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except OSError:
                continue
    members, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        members += frontier
    return members


def tree_cpu_and_rss(pid: int) -> tuple[float, float]:
    """(user + system CPU seconds, RSS in MiB) of the process tree, summed."""
    cpu = rss = 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        cpu += int(fields[11]) + int(fields[12])
        rss += next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
    return cpu / os.sysconf("SC_CLK_TCK"), rss / 1024


@contextlib.contextmanager
def fake_qdrant() -> Iterator[str]:
    """The fake Qdrant server in its own process; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.qdrant", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        if "listening" not in process.stdout.readline():
            raise RuntimeError("the fake Qdrant server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def server_run(env: dict[str, str], answers: int) -> tuple[float, float, float, float, float]:
    """(spawn -> healthy s, CPU s by then, RSS MiB when healthy, RSS MiB after `answers`,
    server CPU ms per answer)."""
    port = env["PORT"]
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bookchat", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=env.get("PYTHONPATH", ROOT),
    )
    try:
        with httpx.Client(timeout=30) as client:
            while True:
                if time.perf_counter() - started > 300 or process.poll() is not None:
                    raise RuntimeError("the server never became healthy")
                try:
                    if client.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
            healthy = time.perf_counter() - started
            cpu, rss = tree_cpu_and_rss(process.pid)
            for i in range(answers):
                client.post(
                    f"http://127.0.0.1:{port}/api/chat",
                    json={"message": f"How do I install it? ({i})"},
                ).raise_for_status()
            cpu_after, rss_after = tree_cpu_and_rss(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    return healthy, cpu, rss, rss_after, (cpu_after - cpu) / answers * 1000


def qdrant_server_main(args: argparse.Namespace) -> int:
    sources = args.server_src or [ROOT]
    with tempfile.TemporaryDirectory(prefix="bookchat-bench-") as tmp, fake_qdrant() as url:
        base = env_for(Path(tmp) / "data", 0)
        base.update(QDRANT_URL=url, QDRANT_COLLECTION="bench", BOOKCHAT_EMBEDDER="local")
        # Twenty questions in a row from one client: the per-client limit would refuse some.
        base.update(BOOKCHAT_CHATS_PER_MINUTE="0", BOOKCHAT_STREAMS_PER_CLIENT="0")
        if args.database_url:
            base.update(DATABASE_URL=args.database_url, BOOKCHAT_WORKERS=str(args.workers))
        book = ROOT / "backend/bookchat/sample_book"
        subprocess.run(
            [sys.executable, "-m", "bookchat", "ingest", str(book)],
            env=base,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        results: dict[Path, list[tuple[float, ...]]] = {s: [] for s in sources}
        for _ in range(args.runs):
            for source in sources:
                env = {**base, "PORT": str(free_port())}
                if source.resolve() != ROOT:
                    env["PYTHONPATH"] = str(source.resolve() / "backend")
                results[source].append(server_run(env, answers=20))
    workers = f"{args.workers} workers, PostgreSQL" if args.database_url else "1 process, SQLite"
    print(f"bookchat serve with a Qdrant server (the fake), {workers}, median of {args.runs}")
    print(
        f"{'server source':<40}{'healthy':>9}{'CPU':>8}{'RSS healthy':>13}{'RSS +20':>9}"
        f"{'CPU/answer':>12}"
    )
    for source, runs in results.items():
        healthy, cpu, rss, after, per = (statistics.median(r[i] for r in runs) for i in range(5))
        print(
            f"{source!s:<40}{healthy:>7.2f} s{cpu:>6.2f} s{rss:>9.0f} MiB{after:>5.0f} MiB"
            f"{per:>9.1f} ms"
        )
    return 0


def compile_bytecode(source: Path) -> None:
    """Write .pyc for a checkout's bookchat/ (what the image ships; see --bytecode)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(source / "backend/bookchat")], check=True
    )


def compare_main(args: argparse.Namespace) -> int:
    """Start-up and first answer of each --server-src checkout, interleaved (module docstring)."""
    # The chat benchmark's server, client and fake Gemini: one harness for both benchmarks.
    from chat import cpu_seconds as server_cpu
    from chat import fake_gemini, one_chat, start_server, stop_server

    sources = [s.resolve() for s in args.server_src]
    if args.bytecode:
        for source in sources:
            compile_bytecode(source)
    load = os.getloadavg()[0]

    async def first_answer(url: str, pid: int) -> tuple[float, float]:
        async with httpx.AsyncClient(base_url=url, timeout=300) as client:
            before = server_cpu(pid)
            stream = await one_chat(client, 0)
            if not stream.ok:
                raise RuntimeError("the first answer failed")
            return stream.first_token or float("nan"), server_cpu(pid) - before

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bookchat-bench-")))
        extra = {"DATABASE_URL": args.database_url}
        if args.gemini:
            extra.update(
                GEMINI_API_KEY="bench-key",
                GEMINI_BASE_URL=stack.enter_context(fake_gemini(50.0, 100)),
            )
        data_dir = tmp / "data"
        stop_server(start_server(data_dir, **extra))  # the first start ingests the sample book
        results: dict[Path, list[tuple[float, float, float, float]]] = {s: [] for s in sources}
        for _ in range(args.runs):
            for source in sources:
                served = None if source == ROOT else source
                server = start_server(data_dir, served, **extra)
                try:
                    first_token, answer_cpu = asyncio.run(first_answer(server.url, server.pid))
                finally:
                    stop_server(server)
                results[source].append(
                    (server.spawned_to_healthy, server.cpu_to_healthy, first_token, answer_cpu)
                )
    answerer = "fake Gemini" if args.gemini else "offline answerer"
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"bookchat start-up, ingested data dir, {answerer}, {database}, median of {args.runs} "
        f"(interleaved; {os.cpu_count()} CPUs, load {load:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end; bytecode {'compiled' if args.bytecode else 'as is'})"
    )
    print(f"{'server source':<40}{'healthy':>9}{'CPU':>8}{'1st answer: token':>19}{'CPU':>9}")
    for source, runs in results.items():
        healthy, cpu, token, answer = (statistics.median(r[i] for r in runs) for i in range(4))
        print(
            f"{source!s:<40}{healthy:>7.2f} s{cpu:>6.2f} s{token * 1000:>16.0f} ms"
            f"{answer * 1000:>6.0f} ms"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--qdrant", choices=["embedded", "fake"], default="embedded")
    parser.add_argument("--server-src", type=Path, action="append", default=[])
    parser.add_argument("--database-url", default="", help="PostgreSQL, for --workers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gemini", action="store_true", help="answer through the fake Gemini")
    parser.add_argument("--bytecode", action="store_true", help="compile bookchat/ first")
    args = parser.parse_args()
    if args.qdrant == "fake":
        return qdrant_server_main(args)
    if args.server_src:
        return compare_main(args)

    imports = [import_time() for _ in range(args.runs)]
    with tempfile.TemporaryDirectory(prefix="bookchat-bench-") as tmp:
        ingested = Path(tmp) / "ingested"
        spawn_to_health(ingested)  # the first run ingests the sample book
        warm = [spawn_to_health(ingested) for _ in range(args.runs)]
        cold = []
        for i in range(args.runs):
            empty = Path(tmp) / f"empty-{i}"
            cold.append(spawn_to_health(empty))
            shutil.rmtree(empty, ignore_errors=True)

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):7.2f} s"

    print(f"bookchat start-up, median of {args.runs} runs ({os.cpu_count()} CPUs)")
    print(f"{'measure':<52}{'median':>10}")
    print(f"{'import bookchat.app':<52}{med(imports):>10}")
    print(
        f"{'spawn -> first /api/health answer (ingested dir)':<52}{med([w[0] for w in warm]):>10}"
    )
    print(f"{'spawn -> healthy (ingested dir)':<52}{med([w[1] for w in warm]):>10}")
    print(f"{'spawn -> first /api/health answer (empty dir)':<52}{med([c[0] for c in cold]):>10}")
    print(
        f"{'spawn -> healthy (empty dir, ingests sample book)':<52}{med([c[1] for c in cold]):>10}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
