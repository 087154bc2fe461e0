"""The shipped offline embedder: files present, deterministic unit vectors, and it retrieves."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bookchat.providers.static_embedder import MAX_TOKENS, MODEL_DIR, StaticEmbedder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    return StaticEmbedder.load()


def load_tool():
    """The build/eval script, for its evaluation pairs and hashing baseline (numpy only)."""
    path = REPO / "backend" / "tools" / "distill_static_model.py"
    spec = importlib.util.spec_from_file_location("distill_static_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


def test_model_files_ship_with_a_licence_and_a_small_footprint():
    names = {p.name for p in MODEL_DIR.iterdir()}
    expected = {"tokenizer.json", "embeddings.npz", "config.json", "LICENSE", "NOTICE", "README.md"}
    assert expected <= names
    assert "Apache License" in (MODEL_DIR / "LICENSE").read_text()
    total = sum(p.stat().st_size for p in MODEL_DIR.iterdir() if p.is_file())
    assert total <= 8_000_000


def test_name_carries_dimensions_and_a_fingerprint_of_the_files(embedder, tmp_path):
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert embedder.dimensions == config["dimensions"]
    assert embedder.name.startswith(f"local:minilm-static-{config['dimensions']}-")
    assert StaticEmbedder.from_directory(MODEL_DIR).name == embedder.name
    copy = tmp_path / "model"
    shutil.copytree(MODEL_DIR, copy)
    with np.load(copy / "embeddings.npz") as arrays:
        values, scales = arrays["values"].copy(), arrays["scales"].copy()
    values[2000, 0] = values[2000, 0] // 2 + 1
    np.savez_compressed(copy / "embeddings.npz", values=values, scales=scales)
    assert StaticEmbedder.from_directory(copy).name != embedder.name


def test_load_is_cached(embedder):
    assert StaticEmbedder.load() is embedder


async def test_vectors_are_unit_length_with_the_stated_dimensions(embedder):
    vectors = await embedder.embed_documents(
        ["Install the package with pip.", "Deploy to Kubernetes"]
    )
    query = await embedder.embed_query("how do I deploy?")
    for vector in [*vectors, query]:
        assert len(vector) == embedder.dimensions
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


async def test_same_text_gives_the_same_vector_across_loads(embedder):
    text = "Configure the server port in the settings file."
    again = StaticEmbedder.from_directory(MODEL_DIR)
    assert await embedder.embed_query(text) == await embedder.embed_query(text)
    assert await embedder.embed_query(text) == await again.embed_query(text)
    assert (await embedder.embed_documents([text]))[0] == await embedder.embed_query(text)


@pytest.mark.parametrize("text", ["", "   \n\t", "\u2603\u2603", "[CLS] [SEP]"])
async def test_text_without_known_tokens_gives_a_zero_vector_not_nan(embedder, text):
    vector = await embedder.embed_query(text)
    assert len(vector) == embedder.dimensions
    assert not any(np.isnan(vector))
    assert not any(vector)


async def test_empty_batch(embedder):
    assert await embedder.embed_documents([]) == []


@pytest.mark.parametrize(
    ("anchor", "related", "unrelated"),
    [
        (
            "How do I install the package?",
            "installation instructions with pip",
            "the API returns a 404 for unknown ids",
        ),
        (
            "The server crashed with an out of memory error",
            "the process ran out of RAM and was killed",
            "set the page title in the sidebar configuration",
        ),
        (
            "How can I authenticate requests?",
            "send your API key as a bearer token in the Authorization header",
            "run the unit tests before opening a pull request",
        ),
        (
            "deploy the app to production",
            "release the service to the live servers",
            "a recipe for chocolate cake with butter",
        ),
    ],
)
async def test_related_sentences_are_closer_than_unrelated_ones(
    embedder, anchor, related, unrelated
):
    a, r, u = await embedder.embed_documents([anchor, related, unrelated])
    assert cosine(a, r) > cosine(a, u) + 0.05


async def test_a_batch_equals_one_text_at_a_time(embedder):
    texts = [f"Chapter {i}: configuring the {w} option" for i, w in enumerate("abcdefghijkl")]
    texts[3] = ""
    assert len(texts) > 8  # above the inline size, so this also runs in a worker thread
    batch = np.array(await embedder.embed_documents(texts))
    single = np.array([await embedder.embed_query(t) for t in texts])
    assert np.array_equal(batch, single)


def test_very_long_text_is_cut_to_its_first_tokens(embedder):
    text = "Restart the worker after changing its configuration. " * 20_000
    head = " ".join(text.split()[: MAX_TOKENS * 2])
    tokens = embedder._tokenizer.encode(head, add_special_tokens=False).ids[:MAX_TOKENS]
    cut = embedder._tokenizer.decode(tokens)
    np.testing.assert_allclose(embedder.encode([text]), embedder.encode([cut]), atol=1e-6)


def test_retrieves_documentation_passages_better_than_feature_hashing(embedder):
    tool = load_tool()
    pairs = tool.load_pairs()
    questions, passages = [q for q, _ in pairs], [p for _, p in pairs]
    top1, mrr, _ = tool.rank_scores(embedder.encode(questions), embedder.encode(passages))
    base_top1, base_mrr, _ = tool.rank_scores(
        tool.hashing_vectors(questions), tool.hashing_vectors(passages)
    )
    assert len(pairs) == 40
    assert top1 >= 32
    assert top1 > base_top1
    assert mrr > base_mrr


def test_loading_needs_no_torch_and_no_network():
    code = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise RuntimeError('network used')\n"
        "socket.socket.connect = refuse\n"
        "from bookchat.providers.static_embedder import StaticEmbedder\n"
        "e = StaticEmbedder.load(); e.encode(['hello world'])\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
