"""CitationGuard: `[n]` markers naming no source are dropped as the answer streams."""

from __future__ import annotations

import pytest

from bookchat.rag.citations import CitationGuard, cited

ANSWER = (
    "Install it [1]. A forged one [7][2].\n"
    "Inline `x[7]` stays, and so does\n```python\nitems[9] = 1\n```\n"
    "then [9] goes, [x] and [12 stay [3]"
)
EXPECTED = (
    "Install it [1]. A forged one [2].\n"
    "Inline `x[7]` stays, and so does\n```python\nitems[9] = 1\n```\n"
    "then  goes, [x] and [12 stay [3]"
)


def _through(text: str, sources: int, piece: int) -> tuple[str, int]:
    guard = CitationGuard(sources=sources)
    out = "".join(guard.feed(text[i : i + piece]) for i in range(0, len(text), piece))
    return out + guard.flush(), guard.dropped


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1000])
def test_however_the_answer_is_split_the_same_markers_go(piece: int) -> None:
    assert _through(ANSWER, 3, piece) == (EXPECTED, 2)


def test_with_no_sources_every_marker_goes() -> None:
    assert _through("See [1] and [2].", 0, 4) == ("See  and .", 2)


def test_zero_is_never_a_source() -> None:
    assert _through("Zero [0] one [1]", 1, 100) == ("Zero  one [1]", 1)


def test_a_marker_cut_at_the_end_is_kept_as_text() -> None:
    assert _through("It ends [2", 3, 1) == ("It ends [2", 0)


def test_cited_lists_valid_markers_outside_code_once_in_order() -> None:
    assert cited("b [2] a [1] again [2] `c[3]` [9]", 3) == [2, 1]
    assert cited("```\n[1]\n```", 3) == []


@pytest.mark.parametrize("piece", [1, 2, 5, 1000])
def test_a_list_of_citations_becomes_one_marker_per_source(piece: int) -> None:
    # Models often write "[1, 3]"; the page links, and cited() counts, one [n] at a time.
    text = "Both say so [1, 3]. Forged [2,7]. Not lists: [2-9], [1 2], [1,] and `a[1, 3]`."
    out, dropped = _through(text, 3, piece)
    assert out == "Both say so [1][3]. Forged [2]. Not lists: [2-9], [1 2], [1,] and `a[1, 3]`."
    assert dropped == 1
    assert cited(out, 3) == [1, 3, 2]
