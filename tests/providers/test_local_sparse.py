"""The BM25 sparse encoder: tokenising, stemming, hashing and document weights."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from bookchat.providers.local_sparse import K1, B, Bm25Encoder, term_index
from bookchat.text import stem, tokenize


def test_tokenize_lowercases_and_drops_stopwords() -> None:
    assert tokenize("The Robot and THE Motor") == ["robot", "motor"]


def test_identifiers_keep_the_whole_and_their_parts() -> None:
    terms = tokenize("Set QDRANT_URL or maxSpeed")
    assert "qdrant_url" in terms
    assert {"qdrant", "url"} <= set(terms)
    assert "maxspeed" in terms
    assert {"max", "speed"} <= set(terms)


def test_unicode_words_are_terms() -> None:
    # Whole words, not fragments at the non-ASCII letters (the stemmer still applies).
    assert tokenize("Größe der Räder") == [stem("größe"), "der", stem("räder")]
    assert stem("größe").startswith("größ")


@pytest.mark.parametrize(
    "words",
    [
        ("configure", "configured", "configuring", "configuration"),
        ("chunk", "chunks", "chunking"),
        ("retrieve", "retrieved", "retrieval"),
        ("normalise", "normalize", "normalization"),
        ("install", "installed", "installation"),
        ("library", "libraries"),
    ],
)
def test_stemmer_joins_inflections(words: tuple[str, ...]) -> None:
    assert len({stem(w) for w in words}) == 1, [stem(w) for w in words]


def test_stemmer_keeps_distinct_words_apart() -> None:
    assert stem("robot") != stem("rob")
    assert stem("status") == "status"


def test_term_index_is_stable_across_processes() -> None:
    """Python's hash() is salted per process; the indices stored in Qdrant must not be."""
    code = (
        "from bookchat.providers.local_sparse import term_index;"
        "print(term_index('robot'), term_index('qdrant_url'))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"{term_index('robot')} {term_index('qdrant_url')}\n"}
    assert 0 <= term_index("robot") < 2**32


def test_document_values_are_bm25_saturation() -> None:
    encoder = Bm25Encoder(avgdl=4.0)
    vec = encoder.encode_document("motor motor wheel gearbox")  # dl = 4 = avgdl
    assert vec.indices == sorted(vec.indices)
    weights = dict(zip(vec.indices, vec.values, strict=True))
    norm = K1 * (1 - B + B * 4 / 4.0)
    assert weights[term_index("motor")] == pytest.approx(2 * (K1 + 1) / (2 + norm))
    assert weights[term_index("wheel")] == pytest.approx(1 * (K1 + 1) / (1 + norm))
    assert len(vec.indices) == 3


def test_longer_documents_weigh_a_term_less() -> None:
    encoder = Bm25Encoder()
    short = encoder.encode_document("motor torque")
    long = encoder.encode_document("motor " + " ".join(f"word{i}" for i in range(300)))
    motor = term_index("motor")
    short_w = dict(zip(short.indices, short.values, strict=True))[motor]
    long_w = dict(zip(long.indices, long.values, strict=True))[motor]
    assert long_w < short_w <= encoder.saturation_max()


def test_query_terms_weigh_one_each_without_duplicates() -> None:
    vec = Bm25Encoder().encode_query("motor motors Motor wheel")
    assert vec.values == [1.0, 1.0]
    assert vec.indices == sorted({term_index("motor"), term_index("wheel")})


def test_a_question_of_stopwords_has_no_terms() -> None:
    assert Bm25Encoder().encode_query("what is it?").indices == []


def test_term_counts_read_the_counts_back_from_the_weights() -> None:
    import numpy as np

    encoder = Bm25Encoder()
    long_page = "Configure the cache. " * 400 + "A plugin keeps its cache warm; configure it once."
    docs = ["Install it.", "keyboard keyboard padding KeyboardAvoidingView", long_page]
    vectors = [encoder.encode_document(d) for d in docs]
    lengths = np.asarray([len(v.indices) for v in vectors])
    values = np.concatenate([v.values for v in vectors])
    expected = [
        n
        for d, v in zip(docs, vectors, strict=True)
        for counts in [Counter(term_index(t) for t in tokenize(d))]
        for n in (counts[i] for i in v.indices)
    ]
    assert max(expected) > 400  # a count where float32 weights are close to k1 + 1
    assert encoder.term_counts(values, lengths).tolist() == expected
    # A Qdrant server keeps float32: the same integers come back.
    single = values.astype(np.float32).astype(np.float64)
    assert encoder.term_counts(single, lengths).tolist() == expected
