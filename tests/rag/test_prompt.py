"""The grounded prompt and the standalone retrieval query."""

from __future__ import annotations

import pytest

from bookchat.rag.answerer import AnswerRequest
from bookchat.rag.prompt import (
    HISTORY_CHARS,
    HISTORY_TURNS,
    NO_ANSWER,
    bounded_history,
    build_prompt,
    format_source,
    is_follow_up,
    standalone_query,
)
from bookchat.rag.types import Passage


def _passage(title: str, heading: str = "", text: str = "Some text.", url: str = "") -> Passage:
    return Passage(
        file=f"{title.lower()}.md", title=title, heading=heading, url=url, text=text, score=0.5
    )


PASSAGES = [
    _passage("Nodes", "Basics > Processes", "A node is a process.", "https://b/nodes#basics"),
    _passage("Topics", "", "Topics carry messages.", "https://b/topics"),
]


def _last_text(request: AnswerRequest) -> str:
    return build_prompt(request).contents[-1]["parts"][0]["text"]


def test_sources_are_numbered_in_order_with_title_heading_and_url() -> None:
    text = _last_text(AnswerRequest(question="What is a node?", passages=PASSAGES))
    first = text.index(
        "[1] Nodes — Basics > Processes (https://b/nodes#basics)\nA node is a process."
    )
    second = text.index("[2] Topics (https://b/topics)\nTopics carry messages.")
    assert first < second < text.index('Question: "What is a node?"')


def test_a_source_without_title_uses_its_file() -> None:
    passage = Passage(file="a/b.md", title="", heading="", url="", text="x y z", score=0.1)
    assert format_source(3, passage) == "[3] a/b.md\nx y z"


def test_system_instruction_asks_for_citations_and_plain_no_answer() -> None:
    prompt = build_prompt(AnswerRequest(question="q", passages=PASSAGES))
    assert "[1]" in prompt.system_instruction
    assert NO_ANSWER in prompt.system_instruction
    assert "never" in prompt.system_instruction.lower()


def test_no_passages_is_said_in_the_prompt() -> None:
    text = _last_text(AnswerRequest(question="What about cooking?", passages=[]))
    assert "none were found" in text
    assert "[1]" not in text


def test_selection_is_the_primary_source() -> None:
    request = AnswerRequest(
        question="",
        mode="selection",
        selection="  Quality of Service decides how messages are delivered.  ",
        passages=PASSAGES,
    )
    text = _last_text(request)
    selected = text.index("Selected text (the primary source):")
    assert "Quality of Service decides how messages are delivered." in text
    assert selected < text.index("[1] Nodes")
    assert text.rstrip().endswith('Question: "Explain the selected text."')


def test_selection_is_ignored_in_general_mode() -> None:
    request = AnswerRequest(question="q", mode="general", selection="stray", passages=PASSAGES)
    assert "stray" not in _last_text(request)


def test_history_becomes_alternating_turns_before_the_question() -> None:
    history = [("user", "What is ROS?"), ("assistant", "Middleware [1]."), ("user", "And DDS?")]
    contents = build_prompt(AnswerRequest(question="q", history=history)).contents
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[0]["parts"][0]["text"] == "What is ROS?"
    # The unanswered "And DDS?" and the new question are merged into one user turn.
    assert contents[2]["parts"][0]["text"].startswith("And DDS?\n\n")
    assert 'Question: "q"' in contents[2]["parts"][0]["text"]


def test_history_never_opens_with_the_model() -> None:
    contents = build_prompt(AnswerRequest(question="q", history=[("assistant", "hi")])).contents
    assert [c["role"] for c in contents] == ["user"]


def test_history_is_bounded_by_turns_and_characters() -> None:
    history = [("user" if i % 2 == 0 else "assistant", f"turn {i}") for i in range(20)]
    kept = bounded_history(history)
    assert len(kept) == HISTORY_TURNS
    assert kept[-1] == ("assistant", "turn 19")
    long = [("user", "a" * 3000), ("assistant", "b" * 3000), ("user", "c" * 100)]
    kept = bounded_history(long)
    assert sum(len(t) for _, t in kept) <= HISTORY_CHARS + 1
    assert kept[-1] == ("user", "c" * 100)
    assert kept[0][1].startswith("…")


def test_empty_turns_are_dropped() -> None:
    assert bounded_history([("user", "  "), ("assistant", ""), ("user", "x")]) == [("user", "x")]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("and on Windows?", True),
        ("What about services?", True),
        ("How do I install it?", True),
        ("Why?", True),
        ("Tell me more about those parameters", True),
        ("How do I install ROS 2 on Ubuntu?", False),
        ("What is the difference between topics and services?", False),
        ("Is there a way to record messages to a file?", False),
    ],
)
def test_follow_up_detection(message: str, expected: bool) -> None:
    assert is_follow_up(message) is expected


def test_standalone_query_leaves_a_self_contained_question_alone() -> None:
    history = [("user", "What is ROS 2?"), ("assistant", "Middleware.")]
    message = "How do I write a launch file for several nodes?"
    assert standalone_query(message, history) == message


def test_standalone_query_joins_a_follow_up_to_the_previous_question() -> None:
    history = [("user", "How do I install ROS 2?"), ("assistant", "Use apt [1].")]
    assert standalone_query("and on Windows?", history) == "How do I install ROS 2? and on Windows?"


def test_standalone_query_resolves_a_chain_of_follow_ups() -> None:
    history = [
        ("user", "What is a ROS 2 node?"),
        ("assistant", "A process [1]."),
        ("user", "How do I start it?"),
        ("assistant", "With ros2 run [1]."),
    ]
    query = standalone_query("and stop it?", history)
    assert query == "What is a ROS 2 node? How do I start it? and stop it?"


def test_standalone_query_without_history_is_the_message() -> None:
    assert standalone_query("  and   this? ", []) == "and this?"


def test_standalone_query_is_bounded() -> None:
    history = [("user", "word " * 500)]
    query = standalone_query("and then?", history)
    assert len(query) <= 600
    assert query.endswith("and then?")
