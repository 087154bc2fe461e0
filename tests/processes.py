"""A command running in the background whose output a test can wait on, line by line."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest


class Running:
    """A subprocess whose stdout and stderr lines are collected as they come."""

    def __init__(self, command: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 120.0) -> str:
        """The first line starting with prefix; fails if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the readers drain what the process wrote last
                if not any(line.startswith(prefix) for line in self.lines):
                    pytest.fail(f"exited {self.process.returncode} without {prefix!r}:\n{self}")
            time.sleep(0.05)
        pytest.fail(f"no line starting {prefix!r} within {timeout:g} s:\n{self}")

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Send sig (Ctrl+C by default) and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code

    def __str__(self) -> str:
        return "\n".join(self.lines)
