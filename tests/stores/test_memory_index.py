"""stores.memory_index: the embedded collection's in-memory search, BM25 and cosine legs as
Qdrant scores them, fused by reciprocal rank as qdrant-client fuses."""

from __future__ import annotations

import math
import random

import pytest

from bookchat.stores.memory_index import MemoryIndex, reciprocal_rank_fusion


def test_lexical_scores_are_qdrants_bm25_and_only_shared_terms_match() -> None:
    index = MemoryIndex(
        ["a", "b", "c"],
        [([1, 2], [1.0, 2.0]), ([2], [3.0]), ([], [])],
        [None, None, None],
        None,
    )
    n = 2  # "c" has an empty sparse vector: it does not count as having one
    idf1 = math.log((n - 1 + 0.5) / (1 + 0.5) + 1)
    idf2 = math.log((n - 2 + 0.5) / (2 + 0.5) + 1)
    found = dict(index.lexical([1, 2], [1.0, 1.0], 10))
    assert set(found) == {"a", "b"}
    assert found["a"] == pytest.approx(1.0 * idf1 + 2.0 * idf2)
    assert found["b"] == pytest.approx(3.0 * idf2)
    assert index.lexical([9], [1.0], 10) == []
    assert not index.has_dense


def test_dense_is_cosine_over_the_points_that_have_a_vector() -> None:
    index = MemoryIndex(
        ["a", "b", "c"],
        [([1], [1.0])] * 3,
        [[2.0, 0.0], None, [1.0, 1.0]],
        2,
    )
    found = index.dense([0.0, 3.0], 10)
    assert [i for i, _ in found] == ["c", "a"]
    assert found[0][1] == pytest.approx(1 / math.sqrt(2))
    assert found[1][1] == pytest.approx(0.0)


def test_fusion_ranks_exactly_as_qdrant_clients_rrf() -> None:
    from qdrant_client.http import models
    from qdrant_client.hybrid.fusion import reciprocal_rank_fusion as qdrant_rrf

    rng = random.Random(12)
    ids = [f"p{i}" for i in range(40)]
    for _ in range(200):
        legs = [
            [(pid, rng.random()) for pid in rng.sample(ids, rng.randint(0, 30))]
            for _ in range(rng.randint(1, 3))
        ]
        limit = rng.randint(1, 40)
        scored = [[models.ScoredPoint(id=i, version=0, score=s) for i, s in leg] for leg in legs]
        assert reciprocal_rank_fusion(legs, limit=limit) == [
            p.id for p in qdrant_rrf(scored, limit=limit)
        ]
