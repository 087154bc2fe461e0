"""`bookchat ask QUESTION`: answer one question from the indexed book, in the terminal."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from bookchat.cli.ingest import CommandError, run_command
from bookchat.cli.serve import url_to_open
from bookchat.rag.answerer import AnswerError, AnswerRequest
from bookchat.rag.citations import cited
from bookchat.rag.prompt import is_refusal, standalone_query
from bookchat.rag.types import RetrievalUnavailable
from bookchat.stores.errors import StoreError

# The server's variables ask never reads; HOST and PORT stay: they place the sample book's links.
UNUSED_SETTINGS = ("DATABASE_URL", "ALLOWED_ORIGINS")

if TYPE_CHECKING:
    from bookchat.config import Settings
    from bookchat.rag.types import Passage


def register(subparsers: Any) -> None:
    """Add the `ask` subcommand."""
    parser = subparsers.add_parser(
        "ask",
        help="answer a question from the indexed book, with its sources",
        description="Answer one question from the index `bookchat ingest` built (the sample "
        "book until then), with the answerer `bookchat serve` would use, and list the "
        "sources cited. Nothing is stored.",
        epilog='example: bookchat ask "How do I install bookchat?"',
    )
    parser.add_argument("question", help="the question, in quotes")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: print the answer as it streams, then the numbered sources; 0 when answered."""
    # pydantic-settings (~0.2 s), deferred: every command's module loads for --help.
    from bookchat.config import load_settings

    question = args.question.strip()
    if not question:
        sys.stderr.write("bookchat ask: the question is empty\n")
        return 2
    settings = load_settings(unused=UNUSED_SETTINGS)
    passages, answer = run_command("ask", _ask(question, settings))

    # As the chat's `done` event: a refusal has no sources; the passages the answer does not
    # cite are listed apart, as related reading.
    if is_refusal(answer):
        return 0
    used = set(cited(answer, len(passages)))
    # Root-relative links (the sample book's) are pages `bookchat serve` itself serves.
    origin = url_to_open(settings.host, settings.port).rstrip("/")
    for heading, wanted in (("sources:", True), ("related reading:", False)):
        listed = [(n, p) for n, p in enumerate(passages, start=1) if (n in used) is wanted]
        if listed:
            print(heading)
        for number, passage in listed:
            where = f"{passage.title} — {passage.heading}" if passage.heading else passage.title
            link = f"{origin}{passage.url}" if passage.url.startswith("/") else passage.url
            print(f"[{number}] {where}: {link}")
    return 0


async def _ask(question: str, settings: Settings) -> tuple[list[Passage], str]:
    """Stream the answer to stdout; the passages it was given (for the sources) and the text."""
    # The backends and the ingest pipeline (~0.3 s), only once a command runs.
    from bookchat.backends import (
        ConfigurationError,
        index_sample_book,
        make_answerer,
        open_retriever,
    )
    from bookchat.rag.chat import PASSAGES_PER_ANSWER

    try:
        retriever = await open_retriever(settings)
    except (StoreError, ConfigurationError) as exc:
        raise CommandError(str(exc)) from None
    answerer = make_answerer(settings)
    try:
        # As `bookchat serve` does: an empty embedded index gets the sample book first.
        await index_sample_book(settings, retriever)
        passages = await retriever.retrieve(standalone_query(question, []), k=PASSAGES_PER_ANSWER)
        request = AnswerRequest(question=question, passages=passages)
        text = ""
        async for piece in answerer.stream(request):
            text += piece
            sys.stdout.write(piece)
            sys.stdout.flush()
        print("" if text.endswith("\n") else "\n")
    except (StoreError, RetrievalUnavailable) as exc:
        raise CommandError(str(exc)) from None
    except AnswerError as exc:
        raise CommandError(f"the answer failed: {exc.message}") from None
    finally:
        await answerer.aclose()
        await retriever.aclose()
    return list(passages), text
