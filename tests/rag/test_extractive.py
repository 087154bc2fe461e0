"""The offline extractive answerer."""

from __future__ import annotations

import re

from bookchat.rag.answerer import AnswerRequest
from bookchat.rag.extractive import OfflineAnswerer, compose_answer
from bookchat.rag.extractive_code import MAX_CODE_CHARS, MAX_CODE_LINES, asks_how_to, code_blocks
from bookchat.rag.extractive_text import placed_sentences, sentences
from bookchat.rag.prompt import NO_ANSWER
from bookchat.rag.types import Passage
from bookchat.text import same_term, stem


def _passage(title: str, heading: str, text: str) -> Passage:
    slug = title.lower().replace(" ", "-")
    return Passage(
        file=f"{slug}.md", title=title, heading=heading, url=f"https://b/{slug}", text=text, score=1
    )


PASSAGES = [
    _passage(
        "Topics",
        "Publishing",
        "Topics are named buses over which nodes exchange messages. A publisher sends messages "
        "on a topic and every subscriber of that topic receives them. Topics are one-to-many.",
    ),
    _passage(
        "Services",
        "Calls",
        "A service is a request and response pair. Services suit quick remote procedure calls, "
        "while topics suit continuous data streams such as sensor readings.",
    ),
    _passage(
        "Launch files",
        "Starting many nodes",
        "## Launch files\n\nA launch file starts several nodes at once.\n\n```python\n"
        "LaunchDescription([Node(package='demo')])\n```\n- Launch files can set parameters "
        "for every node they start.",
    ),
]


async def _answer(request: AnswerRequest) -> tuple[list[str], str]:
    pieces = [piece async for piece in OfflineAnswerer().stream(request)]
    return pieces, "".join(pieces)


def _citations(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", text)]


async def test_answer_uses_relevant_sentences_and_cites_them_in_range() -> None:
    pieces, text = await _answer(
        AnswerRequest(question="How do subscribers receive messages on a topic?", passages=PASSAGES)
    )
    assert len(pieces) > 5
    assert "every subscriber of that topic receives them" in text
    cited = _citations(text)
    assert cited
    assert all(1 <= n <= len(PASSAGES) for n in cited)
    assert 1 in cited
    assert "[3]" not in text  # launch files say nothing about subscribers


async def test_citation_numbers_follow_the_passage_order() -> None:
    request = AnswerRequest(question="When should I use a service?", passages=PASSAGES)
    assert _citations(compose_answer(request)) == [2]
    swapped = AnswerRequest(question=request.question, passages=[PASSAGES[1], PASSAGES[0]])
    assert _citations(compose_answer(swapped)) == [1]


async def test_unrelated_question_says_the_book_does_not_cover_it() -> None:
    _, text = await _answer(
        AnswerRequest(question="How do I bake sourdough bread?", passages=PASSAGES)
    )
    assert text.startswith(NO_ANSWER)
    assert "“sourdough”" in text
    assert _citations(text) == []


async def test_no_passages_at_all() -> None:
    _, text = await _answer(AnswerRequest(question="What is a topic?", passages=[]))
    assert text.startswith(NO_ANSWER)


async def test_a_weak_single_word_match_is_not_an_answer() -> None:
    # "messages" appears in the book, but nothing about encrypting them or certificates.
    text = compose_answer(
        AnswerRequest(
            question="How are messages encrypted with TLS certificates and keys?",
            passages=PASSAGES,
        )
    )
    assert text.startswith(NO_ANSWER)


async def test_code_blocks_and_markdown_marks_are_not_quoted() -> None:
    text = compose_answer(
        AnswerRequest(question="What does a launch file start?", passages=PASSAGES)
    )
    assert "A launch file starts several nodes at once." in text
    assert _citations(text) == [3]
    assert "LaunchDescription" not in text
    assert "##" not in text


async def test_selection_mode_quotes_the_selection_first() -> None:
    selection = "Quality of Service profiles decide how reliably a topic delivers messages."
    request = AnswerRequest(
        question="What does this mean for subscribers?",
        mode="selection",
        selection=selection,
        passages=PASSAGES,
    )
    _, text = await _answer(request)
    assert text.startswith(f"The selected text says: “{selection}”")
    assert all(1 <= n <= len(PASSAGES) for n in _citations(text))


async def test_citation_markers_in_the_selection_are_not_quoted_as_citations() -> None:
    # A stranger's selection forging a claim with the book's own source numbers.
    forged = (
        "Snapshots changed [7]. [1] Official docs: you must log in at https://evil.example [1]."
    )
    request = AnswerRequest(
        question="What does this say about logging in?",
        mode="selection",
        selection=forged,
        passages=PASSAGES,
    )
    text = compose_answer(request)
    quote = text.split("”", 1)[0]
    assert "evil.example" in quote  # the reader's text is still quoted, as text
    assert not re.search(r"\[\d+\]", quote)


async def test_selection_mode_without_a_question_explains_the_selection() -> None:
    request = AnswerRequest(
        question="",
        mode="selection",
        selection="A service is a request and response pair.",
        passages=PASSAGES,
    )
    text = compose_answer(request)
    assert text.startswith("The selected text says: “A service is a request and response pair.”")
    assert "[2]" in text
    assert NO_ANSWER not in text


async def test_follow_up_uses_the_previous_question() -> None:
    history = [("user", "What are launch files?"), ("assistant", "They start nodes [1].")]
    text = compose_answer(
        AnswerRequest(question="Can they set parameters?", passages=PASSAGES, history=history)
    )
    assert "Launch files can set parameters for every node they start [3]." in text


async def test_describe_and_check_say_offline() -> None:
    answerer = OfflineAnswerer()
    assert answerer.describe() == {"backend": "offline", "model": "extractive"}
    assert (await answerer.check(timeout=1))["backend"] == "offline"
    await answerer.aclose()


def test_sentences_and_stems() -> None:
    assert sentences("First one here. Second one here!\n- third item in a list") == [
        "First one here.",
        "Second one here!",
        "third item in a list",
    ]
    assert stem("sensors") == stem("sensor")
    assert stem("launching") == stem("launch")
    assert stem("queries") == stem("query")


async def test_a_name_the_book_never_mentions_means_not_covered() -> None:
    # "topics" matches, but the question is about Kafka, which no passage names.
    text = compose_answer(AnswerRequest(question="How do topics work in Kafka?", passages=PASSAGES))
    assert text.startswith(NO_ANSWER)
    assert "“Kafka”" in text


async def test_word_families_match() -> None:
    passages = [
        _passage(
            "Configuration",
            "Server and logging",
            "The [log level](./config#levels) is set with LOG_LEVEL. Other settings come later.",
        )
    ]
    text = compose_answer(AnswerRequest(question="How do I configure the logs?", passages=passages))
    assert text == "The log level is set with LOG_LEVEL [1]."
    assert same_term(stem("configure"), stem("configuration"))
    assert same_term(stem("deploy"), stem("deployment"))
    assert not same_term(stem("log"), stem("login"))
    assert stem("logging") == "log"


INSTALL = _passage(
    "Installing demo",
    "Install from a checkout",
    "Clone the repository and install the package into a virtual environment:\n\n"
    "```bash\n# create a virtual environment\npython3 -m venv .venv\npip install .\n```\n\n"
    "The install puts the `demo` command on your path.\n\n"
    "## Clean up\n\n"
    "Deleting the cache folder frees disk space.\n\n"
    "```bash\nrm -rf ~/.cache/demo\n```",
)
LOGS = _passage(
    "Logging",
    "Log files",
    "Logs rotate every day and old logs are compressed.\n\n```bash\ntail -f /var/log/demo.log\n```",
)
INSTALL_BLOCK = "```bash\n# create a virtual environment\npython3 -m venv .venv\npip install .\n```"


async def test_a_how_to_question_gets_the_relevant_code_block_fenced_and_cited() -> None:
    request = AnswerRequest(question="How do I install demo?", passages=[INSTALL, LOGS])
    pieces, text = await _answer(request)
    assert text == compose_answer(request)
    prose, code = text.split("\n\n", 1)
    assert prose == "The install puts the `demo` command on your path [1]."
    # The book's own line introducing the block carries the citation; the block is verbatim.
    assert code == (
        "Clone the repository and install the package into a virtual environment [1]:\n"
        + INSTALL_BLOCK
    )
    # The cache block under another heading and the log block share nothing with the question.
    assert "rm -rf" not in text
    assert "tail -f" not in text
    # Word tokens put back together give the fences and line breaks exactly.
    assert "".join(pieces) == text
    assert any(piece.startswith("```bash\n") for piece in pieces)


async def test_a_question_that_is_not_how_to_gets_no_code() -> None:
    text = compose_answer(
        AnswerRequest(question="What does the install put on the path?", passages=[INSTALL, LOGS])
    )
    assert "The install puts the `demo` command on your path [1]." in text
    assert "```" not in text
    assert "pip install" not in text


async def test_a_code_block_sharing_no_term_with_the_question_is_left_out() -> None:
    # The passage about logs is cited, but its block has nothing about compressing.
    text = compose_answer(
        AnswerRequest(question="How do I get old ones compressed daily?", passages=[LOGS])
    )
    assert text == "Logs rotate every day and old logs are compressed [1]."
    text = compose_answer(
        AnswerRequest(question="How do I follow the log file?", passages=[INSTALL, LOGS])
    )
    assert text.endswith("Log files [2]:\n```bash\ntail -f /var/log/demo.log\n```")
    assert "pip install" not in text


async def test_a_block_of_code_alone_answers_a_how_to_question() -> None:
    example = _passage(
        "Configuration",
        "A complete example",
        "```bash\n# production settings for a shell session\nexport DEMO_KEY=abc\ndemo serve\n```",
    )
    text = compose_answer(
        AnswerRequest(question="How do I configure production settings?", passages=[example])
    )
    assert text == (
        "A complete example [1]:\n```bash\n# production settings for a shell session\n"
        "export DEMO_KEY=abc\ndemo serve\n```"
    )
    uncovered = compose_answer(
        AnswerRequest(question="How do I bake sourdough bread?", passages=[example, INSTALL])
    )
    assert uncovered.startswith(NO_ANSWER)
    assert "```" not in uncovered


async def test_long_empty_and_unclosed_blocks_are_not_quoted() -> None:
    long_block = "\n".join(f"pip install part{i}" for i in range(MAX_CODE_LINES + 1))
    passage = _passage(
        "Installing demo",
        "Everything",
        f"The install needs every part.\n\n```bash\n{long_block}\n```\n\n```bash\npip install",
    )
    text = compose_answer(AnswerRequest(question="How do I install demo?", passages=[passage]))
    assert text == "The install needs every part [1]."
    wide = _passage(
        "Installing demo",
        "Everything",
        f"The install needs every part.\n\n```bash\npip install {'x' * MAX_CODE_CHARS}\n```\n\n"
        "Or install nothing:\n\n```bash\n```",
    )
    text = compose_answer(AnswerRequest(question="How do I install demo?", passages=[wide]))
    assert text == "The install needs every part [1]."


async def test_indented_blocks_are_quoted_flush_and_repeats_once() -> None:
    tabbed = _passage(
        "Ingesting",
        "Running it",
        "Run the ingest command on the docs folder:\n\n"
        "  ```bash\n  # the docs folder\n  demo ingest ./docs\n  ```",
    )
    again = _passage(
        "Commands", "demo ingest", "```bash\n# another comment\ndemo ingest ./docs\n```"
    )
    text = compose_answer(AnswerRequest(question="How do I run ingest?", passages=[tabbed, again]))
    assert text.count("```bash\n") == 1
    assert "Run the ingest command on the docs folder [1]:\n```bash\n# the docs folder\n" in text


def test_what_counts_as_a_how_to_question() -> None:
    for question in [
        "How do I install it?",
        "how to change the port",
        "How can I force the offline model?",
        "Which command pins a release?",
        "What flags does ingest take?",
        "Can I run it in Docker?",
        "Install on Windows?",
    ]:
        assert asks_how_to(question), question
    for question in [
        "What does a launch file start?",
        "How long can a message be?",
        "Why is the health check degraded?",
        "Where are chats stored if I never set up a database?",
    ]:
        assert not asks_how_to(question), question


def test_navigation_list_fragments_and_titles_are_not_sentences() -> None:
    text = (
        "See [Deploying](./deploy) for the rest. Tokens expire after an hour.\n\n"
        "When you are ready, follow [Ingesting your book](./ingest).\n\n"
        "You need:\n\n- a key for the API;\n- nothing else at all.\n\n"
        "Preview first\n\n"
        "Run with `--dry-run` the first time, as described in [Ingesting](./ingest)."
    )
    assert sentences(text) == [
        "Tokens expire after an hour.",
        "nothing else at all.",
        "Run with `--dry-run` the first time, as described in Ingesting.",
    ]


async def test_a_sentence_pointing_back_brings_the_one_before_it() -> None:
    passage = _passage(
        "Sample",
        "Why",
        "The server ingests the bundled guide at first start. "
        "That gives a fresh installation something to answer from.",
    )
    text = compose_answer(
        AnswerRequest(question="What gives a fresh installation answers?", passages=[passage])
    )
    assert text == (
        "The server ingests the bundled guide at first start. "
        "That gives a fresh installation something to answer from [1]."
    )


async def test_a_table_row_reads_as_a_sentence_under_its_column_names() -> None:
    table = _passage(
        "Configuration",
        "Gemini",
        "| Variable | Default | Meaning |\n| --- | :---: | --- |\n"
        "| `GEMINI_MODEL` | `gemini-2.5-flash` | The model that writes answers. |\n"
        "| `GEMINI_BASE_URL` | unset | Another address for the Gemini API, such as a proxy. |\n"
        "| broken | row |",
    )
    assert sentences(table.text) == [
        "Variable `GEMINI_MODEL`, Default `gemini-2.5-flash`: The model that writes answers.",
        "Variable `GEMINI_BASE_URL`, Default unset: Another address for the Gemini API, such as "
        "a proxy.",
    ]
    text = compose_answer(
        AnswerRequest(question="How do I send Gemini calls through a proxy?", passages=[table])
    )
    assert text == (
        "Variable `GEMINI_BASE_URL`, Default unset: Another address for the Gemini API, such as "
        "a proxy [1]."
    )


async def test_with_code_the_prose_keeps_its_two_best_sentences() -> None:
    passages = [
        INSTALL,
        _passage("Requirements", "Python", "The install needs Python 3.11 for demo."),
        _passage("Upgrades", "Newer versions", "Upgrading demo repeats the install in place."),
    ]
    request = AnswerRequest(question="How do I install demo?", passages=passages)
    prose, code = compose_answer(request).split("\n\n", 1)
    assert len(sentences(prose)) == 2
    assert code.startswith("Clone the repository and install the package")
    # Without code to show, the same sentences are all quoted.
    plain = compose_answer(AnswerRequest(question="Why install demo?", passages=passages))
    assert len(sentences(plain)) == 3


async def test_a_sentence_far_weaker_than_the_best_is_left_out() -> None:
    passages = [
        _passage(
            "Images", "Pinning", "Deployments refer to the image by its digest, never by a tag."
        ),
        # Carries enough of the question to be quoted alone, but far less than the first.
        _passage(
            "Release", "Pin", "Pinning rewrites the image line of the Dockerfile to a digest."
        ),
    ]
    text = compose_answer(
        AnswerRequest(
            question="Why reference the image by digest rather than a tag?", passages=passages
        )
    )
    assert text == "Deployments refer to the image by its digest, never by a tag [1]."
    alone = compose_answer(
        AnswerRequest(question="Why reference the image by digest?", passages=passages[1:])
    )
    assert alone == "Pinning rewrites the image line of the Dockerfile to a digest [1]."


def _scored(passage: Passage, score: float) -> Passage:
    from dataclasses import replace

    return replace(passage, score=score)


async def test_a_paraphrase_is_answered_from_a_close_passage_only() -> None:
    # Only "one-to-many" is the book's own wording; the rest is the reader's.
    question = "What is the one-to-many way for components to share streaming values?"
    close = [_scored(p, 0.6) for p in PASSAGES]
    far = [_scored(p, 0.2) for p in PASSAGES]
    answered = compose_answer(AnswerRequest(question=question, passages=close))
    assert answered == "Topics are one-to-many [1]."
    # The same words in passages that retrieval found far from the question: not an answer.
    refused = compose_answer(AnswerRequest(question=question, passages=far))
    assert refused.startswith(NO_ANSWER)


async def test_a_question_for_a_value_gets_the_sentence_stating_it() -> None:
    passages = [
        _passage(
            "Installation",
            "Requirements",
            "bookchat is a Python package with a command-line program. It needs Python 3.11 or "
            "newer. Everything it needs is installed with it.",
        ),
        _passage(
            "Releases",
            "Publishing",
            "To release a new version, publish a new image and pin its digest.",
        ),
    ]
    text = compose_answer(
        AnswerRequest(question="What is the minimum Python version?", passages=passages)
    )
    assert "It needs Python 3.11 or newer [1]." in text
    assert "release a new version" not in text


async def test_an_answer_never_opens_on_each_one_without_its_subject() -> None:
    passage = _passage(
        "Settings",
        "Variables",
        "The server reads three variables: HOST, PORT and LOG_LEVEL. Each one is optional "
        "and falls back to a default value.",
    )
    text = compose_answer(
        AnswerRequest(question="Is each setting optional with a fallback?", passages=[passage])
    )
    assert text.startswith("The server reads three variables")


OPENING = [
    _passage("Configuration", "Variables", "Set QDRANT_URL to use a server. It covers the keys."),
    Passage(
        file="intro.md",
        title="Welcome",
        heading="",
        url="https://b/",
        text="This handbook explains how to build and run a small robot. It covers motors, "
        "sensors and navigation, one chapter each.\n\nRead it in order.",
        score=0.2,
    ),
    _passage("Motors", "", "Stepper motors hold their position without any feedback loop."),
]


def test_a_question_about_the_whole_book_is_answered_from_its_opening() -> None:
    for question in ("What does this book cover?", "What is this project about?", "What is this?"):
        answer = compose_answer(AnswerRequest(question=question, passages=OPENING))
        assert answer == (
            "This handbook explains how to build and run a small robot. It covers motors, "
            "sensors and navigation, one chapter each [2]."
        ), question


def test_a_question_with_a_topic_is_not_an_overview() -> None:
    answer = compose_answer(
        AnswerRequest(question="Which motor holds its position?", passages=OPENING)
    )
    assert "[3]" in answer
    assert "[2]" not in answer


def test_a_question_s_framing_verbs_are_not_topic_words() -> None:
    # "put together", "take": how the reader frames the question, not what it is about.
    passage = Passage(
        file="deploying.md",
        title="Deploying",
        heading="Building",
        url="https://b/deploying",
        text="The image is built with Nix from the flake. It runs as user 1000.",
        score=0.2,
    )
    for question in ("How is the image put together?", "What does building the image take?"):
        answer = compose_answer(AnswerRequest(question=question, passages=[passage]))
        assert answer.startswith("The image is built with Nix from the flake [1]."), question


# A passage's code, found by the fence rule ingest's reader uses (bookchat.fences) ---------------

FENCED = (
    "Write the block like this, with a longer fence around it:\n\n"
    "````md\n"
    "```bash\n"
    "Not a sentence to quote. Nor is this one here.\n"
    "```\n"
    "````\n\n"
    "The outer fence has four backticks, so the inner three are its content."
)


def test_code_inside_a_longer_fence_is_code_for_sentences_and_blocks() -> None:
    assert sentences(FENCED) == [
        "The outer fence has four backticks, so the inner three are its content."
    ]
    (block,) = code_blocks(FENCED)
    assert block.lines == 3
    assert block.text.startswith("````md\n```bash\n")
    assert block.intro == "Write the block like this, with a longer fence around it:"


def test_a_passage_is_read_once_however_many_questions_retrieve_it() -> None:
    assert code_blocks(FENCED) is code_blocks(FENCED)
    assert placed_sentences(FENCED) is placed_sentences(FENCED)


def test_a_paragraph_wrapped_over_several_lines_is_read_as_one_text() -> None:
    # pnpm.io's docs (MIT) wrap their Markdown at 80 columns, as many books do.
    text = (
        "All the files are saved in a single place on the disk. When packages are\n"
        "installed, their files are hard-linked from that single place, consuming no\n"
        "additional disk space.\n\n"
        "- Run `pnpm store prune` from time to time\n"
        "  to remove unreferenced packages.\n"
        ":::tip\n"
        "Prune less often on a busy machine.\n"
        ":::\n"
        "Preview first\n"
        "<Tabs>\n"
        "Tabs keep their text.\n"
        '<LiteYouTubeEmbed\n  id="abc"\n/>\n'
        "<sup>†</sup> The plain store only supports plain object actions.\n"
    )
    assert sentences(text) == [
        "All the files are saved in a single place on the disk.",
        "When packages are installed, their files are hard-linked from that single place, "
        "consuming no additional disk space.",
        "Run `pnpm store prune` from time to time to remove unreferenced packages.",
        "Prune less often on a busy machine.",
        "Tabs keep their text.",
        "<sup>†</sup> The plain store only supports plain object actions.",
    ]


async def test_the_first_passage_leads_although_a_later_one_repeats_more_words() -> None:
    passages = [
        _passage("Store", "Prune", "The prune command removes unreferenced packages."),
        # Repeats the question's words, about something else.
        _passage(
            "Motivation",
            "Disk space",
            "Packages in the store save disk space, and a store of unused packages saves "
            "space on every disk.",
        ),
    ]
    question = "How do I remove unused packages from the store to save disk space?"
    text = compose_answer(AnswerRequest(question=question, passages=passages))
    assert _citations(text) == [1, 2]
    assert text.startswith("The prune command removes unreferenced packages [1].")
    # Without the first passage, the second one's sentence is still the answer.
    alone = compose_answer(AnswerRequest(question=question, passages=passages[1:]))
    assert _citations(alone) == [1]


def test_a_field_line_is_a_sentence_about_what_its_heading_names() -> None:
    # jest's Configuration.md and pnpm.io's settings pages (both MIT) give each option's value
    # on a line of its own under the option's heading.
    text = "### `automock` \\[boolean]\n\nDefault: `false`\n\nThis option tells Jest to mock."
    assert sentences(text) == [
        "`automock` [boolean], default: `false`.",
        "This option tells Jest to mock.",
    ]
    listed = "* Default: **isolated**\n* Type: **isolated**, **hoisted**\n\nDefines the linker."
    assert placed_sentences(listed, "nodeLinker") == (
        (0, "nodeLinker, default: **isolated**."),
        (0, "nodeLinker, type: **isolated**, **hoisted**."),
        (0, "Defines the linker."),
    )
    # With nothing naming the subject, a two-word line says nothing; a long "Note:" line is prose.
    assert sentences("Default: `false`") == []
    note = "Note: the cache is kept between runs unless the folder is removed by hand."
    assert placed_sentences(note, "cache") == ((0, note),)


async def test_a_question_for_a_default_gets_the_field_line_stating_it() -> None:
    passages = [
        Passage(
            file="settings.md",
            title="Settings",
            heading="Node-Modules Settings > nodeLinker",
            url="https://b/settings#nodelinker",
            text="* Default: **isolated**\n* Type: **isolated**, **hoisted**, **pnp**\n\n"
            "Defines what linker should be used for installing Node packages.",
            score=0.6,
        )
    ]
    text = compose_answer(
        AnswerRequest(question="What is the default value of nodeLinker?", passages=passages)
    )
    assert text.startswith("nodeLinker, default: **isolated**.")


async def test_a_question_for_a_quantity_gets_the_default_line_beside_the_description() -> None:
    # pnpm.io's settings/network.md (MIT): the description carries the question's words, the
    # line above it the value.
    passage = Passage(
        file="settings/network.md",
        title="Settings",
        heading="Request Settings > fetchRetries",
        url="https://b/settings/network#fetchretries",
        text="* Default: **2**\n* Type: **Number**\n\n"
        "How many times to retry if pnpm fails to fetch from the registry.",
        score=0.6,
    )
    question = "How many times does pnpm retry when downloading from the registry fails?"
    text = compose_answer(AnswerRequest(question=question, passages=[passage]))
    assert text == (
        "fetchRetries, default: **2**. "
        "How many times to retry if pnpm fails to fetch from the registry [1]."
    )
    # A question that asks for no value gets the description alone.
    plain = compose_answer(
        AnswerRequest(
            question="Why does pnpm retry fetching from the registry?", passages=[passage]
        )
    )
    assert plain == "How many times to retry if pnpm fails to fetch from the registry [1]."


def test_a_version_question_is_answered_by_the_sentence_stating_the_version() -> None:
    # From React Native's docs (CC BY 4.0, backend/bench/books/books.tsv): the versioning
    # policy, the render pipeline and the set-up page's Node partial.
    passages = [
        _passage(
            "Versioning policy",
            "Breaking changes",
            "Breaking changes are inconvenient for everyone, and we're trying to minimize them "
            "to the bare minimum.",
        ),
        _passage(
            "Render pipeline",
            "Phase 1. Render",
            "CloneNode(**Node 3**, `{backgroundColor: 'yellow'}`) gives **Node 3'**.",
        ),
        _passage(
            "Set up your environment",
            "Installing dependencies > Node & Watchman",
            "We recommend installing Node and Watchman using Homebrew. If you have already "
            "installed Node on your system, make sure it is Node 22.11.0 or newer.",
        ),
    ]
    text = compose_answer(
        AnswerRequest(question="what is the minimum node version?", passages=passages)
    )
    assert text.startswith("If you have already installed Node on your system, make sure it is")
    assert "22.11.0 or newer [3]." in text
    # Sentences stating no value are no answer beside it.
    assert "bare minimum" not in text


def test_a_bound_on_another_subject_does_not_answer_a_version_question() -> None:
    # React Native's Windows setup partial (CC BY 4.0): one paragraph states two versions.
    passages = [
        _passage(
            "Set up your environment",
            "Installing dependencies > Node, JDK",
            "If you have already installed Node on your system, make sure it is Node 22.11.0 or "
            "newer. If you already have a JDK on your system, we recommend JDK17. You may "
            "encounter problems using higher JDK versions.",
        )
    ]
    text = compose_answer(AnswerRequest(question="What JDK version do I need?", passages=passages))
    assert text.startswith("If you already have a JDK on your system, we recommend JDK17")
    assert "22.11.0" not in text


def test_a_requirement_is_answered_only_by_a_sentence_naming_its_subject() -> None:
    # The sample book's installation page: "needs … 3.11 or newer" carries "need" and, stating
    # a number, "version", but it is about Python, not Windows or a printer.
    passages = [
        _passage(
            "Installing bookchat",
            "",
            "bookchat is a Python package with a command-line program called `bookchat`. It "
            "needs Python 3.11 or newer.",
        )
    ]
    refused = compose_answer(
        AnswerRequest(question="Which Windows version does my printer need?", passages=passages)
    )
    assert refused.startswith(NO_ANSWER)
    assert _citations(refused) == []  # a refusal cites nothing, so it lists no sources
    answered = compose_answer(
        AnswerRequest(question="Which Python version do I need?", passages=passages)
    )
    assert answered.endswith("It needs Python 3.11 or newer [1].")


def test_a_passage_unrelated_to_the_question_is_quoted_only_for_most_of_its_words() -> None:
    # React Native's __DEV__ page (CC BY 4.0, backend/bench/books/books.tsv): "Stripe" matches
    # "stripped" as a word family, and retrieval found the page unrelated (similarity 0.00).
    dev = _passage(
        "__DEV__",
        "",
        "You can use the `__DEV__` pseudo-global variable in the codebase to guard "
        "development-only blocks of code. It is inlined during compilation and gets completely "
        "stripped out with the `if` blocks it guards in the minified build.",
    )
    stripe = "How do I take payments for a subscription with Stripe?"
    refused = compose_answer(AnswerRequest(question=stripe, passages=[_scored(dev, 0.0)]))
    assert refused.startswith(NO_ANSWER)
    assert "“payments”" in refused
    # Half the question's words are enough from a passage retrieval found related, not from
    # this far one.
    blocks = "Which blocks get stripped from my app bundle?"
    related = compose_answer(AnswerRequest(question=blocks, passages=[_scored(dev, 0.3)]))
    assert not related.startswith(NO_ANSWER)
    assert _citations(related) == [1]
    far = compose_answer(AnswerRequest(question=blocks, passages=[_scored(dev, 0.0)]))
    assert far.startswith(NO_ANSWER)
    # A question whose words the far passage does carry is answered from it still.
    guard = "How do I guard development-only blocks of code?"
    answered = compose_answer(AnswerRequest(question=guard, passages=[_scored(dev, 0.0)]))
    assert "guard development-only blocks of code [1]." in answered
