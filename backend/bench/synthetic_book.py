"""A deterministic synthetic Docusaurus book (any number of pages) for ingestion benchmarks.

Pages read like technical prose: front matter, a title, three to six sections with
subsections, paragraphs from a seeded vocabulary with identifiers and code blocks, so the
parser, chunker and both embedders do realistic work.

    python backend/bench/synthetic_book.py OUT_DIR [--pages 1000]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from bookchat.ingest.model import Chunk

COMMON = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "or",
    "an",
    "at",
    "which",
    "can",
    "when",
    "you",
    "your",
    "each",
    "one",
    "all",
    "more",
    "not",
    "into",
    "how",
    "then",
    "its",
    "use",
    "uses",
    "used",
    "using",
    "will",
    "should",
    "must",
    "may",
    "also",
    "only",
    "other",
    "first",
    "new",
    "after",
    "before",
    "between",
    "both",
    "every",
    "while",
]
TECH = [
    "robot",
    "sensor",
    "actuator",
    "joint",
    "controller",
    "kinematics",
    "trajectory",
    "planner",
    "odometry",
    "lidar",
    "camera",
    "depth",
    "point",
    "cloud",
    "map",
    "localization",
    "navigation",
    "gazebo",
    "simulation",
    "physics",
    "node",
    "topic",
    "service",
    "action",
    "message",
    "publisher",
    "subscriber",
    "launch",
    "parameter",
    "frame",
    "transform",
    "pose",
    "velocity",
    "torque",
    "gripper",
    "manipulator",
    "servo",
    "encoder",
    "battery",
    "firmware",
    "driver",
    "network",
    "latency",
    "bandwidth",
    "queue",
    "buffer",
    "thread",
    "process",
    "memory",
    "cache",
    "index",
    "vector",
    "embedding",
    "model",
    "training",
    "dataset",
    "inference",
    "policy",
    "reward",
    "agent",
    "environment",
    "episode",
    "gradient",
    "loss",
    "optimizer",
    "tensor",
    "layer",
    "attention",
    "token",
    "prompt",
    "context",
    "window",
    "retrieval",
    "passage",
    "chunk",
    "document",
    "page",
    "chapter",
    "module",
    "lesson",
    "exercise",
    "quiz",
    "answer",
    "question",
    "citation",
    "deploy",
    "container",
    "image",
    "registry",
    "cluster",
    "secret",
    "token",
    "credential",
    "database",
    "schema",
    "migration",
    "backup",
    "restore",
    "monitor",
    "metric",
    "alert",
    "log",
    "trace",
    "span",
    "dashboard",
    "threshold",
]
VERBS = [
    "configure",
    "install",
    "compute",
    "publish",
    "subscribe",
    "measure",
    "estimate",
    "calibrate",
    "filter",
    "fuse",
    "plan",
    "execute",
    "simulate",
    "train",
    "evaluate",
    "deploy",
    "monitor",
    "restart",
    "validate",
    "serialize",
    "stream",
    "cache",
    "index",
    "retrieve",
    "rank",
    "embed",
    "chunk",
    "parse",
    "render",
]


def _sentence(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(8, 22)):
        roll = rng.random()
        if roll < 0.45:
            words.append(rng.choice(COMMON))
        elif roll < 0.85:
            words.append(rng.choice(TECH))
        elif roll < 0.95:
            words.append(rng.choice(VERBS))
        else:
            words.append(f"`{rng.choice(TECH).upper()}_{rng.choice(TECH).upper()}`")
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(3, 7)))


def page_markdown(number: int, rng: random.Random) -> str:
    """One page: front matter, sections, subsections, the odd code block."""
    topic = f"{rng.choice(TECH)} {rng.choice(TECH)}"
    lines = ["---", f"title: {topic.title()} {number}", f"sidebar_position: {number}", "---", ""]
    lines += [_paragraph(rng), ""]
    for s in range(rng.randint(3, 6)):
        lines += [f"## {rng.choice(VERBS).title()} the {rng.choice(TECH)} {s}", ""]
        for _ in range(rng.randint(1, 3)):
            lines += [_paragraph(rng), ""]
        if rng.random() < 0.5:
            lines += [f"### {rng.choice(TECH).title()} details", "", _paragraph(rng), ""]
        if rng.random() < 0.3:
            var = f"{rng.choice(TECH).upper()}_{rng.choice(TECH).upper()}"
            lines += ["```bash", f"export {var}=1", f"ros2 run {rng.choice(TECH)} node", "```", ""]
    return "\n".join(lines)


def write_book(out: Path, *, pages: int, seed: int = 7) -> Path:
    """Write a site folder (docusaurus.config.js + docs/) and return its docs folder."""
    rng = random.Random(seed)
    docs = out / "docs"
    per_module = 50
    for number in range(pages):
        module = docs / f"module-{number // per_module + 1:02d}"
        module.mkdir(parents=True, exist_ok=True)
        (module / f"page-{number:04d}.md").write_text(page_markdown(number, rng), encoding="utf-8")
    (out / "docusaurus.config.js").write_text(
        "module.exports = { url: 'https://book.example.org', baseUrl: '/' };\n", encoding="utf-8"
    )
    return docs


def synthetic_chunks(count: int, *, seed: int = 11) -> list[Chunk]:
    """`count` chunks of about 120 words each, straight into the model (no parsing)."""
    import hashlib

    rng = random.Random(seed)
    chunks = []
    for i in range(count):
        file = f"module-{i // 500:02d}/page-{i // 10:05d}.md"
        heading = f"{rng.choice(VERBS).title()} the {rng.choice(TECH)}"
        text = " ".join(_paragraph(rng) for _ in range(2))
        digest = hashlib.sha256(f"{file}\x1f{heading}\x1f{text}".encode()).hexdigest()
        chunks.append(
            Chunk(
                file=file,
                title=f"Page {i // 10}",
                heading=heading,
                url=f"https://book.example.org/docs/{file[:-3]}#{i}",
                text=text,
                content_hash=digest,
                position=i % 10,
            )
        )
    return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    print(write_book(args.out, pages=args.pages))


if __name__ == "__main__":
    main()
