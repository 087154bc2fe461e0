"""The sample book's pages served by bookchat at their routes, so its citations open."""

from __future__ import annotations

import re

import pytest

from bookchat.ingest.pipeline import SAMPLE_BOOK_ORIGIN, read_book
from bookchat.sample_book import sample_book_path
from tests.api.conftest import app_client
from tests.books import make_settings, write_small_book


@pytest.fixture
async def client(make_settings):
    """A started app whose embedded index holds the sample book (as a first run leaves it)."""
    async with app_client(make_settings()) as (_app, client):
        yield client


async def test_every_citation_of_the_sample_book_opens_its_page_and_anchor(client) -> None:
    book = read_book(sample_book_path(), site_url=SAMPLE_BOOK_ORIGIN)
    urls = {chunk.url for chunk in book.chunks}
    assert urls
    assert all(url.startswith("/docs/") for url in urls)
    for url in sorted(urls):
        path, _, anchor = url.partition("#")
        response = await client.get(path)
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith("text/html")
        assert "script" not in response.headers["content-security-policy"]
        if anchor:
            assert f'id="{anchor}"' in response.text, url


async def test_a_page_reads_as_the_book_wrote_it(client) -> None:
    response = await client.get("/docs/getting-started/installation")
    page = response.text
    assert re.search(r"<h1>[^<]*Install", page)
    assert "It needs Python 3.11 or newer." in page
    assert "<pre><code>" in page  # the install commands, as code
    assert "<script" not in page


async def test_an_unknown_route_is_a_404(client) -> None:
    response = await client.get("/docs/no/such/page")
    assert response.status_code == 404
    assert "Traceback" not in response.text


async def test_once_another_book_is_indexed_the_sample_pages_are_gone(tmp_path) -> None:
    from bookchat.backends import open_retriever
    from tests.books import index_into

    settings = make_settings(tmp_path, BOOKCHAT_SAMPLE_BOOK=False)
    retriever = await open_retriever(settings)
    try:
        await index_into(retriever, write_small_book(tmp_path / "book"))
    finally:
        await retriever.aclose()
    async with app_client(settings) as (_app, client):
        response = await client.get("/docs/getting-started/installation")
        assert response.status_code == 404
        assert "another book" in response.text


async def test_the_pages_wait_for_start_up_like_every_route(make_settings) -> None:
    async with app_client(make_settings(), ready=False) as (app, client):
        app.state.runtime.phase = "starting"
        response = await client.get("/docs/getting-started/installation")
        assert response.status_code == 503
        assert response.headers["retry-after"]


def test_a_root_relative_source_gets_the_servers_origin() -> None:
    from bookchat.rag.chat import source_of
    from bookchat.rag.types import Passage

    passage = Passage(
        file="intro.md", title="Welcome", heading="", url="/docs/#x", text="", score=1
    )
    assert source_of(passage, origin="http://127.0.0.1:8000/")["url"] == (
        "http://127.0.0.1:8000/docs/#x"
    )
    elsewhere = Passage(
        file="a.md", title="A", heading="", url="https://b.example/a", text="", score=1
    )
    assert source_of(elsewhere, origin="http://127.0.0.1:8000/")["url"] == "https://b.example/a"
    protocol_relative = Passage(
        file="a.md", title="A", heading="", url="//evil.example/a", text="", score=1
    )
    assert source_of(protocol_relative, origin="http://h/")["url"] == "//evil.example/a"


@pytest.mark.parametrize(
    ("sample_book_url", "prefix"),
    [("", "/docs/"), ("http://localhost:3000", "http://localhost:3000/docs/")],
)
async def test_the_runtime_indexes_the_sample_book_where_its_pages_are(
    tmp_path, sample_book_url: str, prefix: str
) -> None:
    from bookchat.backends import make_sparse_encoder, open_vector_store
    from bookchat.ingest.pipeline import ensure_sample_book
    from bookchat.rag.retrieve import BookRetriever

    settings = make_settings(tmp_path, BOOKCHAT_SAMPLE_BOOK_URL=sample_book_url)
    retriever = BookRetriever(
        store=open_vector_store(settings), dense=None, sparse=make_sparse_encoder()
    )
    try:
        await ensure_sample_book(
            store=retriever.store,
            dense=None,
            sparse=retriever.sparse,
            site_url=settings.sample_book_url,
        )
        passages = await retriever.retrieve("How do I install bookchat?", k=5)
        assert passages
        assert all(p.url.startswith(prefix) for p in passages)
    finally:
        await retriever.aclose()
