"""Owners of questions being answered: a live process's lock file is held, a dead one's free."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bookchat.stores.owners import LEASE_SECONDS, AnswerOwner

NOW = datetime(2026, 12, 1, tzinfo=UTC)
LONG_AGO = NOW - timedelta(seconds=LEASE_SECONDS + 1)

_HOLDER = """
import sys, time
from pathlib import Path
from bookchat.stores.owners import AnswerOwner
owner = AnswerOwner(Path(sys.argv[1]))
print(owner.token, flush=True)
time.sleep(600)
"""


def test_a_killed_process_is_dead_at_once_and_a_live_one_never(tmp_path: Path) -> None:
    judge = AnswerOwner(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        token = holder.stdout.readline().strip()
        # Alive however old its heartbeat: its lock file says so.
        assert not judge.dead(token, LONG_AGO, NOW)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=60)
        if holder.stdout is not None:
            holder.stdout.close()
    # Dead however fresh its heartbeat: the kernel let go of its lock.
    assert judge.dead(token, NOW, NOW)
    judge.forget([token])
    assert not (tmp_path / f"{token}.lock").exists()


def test_an_owner_elsewhere_is_judged_by_its_heartbeat(tmp_path: Path) -> None:
    judge = AnswerOwner(tmp_path)
    elsewhere = AnswerOwner()  # no file in this data dir: another machine
    assert not judge.dead(elsewhere.token, NOW - timedelta(seconds=5), NOW)
    assert judge.dead(elsewhere.token, LONG_AGO, NOW)
    assert not judge.dead(judge.token, LONG_AGO, NOW)  # never itself
    # Not a token: nothing is opened for it (it comes from the database).
    assert judge.dead("../../etc/passwd", LONG_AGO, NOW)


def test_a_closed_owner_is_dead_and_prune_removes_only_free_files(tmp_path: Path) -> None:
    judge, live, gone, kept = (AnswerOwner(tmp_path) for _ in range(4))
    gone.close()
    kept.close()
    assert judge.dead(gone.token, NOW, NOW)
    assert not judge.dead(live.token, NOW, NOW)
    assert judge.prune(keep=[kept.token]) == 1
    names = {path.name for path in tmp_path.iterdir()}
    assert names == {f"{o.token}.lock" for o in (judge, live, kept)}


def test_an_unwritable_folder_leaves_the_heartbeat(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    owner = AnswerOwner(blocker / "answering")
    assert owner.folder is None
    assert "marked failed only after" in caplog.text
    assert owner.dead(AnswerOwner().token, LONG_AGO, NOW)
    assert owner.prune(keep=[]) == 0
