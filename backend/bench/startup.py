"""Start-up benchmark: how soon `bookchat serve` answers /api/health, and the app's import time.

    python backend/bench/startup.py [--runs 5]

Prints medians over `runs`: import time of bookchat.app; spawn to the first /api/health answer
(any status: "starting" counts, it is what a platform health check sees) and spawn to
"healthy", with an already-ingested data dir and with an empty one (the sample book is
ingested at start-up, in the background).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

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
