"""Requirement questions and the sentences that state a bound (rag/values.py).

Sentences are from React Native's docs (set-up-your-environment, its _getting-started-*
partials, render-pipeline; CC BY 4.0, backend/bench/books/books.tsv) and pnpm's docs
(installation.md; MIT).
"""

from __future__ import annotations

import pytest

from bookchat.rag.extractive_text import terms
from bookchat.rag.values import Requirement, states_bound


@pytest.mark.parametrize(
    "question",
    [
        "what is the minimum node version?",
        "Which version of Node do I need to install?",
        "What Node version is required?",
        "Which Node.js versions are supported?",
    ],
)
def test_questions_asking_which_version_are_requirements(question: str) -> None:
    requirement = Requirement.of(question, terms(question))
    assert requirement is not None
    assert "node" in requirement.subject


@pytest.mark.parametrize(
    "question",
    [
        "How do I upgrade my project to a newer React Native version?",
        "Can I write a dependency's version range once and reuse it in every package?",
        "Can I display an image from a URL, and do I need to give it a size?",
        "What is the default port?",  # a value, but about nothing else the book must name
        "What do I need to install?",
        "How do I upgrade every dependency to its newest version?",
    ],
)
def test_other_questions_are_not(question: str) -> None:
    assert Requirement.of(question, terms(question)) is None


@pytest.mark.parametrize(
    ("sentence", "bound"),
    [
        ("If you have already installed Node, make sure it is Node 22.11.0 or newer.", True),
        ("You need to have Node.js (at least v22) to be installed on your system.", True),
        ("React Native 0.84 requires Node.js v22.11 or later.", True),
        ("This project runs on Node 18+.", True),
        ("React Native currently recommends version 17 of the Java SE Development Kit.", True),
        ("React-Redux v9 switches to requiring React 18.", True),
        ("CloneNode(Node 3, {backgroundColor: 'yellow'}) → Node 3'", False),
        ("It is recommended to use an LTS version of Node.", False),
    ],
)
def test_a_bound_is_a_version_or_a_number_with_a_bound_word(sentence: str, bound: bool) -> None:
    assert states_bound(sentence) is bound


def test_a_requirement_is_stated_by_a_bound_about_its_subject() -> None:
    question = "What Node version is required?"
    requirement = Requirement.of(question, terms(question))
    assert requirement is not None
    assert requirement.stated_by("Follow the instructions to install Node 22.11.0 or newer.")
    # A version about something else is not the answer.
    assert not requirement.stated_by("Starting from React Native version 0.69, configure Xcode.")


def test_the_version_must_be_named_by_the_subject() -> None:
    question = "Which Node.js version does React Native need?"
    requirement = Requirement.of(question, terms(question))
    assert requirement is not None
    assert requirement.stated_by("You need to have Node.js (at least v22) installed.")
    # React Native is named, but the version is the JDK's.
    assert not requirement.stated_by(
        "React Native currently recommends version 17 of the Java SE Development Kit (JDK)."
    )
    jdk = "What JDK version do I need?"
    jdk_requirement = Requirement.of(jdk, terms(jdk))
    assert jdk_requirement is not None
    assert jdk_requirement.stated_by(
        "If you already have a JDK on your system, we recommend JDK17."
    )
    assert not jdk_requirement.stated_by("Make sure it is Node 22.11.0 or newer.")
