"""The chat page in a real headless Chromium against a real bookchat on 127.0.0.1."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from bookchat.api.chat import BUDGET_SPENT_NOTICE, CLIENT_BUDGET_SPENT_NOTICE
from bookchat.api.deps import NOT_READY
from tests.browser.conftest import TEST_MODEL, Bookchat, PageEvents
from tests.fakes.gemini import FakeGemini, Reply

pytestmark = pytest.mark.browser

STORE_KEY = "bookchat.conversation_id"
SAMPLE_SITE = "http://localhost:3000/docs/"  # BOOKCHAT_SAMPLE_BOOK_URL + the docs route
WAIT_MS = 60_000  # waits for the service to answer; generous because CI machines are slow

# Records each rendering of the streaming answer while it is still marked busy.
WATCH_STREAM = """() => {
  window.__streamStates = [];
  new MutationObserver(() => {
    const answers = document.querySelectorAll("article.assistant");
    const last = answers[answers.length - 1];
    if (!last || !last.hasAttribute("aria-busy")) return;
    const body = last.querySelector(".answer-body");
    window.__streamStates.push(body ? body.textContent : "");
  }).observe(document.getElementById("log"), {childList: true, subtree: true,
                                               characterData: true});
}"""
FOCUSED = "() => [document.activeElement.id, document.activeElement.className]"
LAST_ANSWER_DONE = """() => {
  const answers = document.querySelectorAll("article.assistant");
  const last = answers[answers.length - 1];
  return Boolean(last) && !last.hasAttribute("aria-busy");
}"""


def ask(page: Page, question: str) -> None:
    """Type a question, press Enter, and wait until the answer has finished (or failed)."""
    before = page.locator("article.assistant").count()
    page.get_by_label("Ask a question").fill(question)
    page.get_by_label("Ask a question").press("Enter")
    expect(page.locator("article.assistant")).to_have_count(before + 1, timeout=WAIT_MS)
    page.wait_for_function(LAST_ANSWER_DONE, timeout=WAIT_MS)


def open_page(page: Page, server: Bookchat) -> None:
    """Load the page and wait until it has heard from /api/health."""
    page.goto(server.url)
    expect(page.locator("#answerer")).not_to_have_text("Checking the service…", timeout=WAIT_MS)


def assert_clean(events: PageEvents) -> None:
    """No script error, no dialog, no Content-Security-Policy or Trusted Types violation."""
    assert events.errors == []
    assert events.dialogs == []
    assert events.policy_violations == []


def stored_id(page: Page) -> str | None:
    return page.evaluate(f"() => localStorage.getItem({json.dumps(STORE_KEY)})")


# Asking, streaming, citing -------------------------------------------------------------------


def test_offline_answer_cites_the_book_pages(
    page: Page, page_events: PageEvents, bookchat: Bookchat, artifacts: Path
) -> None:
    open_page(page, bookchat)
    expect(page.locator("#answerer")).to_contain_text("Offline answerer")
    ask(page, "How do I install bookchat?")

    answer = page.locator("article.assistant").last
    expect(answer.locator(".error")).to_have_count(0)
    cites = answer.locator(".answer-body a.cite")
    assert cites.count() >= 1, answer.inner_text()

    # The links are exactly the sources the service stored for this answer, in order.
    conversation_id = stored_id(page)
    assert conversation_id is not None
    stored = httpx.get(f"{bookchat.url}/api/conversation/{conversation_id}", timeout=10).json()
    sources = stored["messages"][-1]["sources"]
    assert sources, stored
    for i in range(cites.count()):
        number = int(cites.nth(i).inner_text())
        assert cites.nth(i).get_attribute("href") == sources[number - 1]["url"]
        assert cites.nth(i).get_attribute("href").startswith(SAMPLE_SITE)
    # bookchat serves the same page at the same route (where the demo's citations point).
    route = sources[0]["url"].removeprefix("http://localhost:3000").split("#")[0]
    opened = httpx.get(f"{bookchat.url}{route}", timeout=10)
    assert opened.status_code == 200
    assert f"<h1>{sources[0]['title']}" in opened.text
    # Sources lists exactly what the answer cites, under its own number; the rest apart.
    cited = sorted({int(cites.nth(i).inner_text()) for i in range(cites.count())})
    listed = answer.locator(".sources ol > li")
    assert sorted(listed.evaluate_all("items => items.map(li => li.value)")) == cited
    related = answer.locator(".sources .related li")
    expect(related).to_have_count(len(sources) - len(cited))
    first = listed.first.locator("a")
    source = sources[cited[0] - 1]
    expect(first).to_have_text(source["title"])
    expect(first).to_have_attribute("href", source["url"])
    expect(first).to_have_attribute("rel", "noopener noreferrer")
    if source["heading"] and source["heading"] != source["title"]:
        # Page and heading are both on screen, not only in a tooltip.
        expect(listed.first.locator(".heading")).to_be_visible()
        expect(listed.first).to_contain_text(source["heading"])

    # The question left the input once the service took it; the answer reached the live region.
    expect(page.get_by_label("Ask a question")).to_have_value("")
    expect(page.locator("#announcer")).to_have_attribute("aria-live", "polite")
    assert page.locator("#announcer").inner_text().strip()
    page.screenshot(path=str(artifacts / "chat-page.png"), full_page=True)
    assert_clean(page_events)


def test_answer_streams_in_as_tokens_arrive(
    page: Page, page_events: PageEvents, bookchat_gemini: Bookchat, fake_model: FakeGemini
) -> None:
    words = " ".join(f"word{n}" for n in range(30))
    fake_model.script(Reply(f"Streaming answer: {words} [1]", tokens_per_second=15))
    open_page(page, bookchat_gemini)
    page.evaluate(WATCH_STREAM)
    ask(page, "What does the chat API stream?")

    answer = page.locator("article.assistant").last
    expect(answer.locator(".answer-body")).to_contain_text("word29")
    states = [s for s in page.evaluate("() => window.__streamStates") if "Streaming" in s]
    partial = [s for s in states if "word29" not in s]
    # Several renderings before the last token, each a prefix of the finished text.
    assert len(set(partial)) >= 3, states
    final = answer.locator(".answer-body").inner_text()
    assert all(final.replace("\n", "").startswith(s.strip()) for s in partial if s.strip())
    expect(answer.locator("a.cite").first).to_have_attribute(
        "href", re.compile("^" + re.escape(SAMPLE_SITE))
    )
    assert_clean(page_events)


def test_model_html_is_shown_as_text(
    page: Page, page_events: PageEvents, bookchat_gemini: Bookchat, fake_model: FakeGemini
) -> None:
    attack = (
        'Look: <img src=x onerror="window.__pwned=1;alert(1)"> and '
        "<script>window.__pwned=2</script> and <b>bold</b> and "
        "[click me](javascript:window.__pwned=3) and "
        '<a href="javascript:alert(4)">link</a> [1]'
    )
    fake_model.script(Reply(attack))
    open_page(page, bookchat_gemini)
    ask(page, "Show me some markup")

    log = page.locator("#log")
    body = page.locator("article.assistant").last.locator(".answer-body")
    expect(body).to_contain_text('<img src=x onerror="window.__pwned=1;alert(1)">')
    expect(body).to_contain_text("<script>window.__pwned=2</script>")
    expect(log.locator("img")).to_have_count(0)
    expect(log.locator("script")).to_have_count(0)
    expect(log.locator("b")).to_have_count(0)
    hrefs = log.locator("a").evaluate_all("links => links.map(a => a.href)")
    assert all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
    page.wait_for_timeout(300)  # let a (wrongly) created image fail and fire its handler
    assert page.evaluate("() => window.__pwned") is None
    assert_clean(page_events)


def test_gemini_answerer_is_named(page: Page, bookchat_gemini: Bookchat) -> None:
    open_page(page, bookchat_gemini)
    expect(page.locator("#answerer")).to_have_text(f"Answers by Gemini ({TEST_MODEL})")


# Conversation across reloads ------------------------------------------------------------------


def test_reload_restores_the_conversation_and_new_chat_forgets_it(
    page: Page, page_events: PageEvents, bookchat: Bookchat
) -> None:
    open_page(page, bookchat)
    ask(page, "Where are conversations stored?")
    conversation_id = stored_id(page)
    assert conversation_id is not None
    assert uuid.UUID(conversation_id)
    answer_text = page.locator("article.assistant .answer-body").last.inner_text()
    cite_hrefs = page.locator("article.assistant a.cite").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )

    page.reload()
    expect(page.locator("article.user")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("article.user")).to_contain_text("Where are conversations stored?")
    expect(page.locator("article.assistant .answer-body")).to_have_text(answer_text)
    assert (
        page.locator("article.assistant a.cite").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
        == cite_hrefs
    )
    expect(page.locator("article.assistant .sources li").first).to_be_visible()

    # A follow-up continues the same conversation.
    ask(page, "And how do I use PostgreSQL for them?")
    assert stored_id(page) == conversation_id
    expect(page.locator("article.user")).to_have_count(2)

    page.get_by_role("button", name="New chat").click()
    expect(page.locator("article")).to_have_count(0)
    assert stored_id(page) is None
    page.reload()
    open_page(page, bookchat)
    expect(page.locator("article")).to_have_count(0)
    assert_clean(page_events)


def test_an_unknown_stored_conversation_is_forgotten(page: Page, bookchat: Bookchat) -> None:
    open_page(page, bookchat)
    page.evaluate(f"() => localStorage.setItem({json.dumps(STORE_KEY)}, '{uuid.uuid4()}')")
    with page.expect_response("**/api/conversation/*") as response:
        page.reload()
    assert response.value.status == 404
    page.wait_for_function(f"() => localStorage.getItem({json.dumps(STORE_KEY)}) === null")
    expect(page.locator("article")).to_have_count(0)
    expect(page.locator("#form-error")).to_have_text("")


def test_a_conversation_still_being_answered_is_shown_and_read_again(
    page: Page, page_events: PageEvents, bookchat: Bookchat
) -> None:
    # Reloaded while a server process still answers the last question: the page says so and
    # reads the conversation again until the answer is stored, then shows it.
    open_page(page, bookchat)
    ask(page, "Where are conversations stored?")
    conversation_id = stored_id(page)
    stored = httpx.get(f"{bookchat.url}/api/conversation/{conversation_id}", timeout=10).json()
    assert stored["answering"] is False
    waiting = {**stored, "messages": stored["messages"][:1], "answering": True}
    reads = {"n": 0}

    def conversation(route) -> None:
        reads["n"] += 1
        if reads["n"] <= 2:
            route.fulfill(status=200, content_type="application/json", body=json.dumps(waiting))
        else:
            route.continue_()

    page.route("**/api/conversation/*", conversation)
    page.reload()
    expect(page.locator("article.user")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("article.assistant")).to_have_count(1)
    expect(page.locator("article.assistant")).to_contain_text("Still being answered")
    expect(page.locator("article.assistant .sources li").first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("article.assistant")).not_to_contain_text("Still being answered")
    expect(page.locator("article.assistant")).to_have_count(1)
    assert reads["n"] == 3
    assert_clean(page_events)


# Health, errors, and the reader's question -----------------------------------------------------


def _health(status: str, **services: dict) -> str:
    return json.dumps({"status": status, "services": services, "startup": {"step": "indexing"}})


def test_waking_service_is_announced_and_retried(page: Page, bookchat: Bookchat) -> None:
    calls = {"health": 0}

    def health(route) -> None:
        calls["health"] += 1
        if calls["health"] <= 2:
            route.fulfill(status=503, content_type="application/json", body=_health("starting"))
        else:
            route.continue_()

    page.route("**/api/health", health)
    page.goto(bookchat.url)
    banner = page.locator("#banner")
    expect(banner).to_contain_text("waking up")
    expect(banner).to_contain_text("indexing")
    expect(banner).to_be_hidden(timeout=WAIT_MS)
    assert calls["health"] >= 3
    expect(page.locator("#answerer")).to_contain_text("Offline answerer")


def test_degraded_service_is_shown_plainly(page: Page, bookchat: Bookchat) -> None:
    degraded = _health(
        "degraded",
        llm={"status": "down", "backend": "gemini", "model": "m", "error": "quota exhausted"},
        database={"status": "up"},
    )
    page.route(
        "**/api/health",
        lambda route: route.fulfill(status=503, content_type="application/json", body=degraded),
    )
    page.goto(bookchat.url)
    banner = page.locator("#banner")
    expect(banner).to_contain_text("degraded")
    expect(banner).to_contain_text("llm: down (quota exhausted)")
    expect(banner).not_to_contain_text("database")
    expect(page.locator("#answerer")).to_have_text("Answers by Gemini (m)")


def test_a_refused_question_stays_in_the_input(page: Page, bookchat: Bookchat) -> None:
    open_page(page, bookchat)
    page.route(
        "**/api/chat",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body=json.dumps({"detail": "The service is still starting.", "code": "unavailable"}),
        ),
    )
    ask(page, "Is my question kept?")
    expect(page.locator("#form-error")).to_contain_text("The service is still starting.")
    expect(page.get_by_label("Ask a question")).to_have_value("Is my question kept?")
    # The reason is said once, next to Send; the answer only says it was not answered.
    expect(page.locator("article.assistant .error")).to_have_text("Not answered.")


def test_a_failure_mid_stream_is_shown_and_the_question_restored(
    page: Page, bookchat: Bookchat
) -> None:
    open_page(page, bookchat)
    events = [
        {"type": "metadata", "conversation_id": str(uuid.uuid4())},
        {"type": "token", "content": "Half an ans"},
        {"type": "error", "code": "llm_unavailable", "message": "The model stopped answering."},
    ]
    stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    page.route(
        "**/api/chat",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream),
    )
    ask(page, "Will this fail?")
    answer = page.locator("article.assistant").last
    expect(answer).to_contain_text("Half an ans")
    expect(answer.locator(".error")).to_have_text("The answer stopped here.")
    expect(page.locator("#form-error")).to_contain_text("The model stopped answering.")
    expect(page.get_by_label("Ask a question")).to_have_value("Will this fail?")


def test_a_database_that_refuses_is_explained_once_in_plain_words(
    page: Page, bookchat: Bookchat
) -> None:
    # What bookchat serves while its database refuses connections (tests/api/test_health.py
    # checks the server's side of these words).
    sentence = "127.0.0.1:5999: connection refused: is the server running and the port right?"
    error = f"creating the conversation tables failed: {sentence}"
    unhealthy = json.dumps(
        {
            "status": "unhealthy",
            "services": {
                "database": {"status": "down", "backend": "postgresql", "detail": sentence},
                "llm": {"status": "up", "backend": "offline", "model": "extractive"},
            },
            "startup": {
                "phase": "failed",
                "step": "creating the conversation tables",
                "error": error,
            },
        }
    )
    page.route(
        "**/api/health",
        lambda route: route.fulfill(status=503, content_type="application/json", body=unhealthy),
    )
    page.route(
        "**/api/chat",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body=json.dumps(
                {
                    "detail": NOT_READY,
                    "code": "unavailable",
                }
            ),
        ),
    )
    page.goto(bookchat.url)
    expect(page.locator("#banner")).to_contain_text(sentence)
    ask(page, "Is anyone there?")
    expect(page.locator("#form-error")).to_contain_text("the notice at the top says why")
    expect(page.get_by_label("Ask a question")).to_have_value("Is anyone there?")
    expect(page.locator("article.assistant .error")).to_have_text("Not answered.")
    assert page.locator("body").inner_text().count("connection refused") == 1
    assert "OperationalError" not in page.content()


def test_an_unreachable_service_is_reported(page: Page, bookchat: Bookchat) -> None:
    page.route("**/api/health", lambda route: route.abort("connectionrefused"))
    page.goto(bookchat.url)
    expect(page.locator("#banner")).to_contain_text("Cannot reach the chat service")


# Selection mode, keyboard, small screens, the renderer ----------------------------------------


def test_selected_text_is_sent_as_context(
    page: Page, page_events: PageEvents, bookchat: Bookchat
) -> None:
    open_page(page, bookchat)
    page.get_by_text("Ask about a passage").click()
    passage = "bookchat keeps each conversation in PostgreSQL or, locally, in SQLite."
    page.get_by_label("Selected text").fill(passage)
    with page.expect_request("**/api/chat") as request:
        ask(page, "What does this mean?")
    sent = request.value.post_data_json
    assert sent["mode"] == "selection"
    assert sent["context"] == passage
    assert sent["message"] == "What does this mean?"
    expect(page.locator("article.user").last.locator("blockquote")).to_have_text(passage)
    expect(page.locator("article.assistant").last.locator(".error")).to_have_count(0)
    assert_clean(page_events)


def test_keyboard_only_use(page: Page, bookchat: Bookchat) -> None:
    open_page(page, bookchat)
    visited = []
    for _ in range(3):
        page.keyboard.press("Tab")
        visited.append(page.evaluate("() => document.activeElement.id"))
    assert visited == ["new-chat", "selection-summary", "question"]
    page.keyboard.type("How do I install")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("bookchat?")
    expect(page.get_by_label("Ask a question")).to_have_value("How do I install\nbookchat?")
    page.keyboard.press("Enter")
    expect(page.locator("article.user .text")).to_have_text("How do I install\nbookchat?")
    page.wait_for_function(LAST_ANSWER_DONE, timeout=WAIT_MS)
    # Send is re-enabled when the stream has closed, a moment after the done event renders;
    # a disabled button is skipped by Tab, so wait for it as a keyboard user would.
    expect(page.locator("#send")).to_be_enabled()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "send"
    # Backwards through the answer's links (citations, sources) up to New chat.
    reached_citation = False
    for _ in range(60):
        page.keyboard.press("Shift+Tab")
        focused = page.evaluate(
            "() => [document.activeElement.id, document.activeElement.className]"
        )
        reached_citation = reached_citation or focused[1] == "cite"
        if focused[0] == "new-chat":
            break
    assert focused[0] == "new-chat"
    assert reached_citation
    page.keyboard.press("Enter")
    expect(page.locator("article")).to_have_count(0)
    assert page.evaluate("() => document.activeElement.id") == "question"


def test_phone_width_has_no_horizontal_scroll(
    browser, bookchat_gemini: Bookchat, fake_model: FakeGemini, artifacts: Path
) -> None:
    fake_model.script(
        Reply(
            "A long address: https://example.com/"
            + "a" * 150
            + " and a long word "
            + "x" * 120
            + " [1]\n\n```\n"
            + "code " * 60
            + "\n```\n\n- a list item [2]"
        )
    )
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        page = context.new_page()
        open_page(page, bookchat_gemini)
        ask(page, "Give me something wide")
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
            " document.body.scrollWidth]"
        )
        assert widths[0] <= widths[1], widths
        assert widths[2] <= widths[1], widths
        expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
        # The page follows the answer to its end: the sources list is on screen.
        expect(page.locator("article.assistant .answer-tools").last).to_be_in_viewport()
        page.screenshot(path=str(artifacts / "chat-page-375.png"))
    finally:
        context.close()


def test_html_parsing_sinks_are_refused_by_the_policy(page: Page, bookchat: Bookchat) -> None:
    open_page(page, bookchat)
    outcome = page.evaluate(
        "() => { try { document.body.innerHTML = '<img src=x>'; return 'allowed'; }"
        " catch (e) { return e.name; } }"
    )
    assert outcome == "TypeError"


RENDER = """([text, sources]) => {
  const box = document.createElement("div");
  box.append(bookchatMarkdown.render(text, sources));
  const all = [...box.querySelectorAll("*")];
  return {
    html: box.innerHTML,
    tags: [...new Set(all.map((e) => e.tagName.toLowerCase()))],
    attributes: [...new Set(all.flatMap((e) => [...e.attributes].map((a) => a.name)))],
  };
}"""
TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "a",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "hr",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ATTRIBUTES = {
    "href",
    "target",
    "rel",
    "class",
    "aria-label",
    "start",
    "data-language",
    "data-align",
}
SOURCES = [
    {"url": "https://book.example/a#x", "title": "A", "heading": "X"},
    {"url": "https://book.example/b", "title": "B", "heading": ""},
    {"url": "/docs/relative", "title": "Relative", "heading": ""},
    {"url": "javascript:alert(1)", "title": "Evil", "heading": ""},
]
CASES = [
    ("**b** *i* `c`", "<p><strong>b</strong> <em>i</em> <code>c</code></p>"),
    ("<b>x</b> & <img src=x>", "<p>&lt;b&gt;x&lt;/b&gt; &amp; &lt;img src=x&gt;</p>"),
    ("line one\nline two\n\nnext", "<p>line one<br>line two</p><p>next</p>"),
    ("- one\n- two *three*", "<ul><li>one</li><li>two <em>three</em></li></ul>"),
    ("3. c\n4. d", '<ol start="3"><li>c</li><li>d</li></ol>'),
    ("- a\n  - nested", "<ul><li>a<ul><li>nested</li></ul></li></ul>"),
    ("```python\n<x> **y**\n```", '<pre><code data-language="python">&lt;x&gt; **y**</code></pre>'),
    ("`<i>`", "<p><code>&lt;i&gt;</code></p>"),
    (
        "[site](https://e.com/p?q=1)",
        '<p><a href="https://e.com/p?q=1" target="_blank" rel="noopener noreferrer">site</a></p>',
    ),
    ("[bad](javascript:alert(1))", "<p>[bad](javascript:alert(1))</p>"),
    ("[bad](javascript:alert)", "<p>bad</p>"),
    ("[relative](./guide)", "<p>relative</p>"),
    ('[x](https://e.com/"onmouseover=alert(1))', None),
    (
        "see [1]",
        '<p>see [<a href="https://book.example/a#x" target="_blank" rel="noopener noreferrer"'
        ' class="cite" aria-label="Source 1: A – X">1</a>]</p>',
    ),
    ("[3] and [9]", "<p>[3] and [9]</p>"),
    ("# Title", "<h3>Title</h3>"),
    ("> quoted <b>", "<blockquote><p>quoted &lt;b&gt;</p></blockquote>"),
    ("2 * 3 * 4 and snake_case_name", "<p>2 * 3 * 4 and snake_case_name</p>"),
    (
        "| a | b |\n|:--|--:|\n| `x\\|y` | **y** | extra |\n| only |",
        '<div class="table-wrap"><table><thead><tr><th data-align="left">a</th>'
        '<th data-align="right">b</th></tr></thead><tbody><tr><td data-align="left">'
        '<code>x|y</code></td><td data-align="right"><strong>y</strong></td></tr><tr>'
        '<td data-align="left">only</td><td data-align="right"></td></tr></tbody></table></div>',
    ),
    (
        "intro\n| h |\n| - |\n| <b>c</b> |",
        '<p>intro</p><div class="table-wrap"><table><thead><tr><th>h</th></tr></thead>'
        "<tbody><tr><td>&lt;b&gt;c&lt;/b&gt;</td></tr></tbody></table></div>",
    ),
    ("a | b\n---", None),
]


def test_markdown_renderer(page: Page, bookchat: Bookchat) -> None:
    open_page(page, bookchat)
    for text, expected in CASES:
        rendered = page.evaluate(RENDER, [text, SOURCES])
        assert set(rendered["tags"]) <= TAGS, text
        assert set(rendered["attributes"]) <= ATTRIBUTES, text
        if expected is not None:
            assert rendered["html"] == expected, text
    # [1, 2] links both; a source without an absolute http(s) URL is never a link.
    rendered = page.evaluate(RENDER, ["both [1, 2] and [3]", SOURCES])
    assert rendered["html"].count('class="cite"') == 2
    assert 'href="https://book.example/a#x"' in rendered["html"]
    assert 'href="https://book.example/b"' in rendered["html"]
    assert "javascript" not in rendered["html"]
    rendered = page.evaluate(RENDER, ["relative [1] and evil [2]", SOURCES[2:]])
    assert "<a" not in rendered["html"]


# Answers readers can trust: tables, code, copying, what the sources are ------------------------


def test_code_tables_copy_and_links_elsewhere(
    browser, bookchat_gemini: Bookchat, fake_model: FakeGemini
) -> None:
    fake_model.script(
        Reply(
            "Run this [2]:\n\n```sh\npip install bookchat && bookchat serve --host 0.0.0.0 "
            + "--port 7860 " * 12
            + "\n```\n\n| variable | default |\n|---|---|\n| `PORT` | 8000 |\n\n"
            "Also see [the login page](https://evil.example/login) and "
            "[the book](http://localhost:3000/docs/intro)."
        )
    )
    context = browser.new_context(viewport={"width": 700, "height": 850})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        open_page(page, bookchat_gemini)
        ask(page, "How do I run it?")
        answer = page.locator("article.assistant").last
        expect(answer.locator("table td code")).to_have_text("PORT")
        block = answer.locator(".code-block")
        expect(block.locator(".language")).to_have_text("sh")
        # The block is wider than the answer: it says so, and scrolls inside itself.
        expect(block).to_have_class(re.compile(r"\bscrolls\b"))
        expect(block.locator(".scroll-cue")).to_be_visible()
        block.get_by_role("button", name="Copy code").click()
        expect(block.get_by_role("button", name="Copy code")).to_have_text("Copied")
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert copied.startswith("pip install bookchat && bookchat serve")
        assert "Copy" not in copied
        # Another site's link is text with its address; the book's own stays a link.
        expect(answer.locator(".foreign-link")).to_have_text(
            "the login page (https://evil.example/login)"
        )
        expect(answer.get_by_role("link", name="the book")).to_have_attribute(
            "href", "http://localhost:3000/docs/intro"
        )
        expect(answer.locator(".sources ol > li")).to_have_count(1)
        expect(answer.locator(".sources ol > li")).to_have_js_property("value", 2)
        answer.get_by_role("button", name="Copy answer").click()
        text = page.evaluate("() => navigator.clipboard.readText()")
        assert text.startswith("Run this [2]:")
        assert "\nSources:\n[2] " in text
    finally:
        context.close()


def test_a_refusal_shows_no_sources(
    page: Page, bookchat_gemini: Bookchat, fake_model: FakeGemini
) -> None:
    fake_model.script(Reply("The book does not seem to cover this."))
    open_page(page, bookchat_gemini)
    ask(page, "What is the capital of France?")
    answer = page.locator("article.assistant").last
    expect(answer.locator(".answer-body")).to_have_text("The book does not seem to cover this.")
    expect(answer.locator(".sources")).to_have_count(0)
    expect(answer.locator("a")).to_have_count(0)


def test_too_many_questions_keeps_the_question(page: Page, bookchat: Bookchat) -> None:
    open_page(page, bookchat)
    page.route(
        "**/api/chat",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "30"},
            content_type="application/json",
            body=json.dumps({"detail": "slow down", "code": "rate_limited"}),
        ),
    )
    ask(page, "Am I asking too often?")
    expect(page.locator("#form-error")).to_contain_text("Too many questions right now")
    expect(page.locator("#form-error")).to_contain_text("30 s")
    expect(page.get_by_label("Ask a question")).to_have_value("Am I asking too often?")


@pytest.mark.parametrize(
    "notice", [BUDGET_SPENT_NOTICE, CLIENT_BUDGET_SPENT_NOTICE], ids=["total", "client_share"]
)
def test_spent_daily_budget_is_said(page: Page, bookchat: Bookchat, notice: dict) -> None:
    # Past everyone's budget or past this reader's own share: the server's sentence is shown.
    open_page(page, bookchat)
    events = [
        {
            "type": "metadata",
            "conversation_id": str(uuid.uuid4()),
            "answerer": {"backend": "offline", "model": "extractive"},
            "notice": notice,
        },
        {"type": "token", "content": "Quoted from the book."},
        {"type": "done", "sources": []},
    ]
    stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    page.route(
        "**/api/chat",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=stream),
    )
    ask(page, "Is Gemini answering?")
    expect(page.locator("#banner")).to_have_text(notice["message"])
    expect(page.locator("#answerer")).to_contain_text("offline for today")


def test_vote_buttons_are_legible(page: Page, bookchat: Bookchat) -> None:
    open_page(page, bookchat)
    ask(page, "How do I install bookchat?")
    vote = page.locator("article.assistant").last.get_by_role("button", name="Not helpful")
    colours = vote.evaluate(
        "b => [getComputedStyle(b).color, getComputedStyle(b.closest('article')).backgroundColor]"
    )
    assert colours[0] != colours[1]
