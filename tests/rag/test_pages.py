"""Page outlines and the page-aware ranking of fused passages (rag/pages.py, rag/retrieve.py)."""

from __future__ import annotations

from bookchat.providers.static_embedder import StaticEmbedder
from bookchat.rag.pages import PageOutlines, outline_text
from bookchat.rag.retrieve import rank_by_page
from bookchat.stores.vectors import Hit

CHUNKS = [
    ((None, None, "components/keyboard-avoiding-view.md"), "KeyboardAvoidingView", "Example"),
    ((None, None, "components/keyboard-avoiding-view.md"), "KeyboardAvoidingView", "Props"),
    ((None, None, "guides/text-input.md"), "Handling Text Input", ""),
    ((None, None, "guides/networking.md"), "Networking", "Using Fetch"),
]


def test_an_outline_is_the_title_the_headings_and_the_path_words() -> None:
    text = outline_text("usage/WritingCustomMiddleware.md", "Middleware", ["Examples", "Logger"])
    lines = ["Middleware", "Examples", "Logger", "usage WritingCustomMiddleware"]
    assert text.splitlines() == lines


def test_pages_rank_by_their_title_and_headings() -> None:
    outlines = PageOutlines.from_chunks(CHUNKS)
    assert len(outlines) == 3  # one outline per page, however many chunks it has
    ranks = outlines.lexical_ranks("How do I keep the keyboard from covering the screen?")
    assert ranks == {(None, None, "components/keyboard-avoiding-view.md"): 0}
    assert outlines.lexical_ranks("bread") == {}


async def test_with_a_local_embedder_pages_also_rank_by_meaning() -> None:
    outlines = PageOutlines.from_chunks(CHUNKS)
    embedder = StaticEmbedder.load()
    assert outlines.dense_ranks(await embedder.embed_query("x")) == {}  # not embedded yet
    await outlines.embed(embedder)
    ranks = outlines.dense_ranks(await embedder.embed_query("sending HTTP requests to a server"))
    assert min(ranks, key=ranks.__getitem__) == (None, None, "guides/networking.md")


def _hit(file: str, text: str) -> Hit:
    return Hit(payload={"file": file, "text": text})


def test_every_page_shows_its_best_passage_before_any_second_passage() -> None:
    hits = [_hit("a.md", "a1"), _hit("a.md", "a2"), _hit("a.md", "a3"), _hit("b.md", "b1")]
    ranked = rank_by_page(hits, None, "question", None)
    assert [h.payload["text"] for h in ranked] == ["a1", "b1", "a2", "a3"]


def test_a_page_whose_outline_matches_the_question_moves_up() -> None:
    outlines = PageOutlines.from_chunks(CHUNKS)
    hits = [
        _hit("guides/networking.md", "fetch"),
        _hit("guides/text-input.md", "typing"),
        _hit("components/keyboard-avoiding-view.md", "behavior prop"),
    ]
    ranked = rank_by_page(hits, outlines, "keep the keyboard from covering things", None)
    # Third by the passages alone; its title lifts it above the text-input page.
    assert [h.payload["text"] for h in ranked] == ["fetch", "behavior prop", "typing"]
    # Without outlines the fused order stands.
    assert rank_by_page(hits, None, "keep the keyboard away", None) == hits


def test_versions_of_one_file_are_different_pages() -> None:
    hits = [
        Hit(payload={"file": "intro.md", "version": "2.0", "text": "v2"}),
        Hit(payload={"file": "intro.md", "version": "2.0", "text": "v2 again"}),
        Hit(payload={"file": "intro.md", "version": "1.0", "text": "v1"}),
    ]
    ranked = rank_by_page(hits, None, "intro", None)
    assert [h.payload["text"] for h in ranked] == ["v2", "v1", "v2 again"]
