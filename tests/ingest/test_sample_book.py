"""The bundled sample book: shaped like a real Docusaurus book, fully chunked, with questions."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from bookchat.ingest.chunker import chunk_book, estimate_tokens
from bookchat.ingest.docusaurus import read_docs
from bookchat.ingest.siteconfig import read_site_config
from bookchat.sample_book import sample_book_path

DOCS = sample_book_path()
SITE = read_site_config(DOCS)


def raw_pages() -> dict[str, str]:
    return {
        p.relative_to(DOCS).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(DOCS.rglob("*"))
        if p.suffix in (".md", ".mdx")
    }


def routed(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("/"))


def norm(text: str) -> str:
    return " ".join(text.split())


def test_sample_book_path_is_a_docs_folder_with_its_config() -> None:
    assert DOCS.is_dir()
    assert DOCS.name == "docs"
    assert (DOCS.parent / "docusaurus.config.js").is_file()
    assert SITE.site_url == "http://localhost:3000"
    assert (SITE.base_url, SITE.route_base_path) == ("/", "docs")


def test_sample_book_has_the_features_a_real_book_has() -> None:
    pages, problems = read_docs(DOCS, SITE)
    raw = raw_pages()
    files = {p.file for p in pages}
    assert problems == []
    assert len(pages) >= 8
    assert any(f.count("/") >= 1 for f in files), "nested folders"
    assert any(re.match(r"\d+-", part) for f in files for part in f.split("/")), "number prefixes"
    assert any(re.search(r"^slug: ", text, re.M) for text in raw.values()), "a slug"
    mdx = [t for f, t in raw.items() if f.endswith(".mdx") and f in files]
    assert any(re.search(r"^import ", t, re.M) and re.search(r"^<[A-Z]", t, re.M) for t in mdx)
    assert any(re.search(r"^:::\w+", t, re.M) for t in raw.values()), "an admonition"
    assert any(re.search(r"```bash\n# ", t) for t in raw.values()), "code with # comments"
    assert any("{#" in t for t in raw.values()), "a custom heading id"
    partials = [f for f in raw if not routed(f)]
    drafts = [f for f, t in raw.items() if re.search(r"^draft: true$", t, re.M)]
    assert partials
    assert drafts
    assert files.isdisjoint(partials)
    assert files.isdisjoint(drafts)
    assert len(files) == len(raw) - len(partials) - len(drafts)


def test_sample_book_urls_and_anchors() -> None:
    book = chunk_book(DOCS, SITE)
    urls = {c.url for c in book.chunks}
    assert "http://localhost:3000/docs/" in urls  # intro.md with `slug: /`
    assert "http://localhost:3000/docs/guides/configuration#cors" in urls
    assert "http://localhost:3000/docs/getting-started/installation#start-the-server" in urls
    assert "http://localhost:3000/docs/deployment/" in urls  # index.md maps to its folder
    assert all(u.startswith("http://localhost:3000/docs/") for u in urls)
    # Shell comments in code blocks did not become headings.
    assert not any("virtual environment" in c.heading for c in book.chunks)
    assert any("# create and activate a virtual environment" in c.text for c in book.chunks)


def _expected_text(raw: str) -> tuple[list[str], list[str]]:
    """Sentences of prose and lines of code a page holds, found without the real parser."""
    body = re.sub(r"\A---\n.*?\n---\n", "", raw, flags=re.S)
    sentences: list[str] = []
    code: list[str] = []
    paragraph: list[str] = []
    fence: str | None = None
    in_esm = False

    def flush() -> None:
        text = " ".join(paragraph)
        paragraph.clear()
        parts = re.split(r"(?<=[.!?][\"')\]])\s+|(?<=[.!?])\s+", text)
        sentences.extend(p for p in (norm(p) for p in parts) if p)

    for line in body.split("\n"):
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence):
                fence = None
            elif stripped:
                code.append(stripped)
            continue
        if stripped.startswith(("```", "~~~")):
            flush()
            fence = stripped[:3]
            continue
        if in_esm or re.match(r"(import|export) ", line):
            in_esm = bool(stripped)
            continue
        if not stripped or stripped.startswith(("#", ":::")):
            flush()
            continue
        prose = re.sub(r"<[^>]*>|\{/\*.*?\*/\}", "", stripped).strip()
        if prose:
            paragraph.append(prose)
    flush()
    return sentences, code


@pytest.mark.parametrize("budget", [300, 60, 25])
def test_every_sentence_of_the_sample_book_lands_in_some_chunk(budget: int) -> None:
    book = chunk_book(DOCS, SITE, max_tokens=budget)
    pages = {c.file for c in book.chunks}
    checked = 0
    for file, raw in raw_pages().items():
        if file not in pages:
            continue
        texts = [norm(c.text) for c in book.chunks if c.file == file]
        sentences, code = _expected_text(raw)
        joined = " ".join(texts)
        for sentence in sentences:
            if estimate_tokens(sentence) <= budget:
                assert any(sentence in t for t in texts), (file, budget, sentence)
            else:
                # Longer than the budget: split between words, every word still there.
                assert norm(sentence) in _unsplit(joined, sentence), (file, budget, sentence)
        for line in code:
            assert any(norm(line) in t for t in texts), (file, budget, line)
        checked += len(sentences)
    assert checked > 200


def _unsplit(joined: str, sentence: str) -> str:
    """`joined` with the first word-split copy of `sentence` stitched back into one run."""
    words = sentence.split()
    pattern = r"\s+".join(re.escape(w) for w in words)
    match = re.search(pattern, joined)
    return norm(match.group()) if match else ""


QUESTIONS = DOCS.parent / "questions.tsv"


def _questions() -> list[dict[str, str]]:
    with QUESTIONS.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_questions_file_is_well_formed() -> None:
    header = QUESTIONS.read_text(encoding="utf-8").split("\n", 1)[0]
    assert header == "question\tfile"
    rows = _questions()
    assert len(rows) >= 35
    for row in rows:
        assert set(row) == {"question", "file"}, row
        assert row["question"].strip(), row
        assert row["file"].strip(), row
        assert row["question"].endswith("?"), row
    questions = [r["question"].lower() for r in rows]
    assert len(set(questions)) == len(questions)


def test_every_question_points_at_a_routed_page_and_is_not_a_heading() -> None:
    pages, _ = read_docs(DOCS, SITE)
    files = {p.file for p in pages}
    headings = {h.lower() for p in pages for s in p.sections for h in s.headings}
    headings |= {p.title.lower() for p in pages}
    rows = _questions()
    for row in rows:
        assert row["file"] in files, row
        assert (DOCS / row["file"]).is_file()
        assert row["question"].rstrip("?").lower() not in headings, row
    assert len({r["file"] for r in rows}) == len(files), "every page is asked about"


def test_sample_book_ships_inside_the_package() -> None:
    package_dir = Path(__file__).resolve().parents[2] / "backend" / "bookchat"
    assert DOCS.is_relative_to(package_dir)
