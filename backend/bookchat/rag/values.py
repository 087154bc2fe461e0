"""Questions asking for a value ("Which Node version do I need?", "What is the default port?")
and the sentences that state one ("make sure it is Node 22.11.0 or newer"): one rule for the
retrieval (which of a page's passages to show) and for the offline answerer (which sentence to
quote)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bookchat.rag.extractive_text import terms
from bookchat.text import matched, stem

# Words asking for a value: a sentence stating a number or version ("Node 18.x", "8000")
# carries them, whatever its words.
VALUE_WORDS = frozenset(
    {"version", "minimum", "maximum", "number", "port", "default", "limit", "size", "timeout"}
)
# Words asking for a bound ("the minimum version", "which version is required", "supported
# versions"): books state one as "22.11.0 or newer", "at least 3.8", "requires Java 17",
# "Node 18+", so a sentence carries them when it states a bound, not for any number.
# "newest" and "latest" are left out: "upgrade every dependency to its newest version" asks
# how, not which.
BOUND_WORDS = frozenset(
    """minimum maximum least required require requires requirement requirements need needs
    needed supported support supports compatible compatibility""".split()  # noqa: SIM905
)
VALUE_STEMS = frozenset(stem(w) for w in VALUE_WORDS)
BOUND_STEMS = frozenset(stem(w) for w in BOUND_WORDS)
BOUND_PHRASING = "newer later"
# A version is named by a word at most this many words before it: "Node.js (at least v22)".
NAMED_WITHIN = 3
_WORDS = re.compile(r"[^\W_][\w.+-]*")
_REQUIRED_STEMS = frozenset(stem(w) for w in ("version", "minimum", "maximum"))
_STATES_A_VALUE = re.compile(r"\d")
# "Which version …", "What Node version …", "what is the default port": asks for the value
# itself, where "How do I upgrade to a newer version?" does not.
_ASKS_WHICH = re.compile(
    r"\b(?:which|what)\b(?:\W+\w+){0,3}?\W+(?:versions?|port|default|limit|size|timeout)\b",
    re.IGNORECASE,
)
# A version with dots ("22.11.0", "0.69", "18.x"), a "v" version ("v29"), or a number and a
# plus ("Node 18+").
_VERSION = r"(?:\bv?\d+(?:\.(?:\d+|x))+\b|\bv\d+\b|\b\d+\+)"
_STATES_A_BOUND = re.compile(
    rf"{_VERSION}"
    r"|\d[\w.]*\s+(?:or|and)\s+(?:newer|later|higher|above|greater|up|older|lower|below|earlier)"
    r"|\bversion\s+v?\d"
    r"|\b(?:at\s+least|at\s+most|minimum(?:\s+of)?|maximum(?:\s+of)?|up\s+to|no\s+(?:older|"
    r"newer|earlier|later)\s+than|requir(?:es?|ed|ing)|supports?|supported|recommends?|"
    r"recommended)\b[^.;]{0,60}?\d",
    re.IGNORECASE,
)


def asked_values(question_terms: dict[str, str]) -> set[str]:
    """The question's terms that ask for a value ("version", "default", "minimum")."""
    return {key for key, word in question_terms.items() if stem(word.lower()) in VALUE_STEMS}


@dataclass(frozen=True, slots=True)
class Requirement:
    """A question asking which version (or bound) something needs: "What is the minimum Node
    version?", "Which version of Node do I need?", "What Node version is required?"."""

    values: frozenset[str]  # the terms asking for the value: version, minimum
    bounds: frozenset[str]  # the terms asking for a bound: minimum, required, need
    subject: frozenset[str]  # what it is about: node

    @classmethod
    def of(cls, question: str, question_terms: dict[str, str]) -> Requirement | None:
        """The requirement a question asks for, or None: "How do I upgrade to a newer
        version?" and "Can I reuse a version range?" ask for none."""
        values = asked_values(question_terms)
        bounds = {key for key, word in question_terms.items() if stem(word.lower()) in BOUND_STEMS}
        # "Do I need to give it a size?" asks whether, not which size: a requirement is for a
        # version or a bound by name.
        named = {k for k in values if stem(question_terms[k].lower()) in _REQUIRED_STEMS}
        if not named or not (bounds or _ASKS_WHICH.search(question)):
            return None
        subject = set(question_terms) - values - bounds
        if not subject:
            return None
        return cls(frozenset(values), frozenset(bounds), frozenset(subject))

    def query(self, question: str) -> str:
        """The question as the lexical leg searches it: with the words books state a bound
        in ("22.11.0 or newer", "v22 or later"), which a reader's "minimum", "need" or
        "supported" does not share; the passage stating the version then ranks among the
        candidates when the subject's name is common ("Node.js" in a React Native book)."""
        return f"{question} {BOUND_PHRASING}"

    def stated_by(self, sentence: str) -> bool:
        """Whether a sentence states the bound about the subject: a bound, and a number
        named by the subject just before it ("Node 22.11.0 or newer", "Node.js (at least
        v22)", "JDK17"). "React Native currently recommends version 17 of the JDK" names
        React Native, but its version is the JDK's."""
        if not states_bound(sentence):
            return False
        words = _WORDS.findall(sentence)
        return any(
            any(c.isdigit() for c in word)
            and matched(self.subject, set(terms(" ".join(words[max(0, i - NAMED_WITHIN) : i + 1]))))
            for i, word in enumerate(words)
        )

    def stated_in(self, sentences: Iterable[str]) -> bool:
        return any(self.stated_by(s) for s in sentences)


def states_value(sentence: str) -> bool:
    """Whether a sentence states a number or a version."""
    return bool(_STATES_A_VALUE.search(sentence))


def states_bound(sentence: str) -> bool:
    """Whether a sentence states a version or a bound on a value ("22.11.0 or newer", "at
    least 3", "requires Java 17", "18+")."""
    return bool(_STATES_A_BOUND.search(sentence))


def credited(
    values: set[str], requirement: Requirement | None, own: set[str], sentence: str
) -> set[str]:
    """The question's terms a sentence carries: its own (`own`), and the words asking for a
    value when it states one; for a requirement question, the words asking for a bound
    only when it states a bound about the subject: a bare number ("Node 3" in a diagram) is
    no minimum."""
    if not values or not states_value(sentence):
        return own
    if requirement is None:
        return own | values
    if requirement.stated_by(sentence):
        return own | values | requirement.bounds
    # "Node 22.11.0 or newer" is no answer to "What JDK version do I need?" either.
    return own | (values - requirement.bounds)
