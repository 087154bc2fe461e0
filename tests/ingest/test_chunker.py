"""Chunking: one chunk per section, long sections split under budget, no text ever lost."""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import pytest

from bookchat.ingest.chunker import (
    chunk_book,
    chunk_page,
    content_hash,
    estimate_tokens,
    split_text,
)
from bookchat.ingest.docusaurus import Page, Section
from bookchat.ingest.siteconfig import SiteConfig

WORDS = [
    "qdrant",
    "embedding",
    "passage",
    "reader",
    "chapter",
    "anchor",
    "token",
    "budget",
    "sentence",
    "paragraph",
    "docusaurus",
    "gemini",
    "citation",
    "stream",
    "heading",
    "collection",
    "config",
    "folder",
    "page",
    "answer",
]


def page_of(*sections: Section, url: str = "https://b.example/docs/p") -> Page:
    return Page(file="dir/p.md", title="The Page", url=url, sections=list(sections))


def norm(text: str) -> str:
    return " ".join(text.split())


def test_one_chunk_per_short_section_with_its_citation() -> None:
    page = page_of(
        Section((), None, "Lead text."),
        Section(("Setup",), "setup", "Setup text."),
        Section(("Setup", "Linux"), "linux", "Linux text."),
    )
    chunks = chunk_page(page)
    assert [(c.heading, c.url, c.text, c.position) for c in chunks] == [
        ("", "https://b.example/docs/p", "Lead text.", 0),
        ("Setup", "https://b.example/docs/p#setup", "Setup text.", 1),
        ("Setup > Linux", "https://b.example/docs/p#linux", "Linux text.", 2),
    ]
    assert all(c.file == "dir/p.md" and c.title == "The Page" for c in chunks)
    first = chunks[1]
    expected = hashlib.sha256(
        "\x1f".join((first.file, first.heading, first.url, first.text)).encode()
    ).hexdigest()
    assert (
        first.content_hash
        == expected
        == content_hash("dir/p.md", "Setup", "https://b.example/docs/p#setup", "Setup text.")
    )


def test_hash_changes_with_any_field() -> None:
    base = content_hash("f.md", "H", "u", "t")
    assert base == content_hash("f.md", "H", "u", "t")
    variants = [("g.md", "H", "u", "t"), ("f.md", "I", "u", "t"), ("f.md", "H", "v", "t")]
    variants.append(("f.md", "H", "u", "t2"))
    assert all(content_hash(*v) != base for v in variants)
    # Field boundaries matter: moving text between fields is a different chunk.
    assert content_hash("ab", "c", "u", "t") != content_hash("a", "bc", "u", "t")


def test_empty_sections_produce_no_chunk() -> None:
    page = page_of(Section(("A",), "a", "  \n\n "), Section(("B",), "b", "Text."))
    assert [c.heading for c in chunk_page(page)] == ["B"]


def test_long_section_splits_at_paragraphs_within_budget() -> None:
    paragraphs = [f"Paragraph {i} " + " ".join(WORDS[:12]) + "." for i in range(12)]
    text = "\n\n".join(paragraphs)
    assert estimate_tokens(text) > 100
    pieces = split_text(text, max_tokens=60)
    assert len(pieces) > 1
    assert all(estimate_tokens(p) <= 60 for p in pieces)
    # Whole paragraphs, in order, none lost or split.
    assert [para for piece in pieces for para in piece.split("\n\n")] == paragraphs


def test_long_paragraph_splits_at_sentences() -> None:
    sentences = [f"Sentence number {i} mentions {WORDS[i]} and {WORDS[-i - 1]}." for i in range(15)]
    paragraph = " ".join(sentences)
    pieces = split_text(paragraph, max_tokens=30)
    assert len(pieces) > 1
    assert all(estimate_tokens(p) <= 30 for p in pieces)
    for sentence in sentences:
        assert any(sentence in piece for piece in pieces)
    assert " ".join(pieces) == paragraph


def test_a_sentence_longer_than_the_budget_splits_between_words() -> None:
    sentence = " ".join(WORDS * 5) + "."
    pieces = split_text(sentence, max_tokens=25)
    assert all(estimate_tokens(p) <= 25 for p in pieces)
    assert " ".join(pieces).split() == sentence.split()


def test_code_block_stays_whole_when_it_fits_and_splits_by_lines_when_not() -> None:
    code = "```bash\n# comment one\n\necho one\n\n# comment two\necho two\n```"
    text = f"Intro.\n\n{code}\n\nOutro."
    pieces = split_text(text, max_tokens=estimate_tokens(code) + 1)
    assert code in pieces  # the blank lines inside the fence did not split it
    long_code = "```bash\n" + "\n".join(f"echo line {i}  # {WORDS[i % 20]}" for i in range(60))
    long_code += "\n```"
    pieces = split_text(long_code, max_tokens=40)
    assert len(pieces) > 1
    assert all(estimate_tokens(p) <= 40 for p in pieces)
    # Every piece is a well-formed block in the same language; together they hold every line.
    assert all(p.startswith("```bash\n") and p.endswith("\n```") for p in pieces)
    inner = [line for p in pieces for line in p.split("\n")[1:-1]]
    assert inner == long_code.split("\n")[1:-1]


def test_small_neighbours_are_merged_back() -> None:
    text = "One.\n\nTwo.\n\n" + " ".join(WORDS * 4) + "."
    pieces = split_text(text, max_tokens=40)
    assert pieces[0].startswith("One.\n\nTwo.")


def test_token_estimate_is_deterministic_and_counts_words_and_marks() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("one two three") == 3
    assert estimate_tokens("a, b.") == 4
    assert estimate_tokens("internationalisation") == 4  # 20 characters, one per six
    assert estimate_tokens("x " * 100) == 100


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_page(page_of(Section((), None, "x")), max_tokens=0)


def _random_markdown(rng: random.Random) -> tuple[str, list[str]]:
    """A random page and the sentences it contains (prose and code lines)."""
    lines: list[str] = []
    expected: list[str] = []
    for _ in range(rng.randint(1, 8)):
        if rng.random() < 0.5:
            lines += [f"{'#' * rng.randint(2, 4)} {rng.choice(WORDS).title()}", ""]
        for _ in range(rng.randint(0, 4)):
            if rng.random() < 0.2:
                code = [f"# {rng.choice(WORDS)} comment", f"run {rng.choice(WORDS)}"]
                lines += ["```bash", *code, "```", ""]
                expected += code
                continue
            paragraph = []
            for _ in range(rng.randint(1, 9)):
                words = [rng.choice(WORDS) for _ in range(rng.randint(1, 30))]
                sentence = " ".join(words).capitalize() + rng.choice(".!?")
                paragraph.append(sentence)
            expected += paragraph
            lines += [" ".join(paragraph), ""]
    return "\n".join(lines), expected


@pytest.mark.parametrize("seed", range(25))
def test_property_every_sentence_lands_in_some_chunk(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    docs = tmp_path / "docs"
    docs.mkdir()
    expected: dict[str, list[str]] = {}
    for n in range(3):
        text, sentences = _random_markdown(rng)
        (docs / f"p{n}.md").write_text(text, encoding="utf-8")
        expected[f"p{n}.md"] = sentences
    budget = rng.choice([8, 20, 50, 300])
    book = chunk_book(docs, SiteConfig(site_url="https://x.example"), max_tokens=budget)
    assert book.problems == []
    for file, sentences in expected.items():
        texts = [norm(c.text) for c in book.chunks if c.file == file]
        for sentence in sentences:
            # A sentence longer than the budget is split between words, never dropped.
            if estimate_tokens(sentence) <= budget:
                assert any(norm(sentence) in t for t in texts), (budget, sentence)
            else:
                joined = " ".join(texts)
                assert all(w in joined for w in re.findall(r"\w+", sentence))
    for chunk in book.chunks:
        # Over budget only when it cannot be cut: one word, or one line of code in its fences.
        one_code_line = chunk.text.startswith("```") and chunk.text.count("\n") == 2
        assert (
            estimate_tokens(chunk.text) <= budget or len(chunk.text.split()) == 1 or one_code_line
        )


def test_chunk_book_counts_pages_and_keeps_problems(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nText a.\n\n## Sub\n\nMore.\n", encoding="utf-8")
    (docs / "b.md").write_bytes(b"\xff\xfe not utf-8")
    book = chunk_book(docs, SiteConfig(site_url="https://x.example"))
    assert book.pages == 1
    assert [(c.heading, c.url) for c in book.chunks] == [
        ("", "https://x.example/docs/a"),
        ("Sub", "https://x.example/docs/a#sub"),
    ]
    assert [f for f, _ in book.problems] == ["b.md"]
