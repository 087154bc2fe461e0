"""Hybrid retrieval over a small hand-made book, health checks and failures people will hit."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bookchat.backends import (
    make_dense_embedder,
    make_genai_client,
    make_sparse_encoder,
    open_retriever,
    open_vector_store,
)
from bookchat.config import Settings
from bookchat.ingest.indexer import embedding_text
from bookchat.ingest.pipeline import index_docs
from bookchat.providers.gemini_embedder import GeminiEmbedder
from bookchat.rag.retrieve import BookRetriever
from bookchat.rag.types import RetrievalUnavailable
from bookchat.stores.errors import StoreUnavailable
from tests.books import CountingEmbedder, index_into, make_settings, sample_book_into
from tests.fakes.gemini import FakeGemini, HttpError
from tests.network import free_port

QUESTIONS = [
    ("Which motor holds its position without feedback?", "hardware/motors.md"),
    ("How do I find the shortest path on the occupancy grid?", "software/navigation.md"),
    ("Which environment variable names the serial port?", "software/config.md"),
    ("Why does my pose estimate drift?", "software/navigation.md"),
    ("Where should I start reading this handbook?", "intro.md"),
    ("what does maxSpeed do", "software/config.md"),
]


@pytest.fixture(params=["bm25", "hybrid"])
async def retriever(
    request: pytest.FixtureRequest, settings: Settings, small_book: Path
) -> AsyncIterator[BookRetriever]:
    """The small book ingested offline, lexical only or with the static dense embedder."""
    dense = make_dense_embedder(settings) if request.param == "hybrid" else None
    if request.param == "hybrid" and dense is None:
        pytest.fail("the offline static embedder should be installed")
    book = BookRetriever(
        store=open_vector_store(settings),
        dense=dense,
        sparse=make_sparse_encoder(),
    )
    report = await index_into(book, small_book)
    assert report.embedded == report.chunks > 0
    yield book
    await book.aclose()


@pytest.mark.parametrize(("question", "file"), QUESTIONS)
async def test_the_right_page_comes_first(retriever: BookRetriever, question: str, file: str):
    passages = await retriever.retrieve(question, k=3)
    assert passages[0].file == file, [p.file for p in passages]


async def test_passages_carry_their_citation_and_plain_text(retriever: BookRetriever):
    [first, *_] = await retriever.retrieve("stepper motor feedback", k=2)
    assert first.file == "hardware/motors.md"
    assert first.title == "Motors and wheels"
    assert first.heading == "Choosing a motor"
    assert first.url == "https://robots.example.org/handbook/docs/hardware/motors#choosing-a-motor"
    assert first.text.startswith("Brushed DC motors are cheap")
    assert 0.0 < first.score <= 1.0


async def test_scores_are_similarities(retriever: BookRetriever, settings: Settings):
    passages = await retriever.retrieve("occupancy grid planner", k=4)
    assert all(0.0 <= p.score <= 1.0 for p in passages)
    dense = retriever._dense
    if dense is None:
        # Lexical: the share of the question's terms present, so the best match scores highest.
        assert passages[0].score == max(p.score for p in passages)
        return
    query = await dense.embed_query("occupancy grid planner")
    for p in passages:
        [doc] = await dense.embed_documents([f"{p.title}\n{p.heading}\n{p.text}"])
        cosine = sum(a * b for a, b in zip(query, doc, strict=True)) / (
            math.hypot(*query) * math.hypot(*doc)
        )
        assert p.score == pytest.approx(cosine, abs=1e-3)


@pytest.mark.parametrize("question", [q for q, _ in QUESTIONS])
async def test_embedded_search_agrees_with_qdrants_query_api(retriever: BookRetriever, question):
    """The in-memory search of embedded mode returns what Qdrant's prefetch + RRF returns."""
    fast = await retriever.retrieve(question, k=4)
    retriever.store.memory_index = False
    slow = await retriever.retrieve(question, k=4)
    assert [(p.file, p.heading, p.score) for p in fast] == [
        (p.file, p.heading, p.score) for p in slow
    ]


def test_embedding_text_has_title_and_heading() -> None:
    from tests.books import make_chunk

    chunk = make_chunk("a.md", "Body.", title="Title", heading="Part > Sub")
    assert embedding_text(chunk) == "Title\nPart > Sub\nBody."


async def test_health_and_describe(settings: Settings, small_book: Path):
    retriever = BookRetriever(
        store=open_vector_store(settings),
        dense=None,
        sparse=make_sparse_encoder(),
    )
    try:
        assert retriever.describe()["legs"] == ["bm25"]
        empty = await retriever.check(timeout=2.0)
        assert (empty["status"], empty["points"], empty["backend"]) == ("empty", 0, "embedded")
        assert await retriever.retrieve("motors") == []
        await index_into(retriever, small_book)
        health = await retriever.check(timeout=2.0)
        assert health["status"] == "ok"
        assert health["points"] > 0
        assert health["embedder"] == {"dense": None, "sparse": "bm25:v1"}
        assert health["collection"] == "test-book"
    finally:
        await retriever.aclose()


async def test_open_retriever_uses_the_static_embedder_offline(settings: Settings):
    retriever = await open_retriever(settings)
    try:
        described = retriever.describe()
        assert described["dense"].startswith("local:")
        assert described["legs"] == ["bm25", "dense"]
        assert described["fusion"] == "rrf"
    finally:
        await retriever.aclose()


async def test_query_with_another_embedder_is_a_clear_error(settings: Settings, small_book: Path):
    builder = BookRetriever(
        store=open_vector_store(settings),
        dense=CountingEmbedder("test:a"),
        sparse=make_sparse_encoder(),
    )
    await index_into(builder, small_book)
    await builder.aclose()
    reader = BookRetriever(
        store=open_vector_store(settings),
        dense=None,
        sparse=make_sparse_encoder(),
    )
    try:
        assert await sample_book_into(reader) is None  # the collection has points
        await reader.warm()  # logs the mismatch, does not raise
        with pytest.raises(RetrievalUnavailable, match=r"test:a \(64 dims\)"):
            await reader.retrieve("motors")
        health = await reader.check(timeout=2.0)
        assert health["status"] == "down"
        assert "QDRANT_COLLECTION" in health["detail"]
    finally:
        await reader.aclose()


async def test_query_embedder_down_is_retrieval_unavailable(
    fake_gemini: FakeGemini, tmp_path: Path, small_book: Path
):
    settings = make_settings(
        tmp_path, GEMINI_API_KEY="k-secret", GEMINI_BASE_URL=fake_gemini.base_url
    )
    dense = GeminiEmbedder(client=make_genai_client(settings), dimensions=64, initial_delay=0.01)
    retriever = BookRetriever(
        store=open_vector_store(settings),
        dense=dense,
        sparse=make_sparse_encoder(),
    )
    try:
        await index_into(retriever, small_book)
        assert (await retriever.retrieve("stepper motor"))[0].file == "hardware/motors.md"
        fake_gemini.script(*[HttpError(500, on="batchEmbedContents")] * 2)
        with pytest.raises(RetrievalUnavailable, match="could not be embedded") as caught:
            await retriever.retrieve("stepper motor")
        assert "k-secret" not in str(caught.value)
    finally:
        await retriever.aclose()


async def test_qdrant_server_down_is_quick_and_names_host_and_port(tmp_path: Path):
    port = free_port()
    settings = make_settings(tmp_path, QDRANT_URL=f"http://127.0.0.1:{port}")
    retriever = await open_retriever(settings, timeout=2.0)
    try:
        with pytest.raises(RetrievalUnavailable, match=f"127.0.0.1:{port}"):
            await retriever.retrieve("motors")
        health = await retriever.check(timeout=1.0)
        assert health["status"] == "down"
        assert health["backend"] == "server"
        assert f"127.0.0.1:{port}" in health["detail"]
        # The sample book never goes into a configured server.
        assert await sample_book_into(retriever) is None
    finally:
        await retriever.aclose()


async def test_server_url_in_health_carries_no_key(tmp_path: Path):
    port = free_port()
    settings = make_settings(
        tmp_path, QDRANT_URL=f"https://127.0.0.1:{port}", QDRANT_API_KEY="qdrant-secret"
    )
    retriever = await open_retriever(settings, timeout=1.0)
    try:
        health = await retriever.check(timeout=1.0)
        assert health["url"] == f"https://127.0.0.1:{port}"
        assert "qdrant-secret" not in repr(health)
    finally:
        await retriever.aclose()


async def test_a_second_process_on_the_embedded_folder_gets_a_clear_message(settings: Settings):
    first = open_vector_store(settings)
    try:
        with pytest.raises(StoreUnavailable, match="in use by another bookchat process"):
            open_vector_store(settings)
    finally:
        await first.close()
    second = open_vector_store(settings)  # released on close
    await second.close()


async def test_sample_book_goes_into_an_empty_embedded_collection_once(settings: Settings):
    retriever = await open_retriever(settings)
    try:
        report = await sample_book_into(retriever)
        assert report is not None
        assert report.embedded > 0
        assert retriever.store._memory is None  # the ingest's writes dropped the copies
        assert await sample_book_into(retriever) is None
        await retriever.warm()  # what start-up does instead with a filled collection
        assert retriever.store._memory is not None
        assert (await retriever.check())["status"] == "ok"
    finally:
        await retriever.aclose()


def test_importing_retrieval_is_cheap() -> None:
    """The service imports this at start-up; the heavy clients load on first use."""
    code = (
        "import sys, bookchat.rag.retrieve;"
        "print(sorted(m for m in ('qdrant_client', 'google.genai', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_qdrant_server_that_never_answers_times_out_with_a_hint(tmp_path: Path):
    """A blocked port looks like this: the connection opens (or hangs) and nothing comes back."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        settings = make_settings(tmp_path, QDRANT_URL=f"http://127.0.0.1:{port}")
        retriever = await open_retriever(settings, timeout=1.0)
        try:
            with pytest.raises(RetrievalUnavailable) as caught:
                await retriever.retrieve("motors")
        finally:
            await retriever.aclose()
    message = str(caught.value)
    assert f"127.0.0.1:{port} did not answer within 1 s" in message
    # A Qdrant on this machine is not behind a Space's port rule: no hint about it.
    assert "ports 80, 443 and 8080" not in message
    assert "is Qdrant running there" in message


async def test_a_local_qdrant_that_refuses_gets_no_spaces_hint(tmp_path: Path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    for host in ("localhost", "127.0.0.1"):
        settings = make_settings(tmp_path, QDRANT_URL=f"http://{host}:{port}")
        retriever = await open_retriever(settings, timeout=1.0)
        try:
            with pytest.raises(RetrievalUnavailable) as caught:
                await retriever.retrieve("motors")
        finally:
            await retriever.aclose()
        message = str(caught.value)
        assert f"{host}:{port}" in message
        assert "Spaces" not in message
        assert "QDRANT_URL" in message


@pytest.mark.parametrize(
    ("where", "hint"),
    [
        ("Qdrant at xyz.cloud.qdrant.io:6333", True),
        ("Qdrant at xyz.cloud.qdrant.io:443", False),
        ("Qdrant at localhost:6333", False),
        ("Qdrant at 192.168.1.20:6333", False),
    ],
)
def test_the_spaces_hint_names_only_what_can_be_blocked(where: str, hint: bool) -> None:
    from bookchat.stores.errors import timed_out

    message = str(timed_out(where, 3.0))
    assert message.startswith(f"{where} did not answer within 3 s")
    assert ("ports 80, 443 and 8080" in message) is hint


async def test_versioned_multi_instance_site_tags_passages_and_sources(settings: Settings):
    """A real site's passages say which version and docs instance they come from; `file`
    stays relative to its own version's folder."""
    from bookchat.rag.chat import source_of

    site = Path(__file__).resolve().parents[1] / "fixtures/sites/react-native-website/website"
    retriever = BookRetriever(
        store=open_vector_store(settings),
        dense=None,
        sparse=make_sparse_encoder(),
    )
    try:
        await index_docs(
            site,
            store=retriever.store,
            dense=None,
            sparse=retriever.sparse,
            versions="all",
        )
        passages = await retriever.retrieve("DynamicColorIOS high contrast colors", k=10)
        by_version = {p.version: p for p in passages if p.file == "dynamiccolorios.md"}
        assert set(by_version) == {"current", "0.86", "0.85"}
        assert by_version["0.86"].url.startswith("https://reactnative.dev/docs/dynamiccolorios")
        assert by_version["current"].url.startswith(
            "https://reactnative.dev/docs/next/dynamiccolorios"
        )
        assert by_version["0.85"].url.startswith("https://reactnative.dev/docs/0.85/")
        source = source_of(by_version["0.85"])
        assert (source["file"], source["version"], source["plugin"]) == (
            "dynamiccolorios.md",
            "0.85",
            "default",
        )
        [glossary, *_] = await retriever.retrieve("architecture glossary Fabric renderer", k=1)
        assert (glossary.plugin, glossary.version) == ("architecture", None)
        assert "version" not in source_of(glossary)
    finally:
        await retriever.aclose()


async def test_an_unversioned_book_keeps_the_old_source_shape(retriever: BookRetriever):
    from bookchat.rag.chat import source_of

    [first, *_] = await retriever.retrieve("stepper motor feedback", k=1)
    assert set(source_of(first)) == {"file", "heading", "similarity", "url", "title"}


async def test_outlines_follow_what_the_index_holds(
    retriever: BookRetriever, small_book: Path, tmp_path: Path
) -> None:
    await retriever.retrieve("motor", k=3)
    before = len(await retriever._page_outlines())
    other = tmp_path / "other-docs"
    other.mkdir()
    (other / "only.md").write_text("# Sourdough\n\nFeed the starter daily.\n", encoding="utf-8")
    await index_into(retriever, other)  # replaces the book: one page now
    assert before > 1
    assert len(await retriever._page_outlines()) == 1
    passages = await retriever.retrieve("How often do I feed the starter?", k=3)
    assert [p.file for p in passages] == ["only.md"]


async def test_old_page_rankings_serve_while_a_fresh_build_runs(retriever: BookRetriever) -> None:
    from bookchat.rag.retrieve import OUTLINE_MAX_AGE

    first = await retriever._page_outlines()
    assert await retriever._page_outlines() is first  # fresh: reused, nothing rebuilt
    generation, built = retriever._outlines_of
    retriever._outlines_of = (generation, built - OUTLINE_MAX_AGE - 1)
    # Old by age only: the reader gets the old rankings at once, a rebuild starts beside.
    assert await retriever._page_outlines() is first
    refresh = retriever._refresh
    assert refresh is not None
    assert await retriever._page_outlines() is first
    assert retriever._refresh is refresh  # one rebuild at a time
    await refresh
    rebuilt = await retriever._page_outlines()
    assert rebuilt is not first
    assert rebuilt.keys == first.keys


# Excerpts of React Native's docs (CC BY 4.0, backend/bench/books/books.tsv): the setup page
# states the version once, in words no reader's question shares ("or newer").
VERSION_BOOK = {
    "set-up-your-environment.md": (
        "# Set Up Your Environment\n\n## Installing dependencies\n\n"
        "You will need Node, the React Native command line interface, a JDK, and Android "
        "Studio.\n\n"
        "If you have already installed Node on your system, make sure it is Node 22.11.0 or "
        "newer.\n"
    ),
    "libraries.md": (
        "# Using Libraries\n\n## Does it work with React Native?\n\n"
        "Libraries built for Node.js, such as `rimraf`, interact with your computer file "
        "system and do not work with React Native.\n"
    ),
    "platform-specific-code.md": (
        "# Platform-Specific Code\n\n## Native-specific extensions\n\n"
        "Use the `.native.js` extension when a module needs to be shared between Node.js "
        "and React Native.\n"
    ),
}


async def test_a_version_question_finds_the_passage_stating_the_version(
    retriever: BookRetriever, tmp_path: Path
) -> None:
    docs = tmp_path / "version-book"
    docs.mkdir()
    for name, text in VERSION_BOOK.items():
        (docs / name).write_text(text, encoding="utf-8")
    await index_into(retriever, docs)
    passages = await retriever.retrieve("Which Node version does React Native need?", k=2)
    # Without the bound's phrasing added to the lexical query, the two pages saying
    # "Node.js" and "React Native" fill the top 2 of the hybrid ranking.
    assert any("22.11.0 or newer" in p.text for p in passages), [p.file for p in passages]
