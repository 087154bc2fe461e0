"""`bookchat eval QUESTIONS.tsv`: recall@k and MRR of retrieval on a question set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookchat.cli.ingest import (
    UNUSED_SETTINGS,
    CommandError,
    add_site_options,
    resolve_site_arg,
    run_command,
    show_site,
)
from bookchat.rag.eval import QuestionsError, evaluate, read_offtopic, read_questions
from bookchat.rag.types import RetrievalUnavailable
from bookchat.stores.errors import StoreError

if TYPE_CHECKING:
    from bookchat.config import Settings
    from bookchat.rag.eval import EvalResult


def register(subparsers: Any) -> None:
    """Add the `eval` subcommand."""
    parser = subparsers.add_parser(
        "eval",
        help="measure retrieval (recall@k, MRR) on a question set",
        description="Each row of QUESTIONS.tsv (header: question<TAB>file) is a question and "
        "the docs-relative file of the page that answers it.",
    )
    parser.add_argument("questions", type=Path, help="TSV file: question<TAB>file")
    parser.add_argument("-k", type=int, default=5, help="passages retrieved per question")
    parser.add_argument(
        "--docs",
        type=Path,
        help="ingest this site or docs folder first (default: the configured collection as "
        "it is, with the sample book when embedded and empty)",
    )
    parser.add_argument(
        "--answers",
        action="store_true",
        help="also answer each question with the offline answerer, from the same passages, "
        "and report its refusal rate and how often it cites the expected page",
    )
    parser.add_argument(
        "--offtopic",
        type=Path,
        metavar="TSV",
        help="with --answers, also answer these questions the book does not answer (a TSV with "
        "a question column) and report how many were answered instead of refused",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="under each miss, list the files of the passages retrieved instead",
    )
    add_site_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: print one line per missed question, then recall@k and MRR."""
    # pydantic-settings (~0.2 s), deferred: every command's module loads for --help.
    from bookchat.config import load_settings

    settings = load_settings(unused=UNUSED_SETTINGS)
    if args.k < 1:
        sys.stderr.write("bookchat eval: -k must be at least 1\n")
        return 2
    if args.offtopic is not None and not args.answers:
        sys.stderr.write("bookchat eval: --offtopic needs --answers\n")
        return 2
    result, legs = run_command("eval", _eval(args, settings))
    for question, instead in zip(result.misses, result.missed_instead, strict=True):
        print(f"miss: {question.text}  (expected {question.file} in the top {result.k})")
        if args.verbose:
            print(f"  retrieved instead: {', '.join(instead) or 'nothing'}")
    for question in result.refused_with_page:
        print(f"refused: {question.text}  ({question.file} was retrieved)")
    for text in result.offtopic_answered:
        print(f"answered off-topic: {text}")
    print(f"{result.summary()}  legs: {legs}")
    return 0


async def _eval(args: argparse.Namespace, settings: Settings) -> tuple[EvalResult, str]:
    # The backends and the ingest pipeline (~0.3 s), only once a command runs.
    from bookchat.backends import ConfigurationError, index_sample_book, open_retriever
    from bookchat.ingest.indexer import ingest
    from bookchat.ingest.pipeline import read_site

    try:
        questions = read_questions(args.questions)
        offtopic = read_offtopic(args.offtopic) if args.offtopic is not None else None
    except QuestionsError as exc:
        raise CommandError(str(exc), code=2) from None
    site = resolve_site_arg(args.docs, args) if args.docs else None
    if site is not None:
        show_site(site, "bookchat eval")
    try:
        retriever = await open_retriever(settings)
    except (StoreError, ConfigurationError) as exc:
        raise CommandError(str(exc)) from None
    try:
        if site is not None:
            report = await ingest(
                chunked_book=read_site(site),
                store=retriever.store,
                dense=retriever.dense,
                sparse=retriever.sparse,
            )
        else:  # what every start does: the sample book into an empty embedded collection
            report = await index_sample_book(settings, retriever)
        if report is not None:
            sys.stderr.write(f"bookchat eval: ingested: {report.summary()}\n")
        answerer = None
        if args.answers:
            # Only with --answers (~25 ms).
            from bookchat.rag.extractive import OfflineAnswerer

            answerer = OfflineAnswerer()
        result = await evaluate(
            retriever=retriever,
            questions=questions,
            k=args.k,
            answerer=answerer,
            offtopic=offtopic,
        )
    except (StoreError, RetrievalUnavailable) as exc:
        raise CommandError(str(exc)) from None
    finally:
        await retriever.aclose()
    return result, "+".join(retriever.describe()["legs"])
