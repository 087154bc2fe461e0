"""ServerVectorStore against a Qdrant server over REST (stores/qdrant_http.py), through real HTTP
to the fake Qdrant server, which checks every body against qdrant-client's models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bookchat.stores.connection import Location
from bookchat.stores.embedded import EmbeddedVectorStore
from bookchat.stores.errors import EmbedderMismatch, StoreUnavailable, VectorStoreError
from bookchat.stores.identity import IndexIdentity, point_id
from bookchat.stores.qdrant_http import QdrantServer, ServerVectorStore, rest_base
from bookchat.stores.vectors import NewPoint
from tests.fakes.qdrant import Fail, FakeQdrant, Stall


@dataclass
class Sparse:
    indices: list[int]
    values: list[float]


IDENTITY = IndexIdentity(dense="test:2d", dense_dims=2, sparse="bm25:v1")
LEXICAL = IndexIdentity(dense=None, dense_dims=None, sparse="bm25:v1")
QUERIES = [
    (Sparse([1, 3], [1.0, 1.0]), [1.0, 0.5]),
    (Sparse([6], [1.0]), [0.0, 1.0]),
    (Sparse([4, 1], [2.0, 1.0]), None),
    (Sparse([], []), [0.3, -1.0]),
]


def points(n: int = 12) -> list[NewPoint]:
    return [
        NewPoint(
            id=point_id(f"page{i}.md", f"hash{i}"),
            payload={"file": f"page{i}.md", "position": i, "title": f"Page {i}", "heading": ""},
            sparse=Sparse([i % 5, 5 + i % 3], [1.0 + i % 2, 0.5]),
            dense=[1.0 + (i % 4), float(i % 3) - 1.0],
        )
        for i in range(n)
    ]


def server_store(
    fake: FakeQdrant, *, key: str | None = None, timeout: float = 3.0
) -> ServerVectorStore:
    return ServerVectorStore.open(url=fake.url, collection="book", api_key=key, timeout=timeout)


@pytest.fixture
async def server(fake_qdrant: FakeQdrant) -> AsyncIterator[ServerVectorStore]:
    store = server_store(fake_qdrant)
    yield store
    await store.close()


async def test_a_server_url_is_a_server_location_without_its_key() -> None:
    store = ServerVectorStore.open(
        url="https://user:secret@qdrant.example:443", collection="book", api_key="key-123"
    )
    try:
        assert not store.embedded
        assert store.location.host_port == "qdrant.example:443"
        assert "secret" not in (store.location.url or "")
    finally:
        await store.close()


def test_the_rest_root_is_the_one_qdrant_client_dials() -> None:
    assert rest_base("http://localhost") == "http://localhost:6333"
    assert rest_base("https://x.cloud.qdrant.io:443/") == "https://x.cloud.qdrant.io:443"
    assert rest_base("https://proxy.example/qdrant/") == "https://proxy.example:6333/qdrant"
    assert rest_base("http://[::1]:7000") == "http://[::1]:7000"


async def test_writes_reads_and_search_match_embedded_qdrant(
    server: ServerVectorStore, fake_qdrant: FakeQdrant, tmp_path: Path
) -> None:
    """The same points and queries give the same hits over REST as in local mode's own search."""
    embedded = EmbeddedVectorStore.open(collection="book", path=tmp_path / "qdrant")
    embedded.memory_index = False
    try:
        for store in (server, embedded):
            assert await store.identity() is None
            assert await store.count() == 0
            await store.ensure_collection(IDENTITY)
            await store.ensure_collection(IDENTITY)  # exists: checked, not created again
            await store.upsert(points())
            await store.set_position({points()[0].id: 40, points()[1].id: 41})
            await store.delete([points()[2].id])
        assert await server.identity() == IDENTITY
        assert await server.count(exact=True) == 11
        assert await server.stored_chunks() == await embedded.stored_chunks()
        assert (await server.stored_chunks())[points()[1].id].position == 41
        assert sorted(await server.chunk_headings(), key=str) == sorted(
            await embedded.chunk_headings(), key=str
        )
        for sparse, dense in QUERIES:
            over_rest = await server.search(sparse=sparse, dense=dense, limit=5, candidates=8)
            local = await embedded.search(sparse=sparse, dense=dense, limit=5, candidates=8)
            assert over_rest, (sparse, dense)
            assert [h.payload["file"] for h in over_rest] == [h.payload["file"] for h in local]
            assert [h.dense for h in over_rest] == [h.dense for h in local]
            assert [h.sparse for h in over_rest] == [h.sparse for h in local]
    finally:
        await embedded.close()
    writes = [
        r for r in fake_qdrant.requests if r.path.endswith(("/points", "/delete", "/payload"))
    ]
    assert writes
    assert all(r.query == {"wait": "true"} for r in writes)


async def test_scrolling_follows_pages(
    server: ServerVectorStore, monkeypatch: pytest.MonkeyPatch, fake_qdrant: FakeQdrant
) -> None:
    monkeypatch.setattr("bookchat.stores.qdrant_http.SCROLL_PAGE", 5)
    await server.ensure_collection(IDENTITY)
    await server.upsert(points(12))
    assert len(await server.stored_chunks()) == 12
    assert sum(r.path.endswith("/scroll") for r in fake_qdrant.requests) == 3


async def test_page_rankings_read_text_and_vectors_from_the_server(
    server: ServerVectorStore,
) -> None:
    await server.ensure_collection(IDENTITY)
    stored = points(3)
    for p in stored:
        p.payload["text"] = f"text of {p.payload['file']}"
    await server.upsert(stored)
    plain = await server.chunk_headings()
    assert all(c.text == "" and c.dense is None for c in plain)
    full = {c.file: c for c in await server.chunk_headings(text=True, dense=True)}
    assert full["page1.md"].text == "text of page1.md"
    norm = (2.0**2 + 0.0**2) ** 0.5  # point 1's vector [2, 0], stored normalised (cosine)
    assert full["page1.md"].dense == pytest.approx([2.0 / norm, 0.0])
    # The BM25 weights, for the pages' text counts, as the server keeps them (float32).
    [weights] = [c.sparse for c in await server.chunk_headings(sparse=True) if c.file == "page1.md"]
    assert weights is not None
    assert weights[0] == [1, 6]
    assert weights[1] == pytest.approx([2.0, 0.5])


async def test_a_collection_built_otherwise_is_a_mismatch(server: ServerVectorStore) -> None:
    await server.ensure_collection(LEXICAL)
    with pytest.raises(EmbedderMismatch, match="book"):
        await server.ensure_collection(IDENTITY)
    assert await server.check_identity(LEXICAL) is True


async def test_a_collection_bookchat_did_not_create_is_named(
    server: ServerVectorStore, fake_qdrant: FakeQdrant
) -> None:
    fake_qdrant.client.create_collection("book", vectors_config={})
    with pytest.raises(VectorStoreError, match="'book' was not created by bookchat"):
        await server.identity()


async def test_the_api_key_goes_in_its_header_and_a_wrong_one_is_401(
    fake_qdrant: FakeQdrant,
) -> None:
    fake_qdrant.api_key = "right-key"
    good = server_store(fake_qdrant, key="right-key")
    bad = server_store(fake_qdrant, key="wrong-key-123")
    try:
        await good.ensure_collection(IDENTITY)
        assert all(r.had_api_key for r in fake_qdrant.requests)
        with pytest.raises(StoreUnavailable) as caught:
            await bad.count()
    finally:
        await good.close()
        await bad.close()
    assert str(caught.value) == (
        f"Qdrant at 127.0.0.1:{fake_qdrant.port} refused access (HTTP 401): check QDRANT_API_KEY"
    )
    assert "wrong-key" not in repr(caught.value.__cause__)


async def test_a_read_only_key_can_search_but_a_write_is_403(fake_qdrant: FakeQdrant) -> None:
    fake_qdrant.api_key, fake_qdrant.read_only_key = "admin-key", "reader-key"
    admin = server_store(fake_qdrant, key="admin-key")
    reader = server_store(fake_qdrant, key="reader-key")
    try:
        await admin.ensure_collection(IDENTITY)
        await admin.upsert(points(3))
        assert await reader.search(sparse=Sparse([1], [1.0]), dense=None, limit=3, candidates=3)
        with pytest.raises(StoreUnavailable, match=r"refused access \(HTTP 403\)"):
            await reader.upsert(points(3))
    finally:
        await admin.close()
        await reader.close()


async def test_a_collection_deleted_under_a_running_store_is_a_404_naming_the_fix(
    server: ServerVectorStore, fake_qdrant: FakeQdrant
) -> None:
    await server.ensure_collection(IDENTITY)
    await server.upsert(points(3))
    fake_qdrant.client.delete_collection("book")
    with pytest.raises(VectorStoreError) as caught:
        await server.search(sparse=Sparse([1], [1.0]), dense=[1.0, 0.0], limit=3, candidates=3)
    assert str(caught.value) == (
        f"Qdrant at 127.0.0.1:{fake_qdrant.port} answered HTTP 404 Not Found: are QDRANT_URL "
        "and QDRANT_COLLECTION right, and has `bookchat ingest` run?"
    )
    assert await server.count() == 0  # absent, as before it was created


async def test_a_server_error_is_its_status(
    server: ServerVectorStore, fake_qdrant: FakeQdrant
) -> None:
    fake_qdrant.script(Fail(503))
    with pytest.raises(VectorStoreError, match=r"answered HTTP 503 Service Unavailable$"):
        await server.count()


async def test_a_slow_server_times_out_with_the_limit_in_the_message(
    fake_qdrant: FakeQdrant,
) -> None:
    store = server_store(fake_qdrant, timeout=0.5)
    fake_qdrant.script(Stall(3.0, on="/exists"))
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.count()
    finally:
        await store.close()
    assert f"127.0.0.1:{fake_qdrant.port} did not answer within 0.5 s" in str(caught.value)


@pytest.mark.parametrize(
    ("exists", "other"),
    [
        ("<html>a captive portal</html>", None),
        ('{"result": {"exists": true}, "status": "ok"}', '{"result": {}, "status": "ok"}'),
        ('{"result": {"exists": true}, "status": "ok"}', '{"result": {"points": [7]}}'),
        ('{"result": {"exists": true}, "status": "ok"}', '{"result": {"config": null}}'),
    ],
    ids=["not-json", "no-count", "points-not-objects", "no-config"],
)
async def test_a_200_that_is_not_qdrant_is_said_so(exists: str, other: str | None) -> None:
    """Whatever a proxy or a stranger's server answers, the error names it; never a KeyError."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=exists if request.url.path.endswith("/exists") else other)

    server = QdrantServer(
        url="http://qdrant.test",
        collection="book",
        api_key=None,
        timeout=1.0,
        transport=httpx.MockTransport(handler),
    )
    store = ServerVectorStore(
        server=server,
        collection="book",
        location=Location(backend="server", url="http://qdrant.test", host_port="qdrant.test:6333"),
    )
    calls = [
        store.count,
        store.identity,
        store.stored_chunks,
        lambda: store.search(sparse=Sparse([1], [1.0]), dense=None, limit=3, candidates=3),
    ]
    try:
        for call in calls:
            with pytest.raises(VectorStoreError, match="HTTP 200 with a body that is not Qdrant's"):
                await call()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://qdrant.example:6333", True),
        ("http://10.1.2.3:6333", True),
        ("https://qdrant.example:443", False),
        ("http://localhost:6333", False),
        ("http://127.0.0.1:6333", False),
        ("http://[::1]:6333", False),
    ],
)
async def test_a_key_sent_in_clear_over_the_network_is_warned_of(
    url: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="bookchat.stores.qdrant_http"):
        server = QdrantServer(url=url, collection="book", api_key="k-123456", timeout=1.0)
        await server.aclose()
        await QdrantServer(url=url, collection="book", api_key=None, timeout=1.0).aclose()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == (1 if warned else 0), lines
    assert all("over plain http" in line and "k-123456" not in line for line in lines)
