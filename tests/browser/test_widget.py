"""The embeddable widget (/widget.js) on a Docusaurus-shaped book page, in headless Chromium.

The book page is tests/browser/host/docusaurus-page.html, served by Playwright as
http://localhost:3000/docs/... (the sample book's own site, so its citations are same-site),
while bookchat runs on 127.0.0.1 and allows that origin through ALLOWED_ORIGINS: the widget
talks to it cross-origin, exactly as on a real book.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import BOOK_ORIGIN, Bookchat, PageEvents, service_env
from tests.fakes.gemini import FakeGemini, Reply

pytestmark = pytest.mark.browser

HOST_PAGE = (Path(__file__).parent / "host" / "docusaurus-page.html").read_text()
BOOK_PAGE = f"{BOOK_ORIGIN}/docs/getting-started/installation"
WAIT_MS = 60_000
# Elements of the book's own page whose every computed property must survive the widget.
HOST_ELEMENTS = [
    "html",
    "body",
    "#__docusaurus",
    "nav.navbar",
    ".navbar__brand",
    ".menu__link",
    "main",
    "h1",
    "#lead",
    "#selectable",
    "#host-link",
    "code",
    ".theme-admonition",
]
COMPUTED_STYLES = """(selectors) => Object.fromEntries(selectors.map((selector) => {
  const style = getComputedStyle(document.querySelector(selector));
  return [selector, Object.fromEntries([...style].map((p) => [p, style.getPropertyValue(p)]))];
}))"""
# Inside the widget's shadow root: is the last answer finished (or failed)?
LAST_ANSWER_DONE = """() => {
  const root = document.querySelector("bookchat-widget").shadowRoot;
  const answers = root.querySelectorAll("article.assistant");
  const last = answers[answers.length - 1];
  return Boolean(last) && !last.hasAttribute("aria-busy");
}"""
WATCH_STREAM = """() => {
  window.__streamStates = [];
  const log = document.querySelector("bookchat-widget").shadowRoot.querySelector(".log");
  new MutationObserver(() => {
    const answers = log.querySelectorAll("article.assistant");
    const last = answers[answers.length - 1];
    if (!last || !last.hasAttribute("aria-busy")) return;
    window.__streamStates.push(last.querySelector(".answer-body").textContent);
  }).observe(log, {childList: true, subtree: true, characterData: true});
}"""
SHADOW_FOCUS = """() => {
  const active = document.activeElement;
  if (!active || active.tagName !== "BOOKCHAT-WIDGET") return [active && active.tagName, ""];
  const inner = active.shadowRoot.activeElement;
  return ["BOOKCHAT-WIDGET", inner ? (inner.id || inner.className) : ""];
}"""


def book_page_html(server: Bookchat, attributes: str = "", theme: str = "light") -> str:
    """The host page with the widget's script tag, as a book's docusaurus.config adds it."""
    tag = f'<script src="{server.url}/widget.js" defer {attributes}></script>'
    html = HOST_PAGE.replace("WIDGET_SCRIPT", tag)
    return html.replace('data-theme="light"', f'data-theme="{theme}"', 1)


def serve_book(page: Page, html: str) -> None:
    """Answer every document request to the book's origin with the host page."""

    def fulfil(route: Route) -> None:
        if route.request.resource_type == "document":
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
        else:
            route.fulfill(status=404, body="")

    page.route(f"{BOOK_ORIGIN}/**", fulfil)


def open_book(page: Page, server: Bookchat, attributes: str = "", theme: str = "light") -> None:
    serve_book(page, book_page_html(server, attributes, theme))
    page.goto(BOOK_PAGE)
    expect(page.get_by_role("button", name="Ask the book")).to_be_visible(timeout=WAIT_MS)


def widget(page: Page):
    return page.locator("bookchat-widget")


def open_widget(page: Page) -> None:
    page.get_by_role("button", name="Ask the book").click()
    expect(widget(page).locator(".panel")).to_be_visible()
    expect(widget(page).locator(".answerer")).not_to_have_text("", timeout=WAIT_MS)


def ask(page: Page, question: str) -> None:
    """Type into the widget, press Enter, wait for the answer to finish (or fail)."""
    answers = widget(page).locator("article.assistant")
    before = answers.count()
    box = widget(page).get_by_label("Ask a question")
    box.fill(question)
    box.press("Enter")
    expect(answers).to_have_count(before + 1, timeout=WAIT_MS)
    page.wait_for_function(LAST_ANSWER_DONE, timeout=WAIT_MS)


def assert_clean(events: PageEvents) -> None:
    assert events.errors == []
    assert events.dialogs == []
    assert events.policy_violations == []


# Asking, streaming, citing, isolation ----------------------------------------------------------


def test_widget_asks_streams_and_cites_without_touching_the_book(
    page: Page,
    page_events: PageEvents,
    bookchat_gemini: Bookchat,
    fake_model: FakeGemini,
    artifacts: Path,
) -> None:
    # Before: the same book page with the widget's script refused.
    serve_book(page, book_page_html(bookchat_gemini))
    page.route(f"{bookchat_gemini.url}/widget.js", lambda route: route.abort())
    page.goto(BOOK_PAGE)
    before = page.evaluate(COMPUTED_STYLES, HOST_ELEMENTS)
    page.unroute(f"{bookchat_gemini.url}/widget.js")

    words = " ".join(f"word{n}" for n in range(30))
    fake_model.script(
        Reply(
            f"Install it with pip [1]. {words}.\n\n| step | command |\n|---|---|\n"
            "| install | `pip install bookchat` |",
            tokens_per_second=20,
        )
    )
    page.goto(BOOK_PAGE)
    open_widget(page)
    # Focus moved into the panel, onto the question box.
    assert page.evaluate(SHADOW_FOCUS) == ["BOOKCHAT-WIDGET", "question"]
    page.evaluate(WATCH_STREAM)
    ask(page, "How do I install bookchat?")

    answer = widget(page).locator("article.assistant").last
    expect(answer.locator(".answer-body")).to_contain_text("word29")
    states = [s for s in page.evaluate("() => window.__streamStates") if "Install" in s]
    assert len({s for s in states if "word29" not in s}) >= 3, states
    # The citation goes to the book's page, on this site, opening in place.
    cite = answer.locator("a.cite").first
    expect(cite).to_have_attribute("href", re.compile("^" + re.escape(f"{BOOK_ORIGIN}/docs/")))
    assert cite.get_attribute("target") is None
    expect(answer.locator("table th").first).to_have_text("step")
    expect(answer.locator("table td code")).to_have_text("pip install bookchat")
    expect(answer.locator(".sources ol li")).to_have_count(1)
    expect(answer.locator(".sources ol li .heading")).to_be_visible()
    expect(widget(page).locator("[aria-live=polite]")).not_to_have_text("")

    after = page.evaluate(COMPUTED_STYLES, HOST_ELEMENTS)
    changed = {
        selector: {
            p: (before[selector][p], v) for p, v in props.items() if before[selector][p] != v
        }
        for selector, props in after.items()
    }
    assert all(not diff for diff in changed.values()), changed
    # The book's CSS did not reach in: the widget keeps its own font and button look.
    send = widget(page).get_by_role("button", name="Send")
    assert "Georgia" not in send.evaluate("b => getComputedStyle(b).fontFamily")
    assert send.evaluate("b => getComputedStyle(b).display") != "inline"
    assert widget(page).evaluate("h => h.shadowRoot.mode") == "open"
    page.screenshot(path=str(artifacts / "widget-light.png"))
    assert_clean(page_events)


def test_a_same_site_citation_navigates_and_the_conversation_follows(
    page: Page, page_events: PageEvents, bookchat: Bookchat
) -> None:
    open_book(page, bookchat)
    open_widget(page)
    ask(page, "Where are conversations stored?")
    answer = widget(page).locator("article.assistant").last
    cite = answer.locator("a.cite").first
    href = cite.get_attribute("href")
    assert href is not None
    assert href.startswith(f"{BOOK_ORIGIN}/docs/"), href
    with page.expect_navigation():
        cite.click()
    assert page.url == href
    # The new page opens the panel again with the same conversation, restored from the API.
    expect(widget(page).locator(".panel")).to_be_visible(timeout=WAIT_MS)
    expect(widget(page).locator("article.user")).to_have_text(
        re.compile("Where are conversations stored?"), timeout=WAIT_MS
    )
    expect(widget(page).locator("article.assistant a.cite").first).to_have_attribute("href", href)
    # The conversation is kept per site, under the API it belongs to.
    stored = page.evaluate("() => Object.keys(localStorage)")
    assert stored == [f"bookchat.widget.conversation:{bookchat.url}"], stored
    # Closing returns focus to the launcher; a reload keeps the panel closed.
    widget(page).get_by_role("button", name="Close").click()
    expect(widget(page).locator(".panel")).to_be_hidden()
    assert page.evaluate(SHADOW_FOCUS) == ["BOOKCHAT-WIDGET", "launcher"]
    page.reload()
    expect(page.get_by_role("button", name="Ask the book")).to_be_visible()
    expect(widget(page).locator(".panel")).to_be_hidden()
    assert_clean(page_events)


def test_ask_about_a_selection(page: Page, page_events: PageEvents, bookchat: Bookchat) -> None:
    open_book(page, bookchat)
    passage = page.locator("#selectable")
    passage.scroll_into_view_if_needed()
    box = passage.bounding_box()
    assert box is not None
    # Select the paragraph with the mouse, as a reader would.
    page.mouse.move(box["x"] + 1, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    selected = page.evaluate("() => document.getSelection().toString().trim()")
    assert "SQLite" in selected
    control = widget(page).get_by_role("button", name="Ask about this")
    expect(control).to_be_visible()
    # It appears next to the selection, not somewhere else on the screen.
    near = control.bounding_box()
    assert near is not None
    assert abs(near["y"] - (box["y"] + box["height"])) < 80
    control.click()
    expect(widget(page).locator(".context blockquote")).to_have_text(selected)
    with page.expect_request(re.compile(r".*/api/chat$")) as request:
        ask(page, "What does this mean?")
    sent = request.value.post_data_json
    assert sent == {"message": "What does this mean?", "mode": "selection", "context": selected}
    expect(widget(page).locator("article.user blockquote")).to_have_text(selected)
    expect(widget(page).locator("article.assistant .error")).to_have_count(0)
    # The selection is asked about once; the next question is a general one.
    expect(widget(page).locator(".context")).to_be_hidden()
    assert_clean(page_events)


# Themes, sizes, keyboard, options --------------------------------------------------------------


def _panel_colours(page: Page) -> tuple[str, str]:
    return (
        widget(page)
        .locator(".panel")
        .evaluate("p => [getComputedStyle(p).backgroundColor, getComputedStyle(p).color]")
    )


def test_dark_theme_follows_docusaurus(page: Page, bookchat: Bookchat, artifacts: Path) -> None:
    open_book(page, bookchat)
    open_widget(page)
    light = _panel_colours(page)
    page.evaluate("() => document.documentElement.setAttribute('data-theme', 'dark')")
    expect(widget(page).locator(".bookchat")).to_have_attribute("data-theme", "dark")
    dark = _panel_colours(page)
    assert dark != light

    def luminance(colour: str) -> float:
        r, g, b = (int(v) for v in re.findall(r"\d+", colour)[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    assert luminance(light[0]) > 200 > 60 > luminance(dark[0])
    assert luminance(dark[1]) > 150  # light text on the dark panel
    ask(page, "How do I install bookchat?")
    page.screenshot(path=str(artifacts / "widget-dark.png"))
    page.evaluate("() => document.documentElement.setAttribute('data-theme', 'light')")
    expect(widget(page).locator(".bookchat")).to_have_attribute("data-theme", "light")


def test_phone_width(browser, bookchat: Bookchat, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        page = context.new_page()
        open_book(page, bookchat)
        open_widget(page)
        panel = widget(page).locator(".panel").bounding_box()
        assert panel is not None
        assert (panel["x"], panel["y"], panel["width"], panel["height"]) == (0, 0, 375, 740)
        ask(page, "How do I install bookchat?")
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], widths
        log = widget(page).locator(".log")
        assert log.evaluate("l => l.scrollWidth <= l.clientWidth"), "the answer scrolls sideways"
        expect(widget(page).get_by_role("button", name="Send")).to_be_in_viewport()
        expect(widget(page).get_by_role("button", name="Close")).to_be_in_viewport()
        page.screenshot(path=str(artifacts / "widget-375.png"))
    finally:
        context.close()


def test_keyboard_only(page: Page, bookchat: Bookchat) -> None:
    open_book(page, bookchat)
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate(SHADOW_FOCUS) == ["BOOKCHAT-WIDGET", "launcher"]:
            break
    assert page.evaluate(SHADOW_FOCUS) == ["BOOKCHAT-WIDGET", "launcher"]
    page.keyboard.press("Enter")
    expect(widget(page).locator(".panel")).to_be_visible()
    assert page.evaluate(SHADOW_FOCUS) == ["BOOKCHAT-WIDGET", "question"]
    page.keyboard.type("How do I install bookchat?")
    page.keyboard.press("Enter")
    page.wait_for_function(LAST_ANSWER_DONE, timeout=WAIT_MS)
    expect(widget(page).locator("article.assistant a.cite").first).to_be_visible()
    # Backwards from the question box through the answer reaches a citation.
    reached = False
    for _ in range(30):
        page.keyboard.press("Shift+Tab")
        if page.evaluate(SHADOW_FOCUS)[1] == "cite":
            reached = True
            break
    assert reached
    page.keyboard.press("Escape")
    expect(widget(page).locator(".panel")).to_be_hidden()
    assert page.evaluate(SHADOW_FOCUS) == ["BOOKCHAT-WIDGET", "launcher"]


def test_data_attributes_configure_the_widget(page: Page, bookchat: Bookchat) -> None:
    starters = ["How do I install bookchat?", "Where are conversations stored?"]
    attributes = (
        'data-title="Ask the sample book" data-accent="#ffd000" data-position="bottom-left" '
        f"data-starters='{json.dumps(starters)}' data-api-base=\"{bookchat.url}/\""
    )
    open_book(page, bookchat, attributes)
    launcher = page.get_by_role("button", name="Ask the book")
    colours = launcher.evaluate(
        "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]"
    )
    assert colours[0] == "rgb(255, 208, 0)"
    assert colours[1] != "rgb(255, 255, 255)"  # dark text on a light accent
    box = launcher.bounding_box()
    assert box is not None
    assert box["x"] < 100
    open_widget(page)
    expect(widget(page).get_by_role("heading", name="Ask the sample book")).to_be_visible()
    buttons = widget(page).locator(".starters button")
    expect(buttons).to_have_text(starters)
    buttons.first.click()
    page.wait_for_function(LAST_ANSWER_DONE, timeout=WAIT_MS)
    expect(widget(page).locator("article.user .text")).to_have_text(starters[0])


def test_the_widget_script_is_served_for_any_site(bookchat: Bookchat) -> None:
    response = httpx.get(f"{bookchat.url}/widget.js", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    again = httpx.get(
        f"{bookchat.url}/widget.js", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


# Safety and errors -----------------------------------------------------------------------------

ATTACK = (
    'Look: <img src=x onerror="window.__pwned=1;alert(1)"> and '
    "<script>window.__pwned=2</script> and <b>bold</b> and "
    "[click me](javascript:window.__pwned=3) and "
    '<a href="javascript:alert(4)">link</a> and '
    "[your account](https://evil.example/login) and [9] and [1]"
)


def test_model_html_is_text_in_the_widget(
    page: Page, page_events: PageEvents, bookchat_gemini: Bookchat, fake_model: FakeGemini
) -> None:
    fake_model.script(Reply(ATTACK))
    open_book(page, bookchat_gemini)
    open_widget(page)
    ask(page, "Show me some markup")
    inside = widget(page).locator(".log")
    body = widget(page).locator("article.assistant .answer-body").last
    expect(body).to_contain_text('<img src=x onerror="window.__pwned=1;alert(1)">')
    expect(body).to_contain_text("<script>window.__pwned=2</script>")
    for tag in ("img", "script", "b"):
        expect(inside.locator(tag)).to_have_count(0)
    # A link to another site is shown as its text and its address, never as an anchor.
    expect(body.locator(".foreign-link")).to_have_text("your account (https://evil.example/login)")
    hrefs = inside.locator("a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs
    assert all(h.startswith(f"{BOOK_ORIGIN}/docs/") for h in hrefs), hrefs
    # [9] names no source: plain text. [1] does: a link.
    # (The server may also drop the unbacked marker from the text before it is stored.)
    expect(body.locator("a.cite")).to_have_count(1)
    expect(body.locator("a.cite")).to_have_text("1")
    page.wait_for_timeout(300)  # let a (wrongly) created image fail and fire its handler
    assert page.evaluate("() => window.__pwned") is None
    # Nothing of the widget leaks onto the book's window.
    assert page.evaluate("() => [typeof bookchatMarkdown, typeof bookchatChat]") == [
        "undefined",
        "undefined",
    ]
    assert_clean(page_events)


def test_too_many_questions_is_said_plainly_and_the_question_kept(
    page: Page, bookchat: Bookchat
) -> None:
    open_book(page, bookchat)
    open_widget(page)
    page.route(
        re.compile(r".*/api/chat$"),
        lambda route: route.fulfill(
            status=429,
            headers={
                "Retry-After": "17",
                "Access-Control-Allow-Origin": BOOK_ORIGIN,
                "Access-Control-Expose-Headers": "Retry-After",
            },
            content_type="application/json",
            body=json.dumps({"detail": "too many chats", "code": "rate_limited"}),
        ),
    )
    ask(page, "Is my question kept?")
    expect(widget(page).locator(".form-error")).to_contain_text("please wait 17 s")
    expect(widget(page).get_by_label("Ask a question")).to_have_value("Is my question kept?")


# Stop and feedback -----------------------------------------------------------------------------


def _conversation(page: Page, server: Bookchat) -> dict:
    key = f"bookchat.widget.conversation:{server.url}"
    conversation_id = page.evaluate(f"() => localStorage.getItem({json.dumps(key)})")
    assert conversation_id
    return httpx.get(f"{server.url}/api/conversation/{conversation_id}", timeout=10).json()


def test_stop_mid_answer_stores_the_partial_answer_as_stopped(
    page: Page, page_events: PageEvents, bookchat_gemini: Bookchat, fake_model: FakeGemini
) -> None:
    fake_model.script(Reply(" ".join(f"word{n}" for n in range(300)), tokens_per_second=10))
    open_book(page, bookchat_gemini)
    open_widget(page)
    stop = widget(page).get_by_role("button", name="Stop")
    expect(stop).to_be_hidden()
    box = widget(page).get_by_label("Ask a question")
    box.fill("Tell me everything")
    box.press("Enter")
    answer = widget(page).locator("article.assistant").last
    expect(answer.locator(".answer-body")).to_contain_text("word5", timeout=WAIT_MS)
    stop.click()
    page.wait_for_function(LAST_ANSWER_DONE, timeout=WAIT_MS)
    expect(answer.locator(".note")).to_have_text("(Stopped: this answer is incomplete.)")
    expect(stop).to_be_hidden()
    shown = answer.locator(".answer-body p").first.inner_text()
    assert "word299" not in shown
    stored = _conversation(page, bookchat_gemini)["messages"][-1]
    assert stored["status"] == "stopped"
    assert shown.startswith(stored["content"].strip())
    # A stopped answer is stored, so it can be voted on.
    expect(answer.get_by_role("button", name="Not helpful")).to_be_visible()
    assert_clean(page_events)


def test_feedback_round_trip(page: Page, page_events: PageEvents, bookchat: Bookchat) -> None:
    open_book(page, bookchat)
    open_widget(page)
    ask(page, "How do I install bookchat?")
    answer = widget(page).locator("article.assistant").last
    answer.get_by_role("button", name="Not helpful").click()
    reason = answer.get_by_label("What was wrong? (optional)")
    expect(reason).to_be_focused()
    reason.fill("It skips the virtual environment")
    reason.press("Enter")
    expect(answer.locator(".feedback-status")).to_have_text("Thanks for the feedback.")
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )
    stored = _conversation(page, bookchat)["messages"][-1]
    assert stored["feedback"] == {"rating": "down", "reason": "It skips the virtual environment"}
    # The owner's report, run against the same store as the server, lists it.
    reported = subprocess.run(
        [sys.executable, "-m", "bookchat", "report", "--since", "1h", "--format", "json"],
        env=service_env(bookchat.log.parent / "data", {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    downs = json.loads(reported.stdout)["thumbed_down"]
    assert any(
        e["question"] == "How do I install bookchat?"
        and "It skips the virtual environment" in e["reasons"]
        for e in downs
    ), downs
    # Changing one's mind updates the vote; a reload shows it.
    answer.get_by_role("button", name="Helpful", exact=True).click()
    expect(answer.locator(".feedback-status")).to_have_text("Thanks for the feedback.")
    page.reload()
    # It was open: it opens again by itself, with the conversation.
    expect(widget(page).locator(".panel")).to_be_visible(timeout=WAIT_MS)
    restored = widget(page).locator("article.assistant").last
    expect(restored.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
        "aria-pressed", "true", timeout=WAIT_MS
    )
    assert _conversation(page, bookchat)["messages"][-1]["feedback"]["rating"] == "up"
    assert_clean(page_events)
