"""`python -m bookchat.probe URL` (also `bookchat probe URL`): prove a running bookchat answers.

Waits until GET /api/health says healthy, asks one question through POST /api/chat and requires
the whole contract of an answer: a `metadata` event with the conversation id, at least one
`token` event with text, and `done` with at least one source; then reads the conversation back
to see that it was stored. Exit 0 and one line saying what it saw, or exit 1 and one line
saying which step failed and why.

Stdlib only, and nothing else of bookchat is imported: the same file runs in `checks.smoke`
(inside the Nix build sandbox, through the image's launcher), in the test suite against the
venv, in the image (`docker exec … bookchat probe`), and from the release runner's own python3
(`PYTHONPATH=backend python3 -m bookchat.probe …`) against the loaded image.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEFAULT_QUESTION = "How do I install bookchat?"
MAX_HEALTH_BYTES = 256 * 1024
MAX_EVENT_BYTES = 1024 * 1024
MAX_LINE = 600


class ProbeFailed(Exception):
    """One step of the probe failed; the message says which and why, in one line."""


@dataclass
class Answer:
    """What the chat stream carried."""

    conversation_id: str = ""
    tokens: int = 0
    text: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    types: list[str] = field(default_factory=list)


def _opener() -> urllib.request.OpenerDirector:
    # No proxies: an HTTP(S)_PROXY in the environment must not reroute a probe of localhost.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_json(url: str, timeout: float) -> tuple[int, Any]:
    try:
        with _opener().open(url, timeout=timeout) as response:
            code, body = response.status, response.read(MAX_HEALTH_BYTES)
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read(MAX_HEALTH_BYTES)
        exc.close()
    try:
        return code, json.loads(body)
    except ValueError:
        return code, None


def wait_healthy(base: str, *, wait: float, timeout: float) -> dict[str, Any]:
    """The health report once it says healthy (HTTP 200); ProbeFailed after `wait` seconds."""
    url = f"{base}/api/health"
    deadline = time.monotonic() + wait
    last = "no answer yet"
    while True:
        try:
            code, report = _get_json(url, timeout)
        except (urllib.error.URLError, OSError) as exc:
            last = f"cannot reach {url}: {getattr(exc, 'reason', exc)}"
        else:
            if code == 200 and isinstance(report, dict) and report.get("status") == "healthy":
                return report
            last = f"HTTP {code}, {_health_summary(report)}"
        if time.monotonic() >= deadline:
            raise ProbeFailed(f"health: not healthy within {wait:g} s; last: {last}")
        time.sleep(1.0)


def _health_summary(report: Any) -> str:
    if not isinstance(report, dict):
        return "no JSON health report"
    text = f"status {report.get('status', 'unknown')}"
    startup = report.get("startup")
    if isinstance(startup, dict):
        text += f", start-up {startup.get('phase')} at {startup.get('step')!r}"
        if startup.get("error"):
            text += f": {startup['error']}"
    return text


def _events(response: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of an SSE stream's `data:` lines, one event per blank-line block."""
    data: list[str] = []
    for raw in response:
        if len(raw) > MAX_EVENT_BYTES:
            raise ProbeFailed("chat: an event line is over 1 MiB")
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            yield _event("\n".join(data))
            data = []
    if data:
        yield _event("\n".join(data))


def _event(payload: str) -> dict[str, Any]:
    try:
        event = json.loads(payload)
    except ValueError:
        raise ProbeFailed(f"chat: an event is not JSON: {payload[:80]!r}") from None
    if not isinstance(event, dict):
        raise ProbeFailed(f"chat: an event is not a JSON object: {payload[:80]!r}")
    return event


def ask(base: str, question: str, *, timeout: float) -> Answer:
    """POST /api/chat and check the stream: metadata, >= 1 token, done with sources."""
    # The scheme is checked in run(): http or https only.
    request = urllib.request.Request(  # noqa: S310
        f"{base}/api/chat",
        data=json.dumps({"message": question}).encode(),
        headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
        method="POST",
    )
    answer = Answer()
    try:
        with _opener().open(request, timeout=timeout) as response:
            kind = response.headers.get("Content-Type", "")
            if not kind.startswith("text/event-stream"):
                raise ProbeFailed(f"chat: HTTP {response.status} with Content-Type {kind!r}")
            for event in _events(response):
                _take(answer, event)
    except urllib.error.HTTPError as exc:
        body = exc.read(4096).decode("utf-8", "replace")
        exc.close()
        raise ProbeFailed(f"chat: HTTP {exc.code}: {body[:200]}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ProbeFailed(f"chat: {getattr(exc, 'reason', exc)}") from None
    _check(answer)
    return answer


def _take(answer: Answer, event: dict[str, Any]) -> None:
    kind = str(event.get("type"))
    answer.types.append(kind)
    if kind == "error":
        raise ProbeFailed(f"chat: error event {event.get('code')}: {event.get('message')}")
    if kind == "metadata":
        answer.conversation_id = str(event.get("conversation_id") or "")
    elif kind == "token":
        content = event.get("content")
        if isinstance(content, str) and content:
            answer.tokens += 1
            answer.text += content
    elif kind == "done":
        sources = event.get("sources")
        answer.sources = (
            [s for s in sources if isinstance(s, dict)] if isinstance(sources, list) else []
        )


def _check(answer: Answer) -> None:
    order = " ".join(dict.fromkeys(answer.types)) or "nothing"
    if not answer.types or answer.types[0] != "metadata":
        raise ProbeFailed(f"chat: the stream did not start with metadata (saw: {order})")
    if not answer.conversation_id:
        raise ProbeFailed("chat: metadata carries no conversation_id")
    if answer.tokens == 0:
        raise ProbeFailed(f"chat: no token event with text (saw: {order})")
    if answer.types[-1] != "done":
        raise ProbeFailed(f"chat: the stream did not end with done (saw: {order})")
    if not answer.sources:
        raise ProbeFailed("chat: done carries no sources")
    if not all(isinstance(s.get("url"), str) and s["url"] for s in answer.sources):
        raise ProbeFailed("chat: a source has no url")


def stored_messages(base: str, conversation_id: str, *, timeout: float) -> int:
    """How many messages GET /api/conversation/{id} returns; ProbeFailed unless question+answer."""
    try:
        code, document = _get_json(f"{base}/api/conversation/{conversation_id}", timeout)
    except (urllib.error.URLError, OSError) as exc:
        raise ProbeFailed(f"conversation: {getattr(exc, 'reason', exc)}") from None
    messages = document.get("messages") if isinstance(document, dict) else None
    if code != 200 or not isinstance(messages, list):
        raise ProbeFailed(f"conversation: HTTP {code} without a message list")
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    if roles[-2:] != ["user", "assistant"]:
        raise ProbeFailed(f"conversation: stored roles are {roles}, not a question and its answer")
    return len(messages)


def run(base: str, *, question: str, wait: float, timeout: float) -> str:
    """The whole probe; the one line to print on success."""
    base = base.rstrip("/")
    if urlsplit(base).scheme not in {"http", "https"} or not urlsplit(base).hostname:
        raise ProbeFailed(f"{base!r} is not an http:// or https:// URL")
    started = time.monotonic()
    health = wait_healthy(base, wait=wait, timeout=timeout)
    healthy_after = time.monotonic() - started
    answer = ask(base, question, timeout=timeout)
    stored = stored_messages(base, answer.conversation_id, timeout=timeout)
    index = health.get("index")
    served = ""
    if isinstance(index, dict):
        served = f", index {index.get('source')} ({index.get('chunks')} chunks)"
    return (
        f"ok: {base} healthy after {healthy_after:.1f} s{served}; answer of {len(answer.text)} "
        f"chars in {answer.tokens} token events with {len(answer.sources)} sources "
        f"(first {answer.sources[0]['url']}); conversation {answer.conversation_id} stored "
        f"{stored} messages"
    )


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The probe's arguments (shared by `python -m bookchat.probe` and `bookchat probe`)."""
    parser = parser or argparse.ArgumentParser(prog="python -m bookchat.probe")
    parser.description = (
        "Wait for /api/health to say healthy, ask one question and require metadata, tokens, "
        "done with sources, and the stored conversation. Exit 0 or 1, with one line."
    )
    parser.add_argument("url", help="the server's base URL, e.g. http://127.0.0.1:7860")
    parser.add_argument("--question", default=DEFAULT_QUESTION, help="what to ask")
    parser.add_argument(
        "--wait", type=float, default=180.0, help="seconds to wait for healthy (default: 180)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per network step (default: 60)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe; print one line; 0 when every step passed."""
    args = build_parser().parse_args(argv)
    return report(args)


def report(args: argparse.Namespace) -> int:
    """Handler shared with the CLI: print the verdict line, return the exit code."""
    try:
        line = run(args.url, question=args.question, wait=args.wait, timeout=args.timeout)
    except ProbeFailed as exc:
        print(f"probe failed: {exc}"[:MAX_LINE], flush=True)
        return 1
    print(line[:MAX_LINE], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
