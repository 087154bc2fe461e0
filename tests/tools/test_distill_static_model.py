"""The build tool's documentation corpus: pinned sources, never a bench book, read by bookchat."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_tool():
    path = REPO / "backend" / "tools" / "distill_static_model.py"
    spec = importlib.util.spec_from_file_location("distill_static_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_sources_are_pinned_and_none_is_a_bench_book():
    tool = load_tool()
    sources = tool.read_docs_sources()
    assert len(sources) >= 10
    bench = (REPO / "backend" / "bench" / "books" / "books.tsv").read_text().splitlines()[1:]
    bench_repos = {line.split("\t")[1] for line in bench if line.strip()}
    for repo, commit, folder in sources:
        assert repo not in bench_repos
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        assert folder
        assert not folder.startswith("/")


def test_a_bench_book_as_a_source_is_refused(tmp_path):
    tool = load_tool()
    listed = tmp_path / "sources.tsv"
    listed.write_text("repository\tcommit\tfolder\npnpm/pnpm.io\t" + "0" * 40 + "\tdocs\n")
    with pytest.raises(SystemExit, match=r"pnpm/pnpm\.io is a retrieval-bench book"):
        tool.read_docs_sources(listed)


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_corpus_is_chunks_headings_and_first_sentences_at_the_pinned_commit(tmp_path):
    tool = load_tool()
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    page = work / "docs" / "proxy.md"
    page.write_text(
        "# Proxy settings\n\n## Routing requests through a proxy\n\n"
        "Set the proxy option to send every request through your company gateway. "
        "It accepts a URL with a port.\n"
    )
    (work / "docs" / "clip.mov").write_bytes(b"\0" * 64)  # not Markdown: never archived
    git("init", "-q", cwd=work)
    git("add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work)
    page.write_text("# Changed later\n\nThis text came after the pinned commit was recorded.\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two", cwd=work)
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    git("clone", "-q", "--bare", str(work), str(mirrors / "acme+docs" / "repo"), cwd=tmp_path)

    corpus, pairs = tool.collect_docs_corpus([("acme/docs", commit, "docs")], mirrors)

    passage = next(text for text in corpus if "company gateway" in text)
    assert passage.splitlines()[:2] == ["Proxy settings", "Routing requests through a proxy"]
    assert "Routing requests through a proxy" in corpus  # the heading alone, a short input
    assert "Set the proxy option to send every request through your company gateway." in corpus
    assert not any("came after the pinned commit" in text for text in corpus)
    assert pairs == [
        (
            "Routing requests through a proxy",
            "Set the proxy option to send every request through your company gateway. "
            "It accepts a URL with a port.",
        )
    ]
