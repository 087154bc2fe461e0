"""Page rankings and the page-aware ranking of fused passages (rag/pages.py, rag/retrieve.py)."""

from __future__ import annotations

import pytest

from bookchat.providers.static_embedder import StaticEmbedder
from bookchat.rag.pages import PageChunk, PageOutlines, outline_text
from bookchat.rag.retrieve import rank_by_page
from bookchat.stores.vectors import Hit

KEYBOARD = (None, None, "components/keyboard-avoiding-view.md")
TEXT_INPUT = (None, None, "guides/text-input.md")
NETWORKING = (None, None, "guides/networking.md")
CHUNKS = [
    PageChunk(KEYBOARD, "KeyboardAvoidingView", "Example"),
    PageChunk(KEYBOARD, "KeyboardAvoidingView", "Props"),
    PageChunk(TEXT_INPUT, "Handling Text Input", ""),
    PageChunk(NETWORKING, "Networking", "Using Fetch"),
]


def test_an_outline_is_the_title_the_headings_and_the_path_words() -> None:
    text = outline_text("usage/WritingCustomMiddleware.md", "Middleware", ["Examples", "Logger"])
    lines = ["Middleware", "Examples", "Logger", "usage WritingCustomMiddleware"]
    assert text.splitlines() == lines


def test_pages_rank_by_their_title_and_headings() -> None:
    outlines = PageOutlines.from_chunks(CHUNKS)
    assert len(outlines) == 3  # one outline per page, however many chunks it has
    ranks = outlines.lexical_ranks("How do I keep the keyboard from covering the screen?")
    assert ranks == {KEYBOARD: 0}
    assert outlines.lexical_ranks("bread") == {}
    # Chunks without text or vectors: those rankings have no opinion.
    assert outlines.text_ranks("keyboard") == {}
    assert outlines.centroid_ranks([1.0, 0.0]) == {}


def test_pages_rank_by_their_whole_text() -> None:
    chunks = [
        PageChunk(KEYBOARD, "KeyboardAvoidingView", "Props", "The behavior prop: padding."),
        PageChunk(KEYBOARD, "KeyboardAvoidingView", "Example", "Wrap the form; padding again."),
        PageChunk(TEXT_INPUT, "Handling Text Input", "", "TextInput takes padding once."),
        PageChunk(NETWORKING, "Networking", "", "Fetch data from a server."),
    ]
    outlines = PageOutlines.from_chunks(chunks)
    # Neither outline says "padding"; the page that says it in two passages comes first.
    assert outlines.lexical_ranks("padding") == {}
    assert outlines.text_ranks("How much padding?") == {KEYBOARD: 0, TEXT_INPUT: 1}


def test_pages_rank_by_the_mean_of_their_passage_vectors() -> None:
    chunks = [
        PageChunk(KEYBOARD, "K", "a", "x", [1.0, 0.0]),
        PageChunk(KEYBOARD, "K", "b", "x", [0.0, 1.0]),
        PageChunk(TEXT_INPUT, "T", "", "x", [0.8, 0.6]),
    ]
    outlines = PageOutlines.from_chunks(chunks)
    # The keyboard page's mean points at 45 degrees; a query there prefers it to the text page.
    assert outlines.centroid_ranks([1.0, 1.0]) == {KEYBOARD: 0, TEXT_INPUT: 1}
    assert outlines.centroid_ranks([1.0, 0.0]) == {TEXT_INPUT: 0, KEYBOARD: 1}
    # A query from another embedder (other dimensions) is no evidence either way.
    assert outlines.centroid_ranks([1.0, 0.0, 0.0]) == {}
    # One page without vectors (an index half re-embedded): no centroid ranking at all.
    partial = PageOutlines.from_chunks([*chunks, PageChunk(NETWORKING, "N", "", "y")])
    assert partial.centroid_ranks([1.0, 1.0]) == {}


async def test_with_a_local_embedder_pages_also_rank_by_meaning() -> None:
    outlines = PageOutlines.from_chunks(CHUNKS)
    embedder = StaticEmbedder.load()
    assert outlines.dense_ranks(await embedder.embed_query("x")) == {}  # not embedded yet
    await outlines.embed(embedder)
    ranks = outlines.dense_ranks(await embedder.embed_query("sending HTTP requests to a server"))
    assert min(ranks, key=ranks.__getitem__) == NETWORKING


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


@pytest.mark.parametrize("agree", [True, False])
def test_a_page_that_wins_on_text_and_vector_overtakes_one_better_passage(agree: bool) -> None:
    avoiding = (None, None, "avoiding.md")  # neither outline names the keyboard
    chunks = [
        PageChunk(NETWORKING, "Networking", "", "Fetch data; the keyboard is unrelated.", [1, 0]),
        PageChunk(avoiding, "Avoiding", "", "The keyboard covers it; move the keyboard.", [0, 1]),
    ]
    outlines = PageOutlines.from_chunks(chunks)
    hits = [_hit("guides/networking.md", "fetch"), _hit("avoiding.md", "behavior")]
    # The keyboard page says the word more and, when the vector agrees, means it: it wins two
    # page rankings to the passage order's one. With the vector against it, the order stands.
    ranked = rank_by_page(hits, outlines, "keyboard keyboard", [0.0, 1.0] if agree else [1.0, 0])
    expected = ["behavior", "fetch"] if agree else ["fetch", "behavior"]
    assert [h.payload["text"] for h in ranked] == expected


def test_versions_of_one_file_are_different_pages() -> None:
    hits = [
        Hit(payload={"file": "intro.md", "version": "2.0", "text": "v2"}),
        Hit(payload={"file": "intro.md", "version": "2.0", "text": "v2 again"}),
        Hit(payload={"file": "intro.md", "version": "1.0", "text": "v1"}),
    ]
    ranked = rank_by_page(hits, None, "intro", None)
    assert [h.payload["text"] for h in ranked] == ["v2", "v1", "v2 again"]


def test_ranks_break_ties_by_page_order_and_read_like_a_mapping() -> None:
    chunks = [PageChunk((None, None, f"p{i}.md"), "Same", "", "", [1.0, 0.0]) for i in (2, 1, 3)]
    outlines = PageOutlines.from_chunks(chunks)
    ranks = outlines.centroid_ranks([1.0, 0.0])
    # Equal cosines: pages in their sorted order, as the outlines are.
    assert list(ranks.items()) == [((None, None, f"p{i}.md"), i - 1) for i in (1, 2, 3)]
    assert (None, None, "elsewhere.md") not in ranks
    assert len(ranks) == 3


def test_page_texts_counted_from_the_stored_weights_rank_as_their_texts() -> None:
    from bookchat.ingest.indexer import embedding_text
    from bookchat.ingest.model import Chunk
    from bookchat.providers.local_sparse import Bm25Encoder

    encoder = Bm25Encoder()
    passages = [
        (KEYBOARD, "KeyboardAvoidingView", "Props", "The behavior prop: padding or height."),
        (KEYBOARD, "KeyboardAvoidingView", "Example", "Wrap the form; padding again, keyboard up."),
        (TEXT_INPUT, "Handling Text Input", "", "TextInput takes padding once; the keyboard too."),
        (TEXT_INPUT, "Handling Text Input", "Keyboard", "onChangeText fires on every keystroke."),
        (NETWORKING, "Networking", "Using Fetch", "Fetch data from a server " * 30),
    ]

    def weights(key: tuple, title: str, heading: str, text: str) -> tuple[list[int], list[float]]:
        # What ingestion stores: the weights of title, heading and text together.
        chunk = Chunk(
            file=key[2],
            title=title,
            heading=heading,
            url="",
            text=text,
            content_hash="",
            position=0,
        )
        vector = encoder.encode_document(embedding_text(chunk))
        return vector.indices, vector.values

    by_text = PageOutlines.from_chunks([PageChunk(*p) for p in passages])
    stored = [PageChunk(*p[:3], "", None, weights(*p)) for p in passages]
    by_weights = PageOutlines.from_chunks(stored, encoder)
    questions = [
        "How much padding does the keyboard need?",
        "fetch from a server",
        "onChangeText keystroke",
        "Props example keyboard",  # heading words only: the texts' counts leave them out
        "bread",
    ]
    for question in questions:
        assert by_weights.text_ranks(question) == by_text.text_ranks(question), question
        assert by_weights.lexical_ranks(question) == by_text.lexical_ranks(question)
    assert by_text.text_ranks("keyboard padding") == {KEYBOARD: 0, TEXT_INPUT: 1}


# From React Native's set-up-your-environment page and its partials (CC BY 4.0, see
# backend/bench/books/books.tsv).
XCODE_ENV = (
    "The `.xcode.env` file contains an environment variable to export the path to the `node` "
    "executable in the `NODE_BINARY` variable. You should customize this variable with your "
    "own path or your own `node` version manager, if it differs from the default."
)
NODE_JDK = (
    "If you have already installed Node on your system, make sure it is Node 22.11.0 or newer. "
    "If you already have a JDK on your system, we recommend JDK17."
)


def test_for_a_version_question_a_page_shows_its_passage_stating_the_version() -> None:
    hits = [
        _hit("set-up-your-environment.md", XCODE_ENV),
        _hit("render-pipeline.md", "CloneNode(Node 3) gives Node 3'."),
        _hit("set-up-your-environment.md", NODE_JDK),
    ]
    ranked = rank_by_page(hits, None, "What Node version is required?", None)
    assert [h.payload["text"] for h in ranked] == [NODE_JDK, hits[1].payload["text"], XCODE_ENV]
    # Any other question keeps each page's best passage first.
    assert rank_by_page(hits, None, "How do I set the node path for Xcode?", None) == [
        hits[0],
        hits[1],
        hits[2],
    ]
