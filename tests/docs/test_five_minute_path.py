"""The README's five-minute path, run exactly as it is printed, as a newcomer would run it.

The three commands are read out of README.md, so the README cannot drift from what works.
They run from the clone's folder with a fresh home folder, no configuration at all and the
environment the test command built (`run.sh` finds nothing to install after `test.sh`), on
the sample book and on an excerpt of a real Docusaurus site.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.docs.test_readme import PATH_TITLE, README, REPO, code_blocks, commands, sections
from tests.network import free_port
from tests.processes import Running

pytestmark = pytest.mark.slow

BOOK_PLACEHOLDER = "path/to/your-book"
BOOKS = {
    # The sample book's own site folder: ingesting it changes nothing.
    # Its site folder, whose config says localhost:3000 (where `docusaurus start` serves it).
    "sample book": (REPO / "backend/bookchat/sample_book", "http://localhost:3000/docs/"),
    "real book": (
        REPO / "tests/fixtures/sites/excalidraw-dev-docs",
        "https://docs.excalidraw.com/docs/",
    ),
}


def the_path() -> tuple[list[str], list[str], list[str]]:
    """Run, ingest, ask: the README's three commands as argument lists."""
    block = code_blocks(dict(sections(README.read_text(encoding="utf-8")))[PATH_TITLE])[0]
    run, ingest, ask = (shlex.split(command) for command in commands(block))
    return run, ingest, ask


def _environment_is_built() -> bool:
    """Whether test.sh (or run.sh) has installed .venv for the current lock."""
    for kind in ("dev", "runtime"):
        want = hashlib.sha256(
            (REPO / f"backend/requirements/{kind}.txt").read_bytes()
            + (REPO / "pyproject.toml").read_bytes()
        ).hexdigest()
        stamp = REPO / f".venv/.bookchat-{kind}.sha256"
        if stamp.is_file() and stamp.read_text().strip() == want:
            return True
    return False


@pytest.fixture
def newcomer(tmp_path: Path) -> dict[str, str]:
    """A fresh user: own home, nothing configured, a free port (the README's 8000 may be taken)."""
    if not _environment_is_built():
        reason = "the clone's .venv is not built for this lock (run sh backend/scripts/test.sh)"
        if os.environ.get("BOOKCHAT_TEST_REQUIRE_ALL"):
            pytest.fail(reason)
        pytest.skip(reason)
    keep = {"PATH", "LANG", "LC_ALL", "TMPDIR", "PYTHON"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    home = tmp_path / "home"
    home.mkdir()
    env.update(HOME=str(home), PORT=str(free_port()))
    return env


def chat(url: str, message: str) -> dict:
    """POST /api/chat; the stream's final event."""
    response = httpx.post(f"{url}api/chat", json={"message": message}, timeout=120)
    assert response.status_code == 200, response.text
    events = [
        json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")
    ]
    assert events[-1]["type"] == "done", events[-1]
    return events[-1]


def serve_until_ready(run: list[str], env: dict[str, str]) -> tuple[Running, str, str]:
    server = Running(run, cwd=REPO, env=env)
    url = f"http://127.0.0.1:{env['PORT']}/"
    ready = server.wait_for("bookchat: ready: open ")
    assert ready.startswith(f"bookchat: ready: open {url}")
    return server, url, ready


@pytest.mark.parametrize("book", list(BOOKS))
def test_the_five_minute_path_as_the_readme_prints_it(book: str, newcomer: dict[str, str]):
    folder, site = BOOKS[book]
    run, ingest, ask = the_path()
    data = Path(newcomer["HOME"]) / ".local/share/bookchat"

    # 1. Run: the sample book answers; the terminal said where the data is and what to open.
    server, url, ready = serve_until_ready(run, newcomer)
    try:
        assert "answering from the sample book" in ready
        assert f"bookchat: data dir {data} (set BOOKCHAT_DATA_DIR to use another)" in server.lines
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        done = chat(url, "How do I install bookchat?")
        # The sample book's pages are served by bookchat itself.
        assert done["sources"][0]["url"].startswith(f"{url}docs/")
    finally:
        assert server.stop() in {0, -2, 130}, str(server)

    # 2. Ingest your book, from the same folder as the README says.
    assert BOOK_PLACEHOLDER in ingest
    ingest = [str(folder) if arg == BOOK_PLACEHOLDER else arg for arg in ingest]
    done_ingest = subprocess.run(
        ingest, cwd=REPO, env=newcomer, capture_output=True, text=True, timeout=300, check=False
    )
    assert done_ingest.returncode == 0, done_ingest.stderr
    out = done_ingest.stdout
    assert f"into collection 'docusaurus-book' in the embedded Qdrant at {data / 'qdrant'}" in out
    # The served sample book links to bookchat's own pages; the folder's config to
    # localhost:3000. Either way the chunks that go are the sample book's, said in words.
    assert "this replaced the sample book" in out

    # 3. Ask: the answer cites the book that was ingested.
    asked = subprocess.run(
        ask, cwd=REPO, env=newcomer, capture_output=True, text=True, timeout=300, check=False
    )
    assert asked.returncode == 0, asked.stderr
    answer, _, sources = asked.stdout.partition("\nsources:\n")
    # The cited sources, then (apart) the passages the answer does not cite.
    sources, _, related = sources.partition("related reading:\n")
    numbers = re.findall(r"\[(\d+)\]", answer)
    assert numbers
    assert sources.splitlines()[0].startswith(f"[{min(numbers, key=int)}] ")
    cited = [line.rsplit(": ", 1)[1] for line in (sources + related).splitlines()]
    assert cited
    assert all(link.startswith(site) for link in cited), cited

    # And the server, started again, answers from it too.
    server, url, ready = serve_until_ready(run, newcomer)
    try:
        if book == "real book":
            assert "answering from 11 chunks in collection 'docusaurus-book'" in ready
        done = chat(url, "How do I install it?")
        assert done["sources"][0]["url"].startswith(site)
    finally:
        assert server.stop() in {0, -2, 130}, str(server)
