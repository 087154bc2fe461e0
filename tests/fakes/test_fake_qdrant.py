"""The fake Qdrant server refuses what the real one refuses, so a wrong body fails a test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.qdrant import FakeQdrant


@pytest.fixture
def fake() -> Iterator[FakeQdrant]:
    with FakeQdrant() as server:
        server.client.create_collection("book", vectors_config={})
        yield server


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # qdrant-client's keyword is with_vectors; the REST field is with_vector.
        ("/points/query", {"query": {"nearest": [1.0]}, "limit": 3, "with_vectors": True}),
        ("/points/scroll", {"limit": "many"}),
        ("/points/count", {"exact": True, "filter": {"must": "everything"}}),
    ],
)
def test_a_body_the_schema_refuses_is_a_400_and_recorded(
    fake: FakeQdrant, path: str, body: dict
) -> None:
    response = httpx.post(f"{fake.url}/collections/book{path}", json=body)
    assert response.status_code == 400
    assert "error" in response.json()["status"]
    assert len(fake.rejected) == 1


def test_a_valid_body_gets_the_envelope(fake: FakeQdrant) -> None:
    response = httpx.post(f"{fake.url}/collections/book/points/count", json={"exact": True})
    assert response.status_code == 200
    envelope = response.json()
    assert envelope["result"] == {"count": 0}
    assert envelope["status"] == "ok"
    assert isinstance(envelope["time"], float)
    assert fake.rejected == []


def test_a_missing_collection_is_qdrants_404(fake: FakeQdrant) -> None:
    response = httpx.get(f"{fake.url}/collections/other")
    assert response.status_code == 404
    assert response.json()["status"] == {"error": "Not found: Collection `other` doesn't exist!"}
