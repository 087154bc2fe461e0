"""`bookchat ingest` as a user runs it: exit codes, one-line errors, the summary line."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bookchat.backends import open_vector_store
from bookchat.cli import main
from tests.books import make_settings
from tests.fakes.gemini import EMBED_ACTIONS, HttpError
from tests.network import free_port

SUMMARY = re.compile(
    r"^(\d+) files, (\d+) chunks: (?:would embed|embedded) (\d+), (\d+) unchanged, "
    r"(?:would delete|deleted) (\d+)(?:, (\d+) skipped)? in [\d.]+ s$",
    re.MULTILINE,
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An offline environment with BOOKCHAT_DATA_DIR in tmp_path; returns the data dir."""
    data = tmp_path / "data"
    for name, value in {
        "BOOKCHAT_DATA_DIR": str(data),
        "GEMINI_API_KEY": "",
        "QDRANT_URL": "",
        "QDRANT_COLLECTION": "cli-book",
        "BOOKCHAT_EMBEDDER": "local",
    }.items():
        monkeypatch.setenv(name, value)
    return data


def run(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(["ingest", *map(str, argv)])
    return int(exited.value.code or 0)


def summary(out: str) -> tuple[int, ...]:
    match = SUMMARY.search(out)
    assert match, out
    return tuple(int(g or 0) for g in match.groups())


def test_ingest_then_rerun(env: Path, small_book: Path, capsys: pytest.CaptureFixture[str]):
    assert run(small_book) == 0
    files, chunks, embedded, _, deleted, skipped = summary(capsys.readouterr().out)
    assert (files, deleted, skipped) == (4, 0, 0)
    assert embedded == chunks > 4
    assert run(small_book) == 0
    assert summary(capsys.readouterr().out)[2:5] == (0, chunks, 0)


def test_site_folder_is_accepted(env: Path, small_book: Path, capsys: pytest.CaptureFixture[str]):
    assert run(small_book.parent) == 0
    assert summary(capsys.readouterr().out)[0] == 4


def test_missing_path(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert run(tmp_path / "nowhere") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "nowhere does not exist" in err


def test_unreadable_site_url_falls_back_with_one_warning(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str]
):
    (small_book.parent / "docusaurus.config.js").write_text(
        "module.exports = { url: process.env.SITE_URL };\n", encoding="utf-8"
    )
    assert run(small_book) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert "docusaurus.config.js" in captured.err
    assert "`url`" in captured.err
    assert "Traceback" not in captured.err
    # What was resolved is printed before indexing, so a wrong guess is visible.
    assert "site http://localhost:3000/" in captured.out
    # The flag that config would have given silences the warning.
    assert run(small_book, "--site-url", "https://robots.example.org") == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "site https://robots.example.org/" in captured.out


def test_bad_file_is_reported_and_skipped(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str]
):
    (small_book / "broken.md").write_text("---\ntitle: [unclosed\n---\n\nText.\n", "utf-8")
    assert run(small_book) == 0
    captured = capsys.readouterr()
    assert "skipped broken.md" in captured.err
    files, _, embedded, _, _, skipped = summary(captured.out)
    assert (files, skipped) == (4, 1)
    assert embedded > 0


def test_a_skipped_file_cannot_write_terminal_escapes(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str]
):
    # A book from elsewhere names its own files and its YAML error quotes its own text.
    (small_book / "evil\x1b]0;owned\x07.md").write_text(
        "---\ntitle: [unclosed \x1b[2J\n---\n\nText.\n", "utf-8"
    )
    assert run(small_book) == 0
    err = capsys.readouterr().err
    assert "skipped evil\\x1b]0;owned\\x07.md" in err
    assert "\x1b" not in err
    assert "\x07" not in err


def test_dry_run_writes_nothing(env: Path, small_book: Path, capsys: pytest.CaptureFixture[str]):
    assert run(small_book, "--dry-run") == 0
    assert "would embed" in capsys.readouterr().out
    assert not env.exists()  # not even the embedded Qdrant folder

    assert run(small_book) == 0
    chunks = summary(capsys.readouterr().out)[1]
    (small_book / "software" / "config.md").unlink()
    assert run(small_book, "--dry-run") == 0
    _, _, embedded, _, deleted, _ = summary(capsys.readouterr().out)
    assert embedded == 0
    assert deleted >= 1
    assert run(small_book) == 0  # the dry run left every chunk in place: now they go
    assert summary(capsys.readouterr().out)[4] == deleted
    assert chunks > deleted


def test_embedder_mismatch_exits_with_one_message(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str], monkeypatch
):
    assert run(small_book) == 0
    capsys.readouterr()
    monkeypatch.setattr("bookchat.backends.make_dense_embedder", lambda settings: None)
    assert run(small_book) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "was built with local:" in err
    assert "QDRANT_COLLECTION" in err


def test_locked_embedded_folder(
    env: Path, small_book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    store = open_vector_store(make_settings(tmp_path))  # same data dir as the env fixture
    try:
        assert run(small_book) == 1
    finally:
        asyncio.run(store.close())
    err = capsys.readouterr().err
    assert "in use by another bookchat process" in err
    assert "Traceback" not in err


def test_gemini_without_key_is_a_configuration_error(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str], monkeypatch
):
    monkeypatch.setenv("BOOKCHAT_EMBEDDER", "gemini")
    assert run(small_book) == 2
    assert "GEMINI_API_KEY" in capsys.readouterr().err


def test_progress_bar_only_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bookchat.cli import ingest as cli_ingest

    assert cli_ingest._progress_bar() is None  # captured stderr is not a TTY
    monkeypatch.setattr(cli_ingest.sys.stderr, "isatty", lambda: True)
    bar = cli_ingest._progress_bar()
    assert bar is not None
    for done in (0, 100, 150):
        bar.update(done, 150)
    bar.close()
    assert "150/150" in capsys.readouterr().err


def test_unreachable_qdrant_server_is_one_line(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str], monkeypatch
):

    port = free_port()
    monkeypatch.setenv("QDRANT_URL", f"http://127.0.0.1:{port}")
    assert run(small_book) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"Qdrant at 127.0.0.1:{port}" in err


@pytest.mark.slow
def test_unreachable_gemini_embeddings_are_one_line_naming_gemini(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str], monkeypatch
):
    # The bug this guards: httpx2's ConnectError was not retried and ended in a traceback.
    monkeypatch.setenv("BOOKCHAT_EMBEDDER", "gemini")
    monkeypatch.setenv("GEMINI_API_KEY", "cli-secret")
    monkeypatch.setenv("GEMINI_BASE_URL", f"http://127.0.0.1:{free_port()}")
    assert run(small_book) == 1
    err = capsys.readouterr().err
    assert err == "bookchat ingest: Gemini embeddings could not be reached: ConnectError\n"


def test_ingest_with_gemini_embeddings(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str], monkeypatch, fake_gemini
):
    monkeypatch.setenv("BOOKCHAT_EMBEDDER", "auto")  # a key means Gemini embeddings
    monkeypatch.setenv("GEMINI_API_KEY", "cli-secret")
    monkeypatch.setenv("GEMINI_BASE_URL", fake_gemini.base_url)
    monkeypatch.setenv("BOOKCHAT_EMBEDDING_DIMENSIONS", "128")
    assert run(small_book) == 0
    out, err = capsys.readouterr()
    chunks = summary(out)[1]
    assert set(fake_gemini.task_types) == {"RETRIEVAL_DOCUMENT"}
    assert len(fake_gemini.task_types) == chunks
    assert "cli-secret" not in out + err
    # Switching back to the offline embedder on this collection is refused.
    monkeypatch.setenv("GEMINI_API_KEY", "")
    assert run(small_book) == 1
    assert "gemini:gemini-embedding-001 (128 dims)" in capsys.readouterr().err


def test_site_folder_with_docs_elsewhere_and_versions(
    env: Path, capsys: pytest.CaptureFixture[str]
):
    """Jest keeps its docs at ../docs and serves version 30.4 at /docs/: that is indexed."""
    website = Path(__file__).resolve().parents[1] / "fixtures/sites/jest/website"
    assert run(website) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("site https://jestjs.io/ (docusaurus.config.mjs")
    assert lines[1].endswith("version-30.4 -> /docs/ (version 30.4)")
    assert lines[2] == "not indexed (--versions all to include): versions current, 29.7"
    assert summary(out)[0] == 1
    assert run(website, "--versions", "all") == 0
    out = capsys.readouterr().out
    assert "jest/docs -> /docs/next/ (version current)" in out
    assert "version-29.7 -> /docs/29.7/ (version 29.7)" in out
    assert summary(out)[0] == 3


def test_a_config_that_serves_no_docs_is_one_line(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / "docusaurus.config.js").write_text(
        "module.exports = {url: 'https://x.example', presets: [['classic', {docs: false}]]};",
        encoding="utf-8",
    )
    assert run(tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "serves no docs folder" in err


def _ingest_in_a_new_process(path: Path, data: Path) -> tuple[str, bool]:
    """`bookchat ingest PATH` as a fresh process: its summary and whether qdrant-client loaded."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from bookchat.cli import main\n"
        "try:\n"
        f"    main(['ingest', {str(path)!r}])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print('qdrant loaded:', 'qdrant_client' in sys.modules)\n"
    )
    env = {**os.environ, "BOOKCHAT_DATA_DIR": str(data), "GEMINI_API_KEY": "", "QDRANT_URL": ""}
    env.update(QDRANT_COLLECTION="cli-book", BOOKCHAT_EMBEDDER="local")
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout, "qdrant loaded: True" in done.stdout


def test_a_no_change_rerun_does_not_open_qdrant(env: Path, small_book: Path):
    out, loaded = _ingest_in_a_new_process(small_book, env)
    assert loaded
    chunks = summary(out)[1]
    out, loaded = _ingest_in_a_new_process(small_book, env)
    assert not loaded
    assert summary(out)[2:5] == (0, chunks, 0)
    # A changed page is seen: the store is opened and the page re-embedded.
    page = small_book / "software" / "config.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nOne more sentence.\n", "utf-8")
    out, loaded = _ingest_in_a_new_process(small_book, env)
    assert loaded
    assert summary(out)[2] >= 1


def test_another_write_into_the_index_defeats_the_shortcut(
    env: Path, small_book: Path, tmp_path: Path
):
    _ingest_in_a_new_process(small_book, env)
    other = tmp_path / "other" / "docs"
    other.mkdir(parents=True)
    (other / "only.md").write_text("# Only page\n\nSomething else entirely.\n", "utf-8")
    _ingest_in_a_new_process(other, env)  # replaces the small book's chunks
    out, loaded = _ingest_in_a_new_process(small_book, env)
    assert loaded
    assert summary(out)[2] == summary(out)[1]  # everything embedded again


def test_a_database_url_ingest_never_uses_cannot_stop_it(
    env: Path, small_book: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("DATABASE_URL", "mysql://someone@db/books")
    monkeypatch.setenv("PORT", "eighty")
    assert run(small_book) == 0
    captured = capsys.readouterr()
    assert summary(captured.out)[0] == 4
    assert "DATABASE_URL" not in captured.err


def test_the_summary_names_the_collection_and_where_it_is(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str]
):
    assert run(small_book, "--dry-run") == 0
    assert f"would go into collection 'cli-book' in the embedded Qdrant at {env / 'qdrant'}\n" in (
        capsys.readouterr().out
    )
    assert run(small_book) == 0
    out = capsys.readouterr().out
    assert f"\ninto collection 'cli-book' in the embedded Qdrant at {env / 'qdrant'}\n" in out
    assert "sample book" not in out


def test_replacing_the_sample_book_is_said_in_words(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str]
):
    from bookchat.sample_book import sample_book_path

    assert run(sample_book_path()) == 0
    sample_chunks = summary(capsys.readouterr().out)[1]
    assert run(small_book, "--dry-run") == 0
    assert (
        f"this would replace the sample book (its {sample_chunks} chunks are the ones to "
        "delete): `bookchat serve` would answer from this book"
    ) in capsys.readouterr().out
    assert run(small_book) == 0
    out = capsys.readouterr().out
    assert summary(out)[4] == sample_chunks
    assert (
        f"this replaced the sample book (its {sample_chunks} chunks are the ones deleted): "
        "`bookchat serve` now answers from this book"
    ) in out
    # A later change to the reader's own book is not the sample book's doing.
    page = next(small_book.rglob("*.md"))
    page.write_text(page.read_text(encoding="utf-8") + "\nOne more sentence.\n", encoding="utf-8")
    assert run(small_book) == 0
    out = capsys.readouterr().out
    assert "sample book" not in out
    assert "chunks of pages that changed or are not in this folder" in out


def test_an_upstream_error_echoing_a_credential_is_masked_on_the_terminal(
    env: Path, small_book: Path, capsys: pytest.CaptureFixture[str], monkeypatch, fake_gemini
):
    # Masked even though this key was never configured here: an upstream's words go through
    # bookchat.redact before they reach a terminal (or a CI log that keeps them).
    monkeypatch.setenv("BOOKCHAT_EMBEDDER", "gemini")
    monkeypatch.setenv("GEMINI_API_KEY", "cli-secret")
    monkeypatch.setenv("GEMINI_BASE_URL", fake_gemini.base_url)
    echo = "Consumer 'api_key:sk-OTHER-8812' has been suspended; retry with Bearer tok-LEAK-3"
    fake_gemini.script(*[HttpError(403, echo, on=EMBED_ACTIONS)] * 12)
    assert run(small_book) == 1
    err = capsys.readouterr().err
    assert err.startswith("bookchat ingest: ")
    assert "sk-OTHER-8812" not in err
    assert "tok-LEAK-3" not in err


def test_a_docusaurus_1_site_folder_says_to_pass_its_docs(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # mobx's layout: website/siteConfig.js (Docusaurus 1), the pages in the repository's docs/.
    site = tmp_path / "repo" / "website"
    site.mkdir(parents=True)
    (site / "siteConfig.js").write_text("module.exports = { url: 'https://x.example' };\n")
    (site.parent / "docs").mkdir()
    (site.parent / "docs" / "intro.md").write_text("# Intro\n\nHello.\n")
    assert run(site) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "holds no Markdown pages" in err
    assert "Docusaurus 1 site (siteConfig.js)" in err
    assert str(site.parent / "docs") in err or "repo/docs" in err
    assert run(site.parent / "docs") == 0  # the folder it names ingests
