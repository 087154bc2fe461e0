"""The offline answerer: an extractive answer built from the retrieved passages, with citations.

It needs no network and no model: it scores each sentence of the passages by the question's
terms (weighted by how rare they are among those sentences), keeps the best few, and cites
each with the number of its passage, so `[n]` matches the order of the reply's sources. A
question asking how to do something also gets the book's matching code block, fenced and
cited (see extractive_code).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bookchat.rag.answerer import AnswerRequest
from bookchat.rag.citations import unmarked
from bookchat.rag.extractive_code import CodeBlock, asks_how_to, pick_blocks, shown
from bookchat.rag.extractive_text import default_lines, placed_sentences, sentences, terms
from bookchat.rag.prompt import NO_ANSWER, standalone_query
from bookchat.rag.types import Passage
from bookchat.rag.values import Requirement, asked_values, credited, states_bound
from bookchat.text import first_word, matched, stem

MAX_SENTENCES = 4
MAX_PER_PASSAGE = 2
MAX_ANSWER_CHARS = 900
MAX_SENTENCE_CHARS = 400
MAX_SENTENCES_WITH_CODE = 2
# A sentence scoring under this share of the best one adds more noise than answer.
WEAKEST_SHARE = 0.6
SELECTION_QUOTE_CHARS = 320
# A sentence must carry this share of the question's terms (see _best_sentences; its page
# title and heading count for half) to be used; below it the book is taken not to cover it.
MIN_COVERAGE = 0.34
# A reader's paraphrase shares fewer words with the book: a sentence carrying a quarter of the
# question's terms is used too when its passage is close to the question as a whole (its
# retrieval similarity). Off-topic questions on four books stayed under this similarity.
RELAXED_COVERAGE = 0.25
RELAXED_SIMILARITY = 0.4
# And the other way: a passage all but unrelated to the question as a whole (retrieval
# similarity under FAR_SIMILARITY) shares words with it, not its subject, unless a sentence
# carries half of them: "How do I take payments for a subscription with Stripe?" is not
# answered by code that "gets completely stripped out" (similarity 0.00). In-scope questions
# on six books quoted no passage this far (the least similar: 0.07); off-topic ones did
# (backend/docs/benchmarks.md).
FAR_COVERAGE = 0.5
FAR_SIMILARITY = 0.05

_TOKEN = re.compile(r"\S+\s*")
# A question about the book as a whole ("What does this book cover?", "What is this project
# about?") has no other words than these: its answer is how the book opens, not a sentence
# that happens to say "cover".
OVERVIEW_WORDS = frozenset(
    """about app aim cover contents content documentation docs framework goal guide intro
    introduction library manual nutshell overview package product project purpose scope site
    software summary summarize summarise tool topic website""".split()  # noqa: SIM905
)
_OVERVIEW_STEMS = frozenset(stem(w) for w in OVERVIEW_WORDS)
# Pages that open a book, by file name: `intro.md`, `docs/index.mdx`, `README.md`.
_OPENING_PAGES = frozenset({"intro", "index", "introduction", "readme", "overview", "welcome"})
# "How many times …?", "How much memory …?" ask for a quantity too, whatever else they name.
_QUANTITY_STEMS = frozenset(stem(w) for w in ("many", "much"))
# "That gives …", "This is why …": a pronoun standing for the sentence before ("This guide
# is …" names its own subject). A following verb ends in -s or is an auxiliary.
_BACK_REFERENCE = re.compile(
    r"(?:This|That|These|Those|It|They|Both|Each(?: one| of them| of these| of those)?)\s+"
    r"(?:\w+s|is|was|are|were|can|will|would|also|way|has|have)\b"
)


@dataclass(frozen=True, slots=True)
class _Candidate:
    passage: int  # 1-based: the citation number
    position: int
    section: int  # which heading-delimited part of the passage the sentence is in
    text: str
    score: float
    coverage: float


class OfflineAnswerer:
    """Composes an extractive, cited answer from the retrieved passages; no network, no model."""

    def describe(self) -> dict[str, str]:
        """This answerer's identity for metadata and /api/health."""
        return {"backend": "offline", "model": "extractive"}

    async def check(self, timeout: float) -> dict[str, Any]:
        """Always available: it runs in-process."""
        return {"status": "ok", **self.describe()}

    async def aclose(self) -> None:
        """Nothing to release."""

    async def stream(self, request: AnswerRequest) -> AsyncIterator[str]:
        """The composed answer, word by word."""
        for piece in _TOKEN.findall(compose_answer(request)):
            yield piece
            # Lets the event loop send each piece; not a delay.
            await asyncio.sleep(0)


def compose_answer(request: AnswerRequest) -> str:
    """The whole extractive answer for a request."""
    question = standalone_query(request.question, request.history)
    question_terms = terms(question)
    selection = (request.selection or "").strip() if request.mode == "selection" else ""
    parts: list[str] = []
    if selection:
        parts.append(_selection_quote(selection, question_terms))
        if not question_terms:
            # "Explain this": what the selection is about is what to look up.
            question_terms = terms(selection)
    missing = [] if selection else _missing_names(question, question_terms, request.passages)
    overview = not selection and _asks_for_overview(question_terms)
    if overview:
        chosen = _opening(request.passages)
    else:
        chosen = [] if missing else _best_sentences(request.passages, question, question_terms)
    code: list[tuple[int, CodeBlock]] = []
    if not (selection or missing or overview) and asks_how_to(question):
        sections: dict[tuple[int, int], set[str]] = {}
        for c in chosen:
            framing = sections.setdefault((c.passage, c.section), set())
            framing |= matched(question_terms, set(terms(c.text)))
        code = pick_blocks(
            request.passages, question_terms, sections=sections, min_coverage=MIN_COVERAGE
        )
    if code and len(chosen) > MAX_SENTENCES_WITH_CODE:
        # The code is the answer to a how-to question; the prose only frames it.
        kept = {
            (c.passage, c.position)
            for c in sorted(chosen, key=lambda c: -c.score)[:MAX_SENTENCES_WITH_CODE]
        }
        # A kept sentence pointing back keeps the one it points to.
        kept |= {
            (c.passage, c.position - 1)
            for c in chosen
            if (c.passage, c.position) in kept and _BACK_REFERENCE.match(c.text)
        }
        chosen = [c for c in chosen if (c.passage, c.position) in kept]
    if chosen:
        parts.append(_cited(chosen))
    elif not (selection or code):
        parts.append(_not_covered(missing or list(question_terms.values())))
    # Code goes after the prose, each block a paragraph of its own, fenced as in the book.
    blocks = [shown(number, block, request.passages[number - 1]) for number, block in code]
    return "\n\n".join(part for part in [" ".join(parts), *blocks] if part)


def _asks_for_overview(question_terms: dict[str, str]) -> bool:
    """Whether the question asks what the book is about (no words beyond OVERVIEW_WORDS)."""
    return all(stem(word.lower()) in _OVERVIEW_STEMS for word in question_terms.values())


def _opening(passages: Sequence[Passage]) -> list[_Candidate]:
    """The first sentences of the most introductory passage: a page's top (no heading) on
    the shallowest, intro-like page, the best ranked among equals."""

    def place(item: tuple[int, Passage]) -> tuple[bool, int, bool, int]:
        number, passage = item
        name = passage.file.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
        stripped = re.sub(r"^\d+[-_.]", "", name)
        return (
            bool(passage.heading),
            passage.file.count("/"),
            stripped not in _OPENING_PAGES,
            number,
        )

    for number, passage in sorted(enumerate(passages, start=1), key=place):
        found = [s for s in sentences(passage.text) if len(s.split()) >= 4][:MAX_PER_PASSAGE]
        if found:
            return [
                _Candidate(number, position, 0, text, 1.0, 1.0)
                for position, text in enumerate(found)
            ]
    return []


def _missing_names(
    question: str, question_terms: dict[str, str], passages: Sequence[Passage]
) -> list[str]:
    """Names in the question (Kubernetes, GPU, ROS2) that no passage mentions at all.

    Sentences about configuring something else are no answer to "How do I configure
    Kubernetes?": a named thing the question is about has to appear in the book.
    """
    first = first_word(question)
    present: set[str] = set()
    for passage in passages:
        present |= set(terms(f"{passage.title} {passage.heading} {passage.text}"))
    missing = []
    for key, word in question_terms.items():
        is_name = (
            (word[0].isupper() and word != first)
            or (word.isupper() and len(word) > 1)
            or any(c.isdigit() for c in word)
        )
        if is_name and not matched([key], present):
            missing.append(word)
    return missing


def _selection_quote(selection: str, question_terms: dict[str, str]) -> str:
    # The selection's own footnote markers are not this answer's citations.
    selection = unmarked(selection)
    options = sentences(selection) or [" ".join(selection.split())]
    wanted = set(question_terms)
    if wanted:
        ranked = sorted(
            range(len(options)), key=lambda i: (-len(wanted & set(terms(options[i]))), i)
        )
        picked = sorted(ranked[:2])
    else:
        picked = [0, 1][: len(options)]
    quote = " ".join(options[i] for i in picked)
    if len(quote) > SELECTION_QUOTE_CHARS:
        quote = quote[:SELECTION_QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
    return f"The selected text says: “{quote}”"


def _best_sentences(
    passages: Sequence[Passage], question: str, question_terms: dict[str, str]
) -> list[_Candidate]:
    if not question_terms:
        return []
    # A field line ("Default: `false`") names what it is about by the passage's own heading.
    subjects = [p.heading.rsplit(" > ", 1)[-1] for p in passages]
    placed = [
        placed_sentences(p.text, subject) for p, subject in zip(passages, subjects, strict=True)
    ]
    split = [[sentence for _, sentence in group] for group in placed]
    values = asked_values(question_terms)
    requirement = Requirement.of(question, question_terms)
    # Which question terms each sentence carries, computed once; a sentence stating a value
    # also carries the words asking for one (rag/values.py).
    found_in = [
        [credited(values, requirement, matched(question_terms, set(terms(s))), s) for s in group]
        for group in split
    ]
    total = sum(len(group) for group in split)
    frequency = {t: sum(t in own for group in found_in for own in group) for t in question_terms}
    weights = {t: 1.0 + math.log((total + 1) / (frequency[t] + 1)) for t in question_terms}
    full = sum(weights.values())
    candidates: list[_Candidate] = []
    for number, (passage, group) in enumerate(zip(passages, split, strict=True), start=1):
        context = matched(question_terms, set(terms(f"{passage.title} {passage.heading}")))
        for position, (sentence, own) in enumerate(zip(group, found_in[number - 1], strict=True)):
            if not own:
                continue
            nearby = context - own
            found = sum(weights[t] for t in own) + 0.5 * sum(weights[t] for t in nearby)
            # Half by weight (rare terms matter more), half by count: the passages were
            # retrieved for the question's terms, so a common one is not worthless.
            count = len(own) + 0.5 * len(nearby)
            coverage = 0.5 * found / full + 0.5 * count / len(weights)
            close = passage.score >= RELAXED_SIMILARITY and coverage >= RELAXED_COVERAGE
            if coverage < MIN_COVERAGE and not close:
                continue
            if passage.score < FAR_SIMILARITY and coverage < FAR_COVERAGE:
                continue
            # "Which Windows version does my printer need?" is not answered by "It needs
            # Python 3.11 or newer", which carries "need" and, stating a number, "version":
            # a sentence answering a requirement names something the requirement is about.
            if requirement is not None and not own & requirement.subject:
                continue
            # Earlier passages ranked higher in retrieval; a small nudge breaks ties toward them.
            score = found - 0.01 * number - 0.001 * position
            section = placed[number - 1][position][0]
            candidates.append(_Candidate(number, position, section, sentence, score, coverage))

    chosen: list[_Candidate] = []
    per_passage: dict[int, int] = {}
    length = 0
    top = max((c.score for c in candidates), default=0.0)
    ordered = sorted(candidates, key=lambda c: -c.score)
    # The first passage's best sentence goes in first, however it scores against the others:
    # retrieval ranked that passage on the whole question (words, meaning, its page), while
    # these scores count words only, which a passage further down may repeat about another
    # subject. Measured on five real books and the sample book: backend/docs/answers.md.
    lead = next((c for c in ordered if c.passage == 1), None)
    # A question asking for a value ("What Node version is required?") is answered by the
    # sentence stating it ("… make sure it is Node 22.11.0 or newer."), wherever it ranks;
    # beside it, sentences stating no version or bound ("the bare minimum", "Node 3" in a
    # diagram) are words that happen to match.
    stating = [c for c in ordered if requirement and requirement.stated_by(c.text)]
    if stating:
        lead = stating[0]
        ordered = [c for c in ordered if states_bound(c.text)]
    if lead is not None:
        ordered.remove(lead)
        ordered.insert(0, lead)
    for candidate in ordered:
        if len(chosen) == MAX_SENTENCES:
            break
        if candidate.score < WEAKEST_SHARE * top and candidate is not lead:
            continue
        if (candidate.passage, candidate.position) in {(c.passage, c.position) for c in chosen}:
            continue  # already in, as the sentence a later one points back to
        unit = [candidate]
        # "That gives a fresh installation …" needs the sentence "that" points back to.
        if _BACK_REFERENCE.match(candidate.text) and candidate.position > 0:
            section, before = placed[candidate.passage - 1][candidate.position - 1]
            taken = any(
                c.passage == candidate.passage and c.position == candidate.position - 1
                for c in chosen
            )
            if section == candidate.section and not taken:
                unit.insert(0, replace(candidate, position=candidate.position - 1, text=before))
        if per_passage.get(candidate.passage, 0) + len(unit) > MAX_PER_PASSAGE:
            continue
        size = sum(min(len(c.text), MAX_SENTENCE_CHARS) for c in unit)
        if chosen and length + size > MAX_ANSWER_CHARS:
            continue
        chosen.extend(unit)
        per_passage[candidate.passage] = per_passage.get(candidate.passage, 0) + len(unit)
        length += size
    asks_value = bool(values) or any(
        stem(word.lower()) in _QUANTITY_STEMS for word in question_terms.values()
    )
    if asks_value:
        chosen += _defaults_beside(chosen, passages, subjects, placed)
    # In the book's order: by passage, then by place in the passage.
    return sorted(chosen, key=lambda c: (c.passage, c.position))


def _defaults_beside(
    chosen: list[_Candidate],
    passages: Sequence[Passage],
    subjects: list[str],
    placed: list[tuple[tuple[int, str], ...]],
) -> list[_Candidate]:
    """A reference page's "Default: **2**" line under a quoted sentence, for a question asking
    for a value: the option's description ("How many times to retry …") carries the question's
    words, its default line the answer."""
    taken = {(c.passage, c.position) for c in chosen}
    added: list[_Candidate] = []
    for c in chosen:
        for position in sorted(
            default_lines(passages[c.passage - 1].text, subjects[c.passage - 1])
        ):
            section, text = placed[c.passage - 1][position]
            if section == c.section and (c.passage, position) not in taken:
                taken.add((c.passage, position))
                added.append(replace(c, position=position, text=text))
    return added


def _cited(chosen: list[_Candidate]) -> str:
    pieces: list[str] = []
    for index, candidate in enumerate(chosen):
        text = candidate.text
        if len(text) > MAX_SENTENCE_CHARS:
            text = text[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " …"
        last_of_group = index == len(chosen) - 1 or chosen[index + 1].passage != candidate.passage
        if last_of_group:
            text = _with_citation(text, candidate.passage)
        pieces.append(text)
    return " ".join(pieces)


def _with_citation(sentence: str, number: int) -> str:
    # "… is middleware [1]." reads better than "… is middleware. [1]"
    if sentence[-1] in ".!?":
        return f"{sentence[:-1]} [{number}]{sentence[-1]}"
    return f"{sentence} [{number}]."


def _not_covered(words: list[str]) -> str:
    words = words[:4]
    if not words:
        return NO_ANSWER
    quoted = [f"“{w}”" for w in words]
    listing = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"{NO_ANSWER} The passages found do not address {listing}."
