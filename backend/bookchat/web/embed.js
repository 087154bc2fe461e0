// The widget: an "Ask the book" button and chat panel on any page of the book, in an open
// Shadow DOM so the book's CSS and the widget's cannot touch each other. GET /widget.js serves
// this file after markdown.js and chat.js inside one function, with `bookchatScript` (the
// <script> element that loaded it) and `bookchatStyles` (chat.css + embed.css) defined.
(function () {
  "use strict";

  const MAX_STARTERS = 6;
  const MAX_CONTEXT = 20000;
  const POSITIONS = ["bottom-right", "bottom-left"];
  const OPEN_KEY = "bookchat.widget.open";
  const { createChat } = globalThis.bookchatChat;

  if (document.querySelector("bookchat-widget")) return; // the script tag was included twice

  // Options ------------------------------------------------------------------------------------

  function httpOrigin(value) {
    try {
      const url = new URL(value, location.href);
      if (url.protocol !== "http:" && url.protocol !== "https:") return null;
      return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
    } catch {
      return null;
    }
  }

  function starters(raw) {
    if (!raw) return [];
    let list;
    try {
      list = raw.trim().startsWith("[") ? JSON.parse(raw) : raw.split("|");
    } catch {
      list = raw.split("|");
    }
    if (!Array.isArray(list)) return [];
    return list
      .map((q) => String(q).trim().slice(0, 200))
      .filter(Boolean)
      .slice(0, MAX_STARTERS);
  }

  function readOptions(script) {
    const data = (script && script.dataset) || {};
    const from = script && script.src ? httpOrigin(new URL(script.src, location.href).origin) : null;
    const configured = data.apiBase ? httpOrigin(data.apiBase.trim()) : null;
    if (data.apiBase && !configured) {
      console.warn(`bookchat widget: data-api-base ${JSON.stringify(data.apiBase)} is not an http(s) URL`);
    }
    const accent = (data.accent || "").trim();
    const position = (data.position || "").trim().toLowerCase();
    return {
      apiBase: configured || from || location.origin,
      title: (data.title || "").trim() || "Ask the book",
      buttonLabel: (data.buttonLabel || "").trim() || "Ask the book",
      accent: accent && CSS.supports("color", accent) ? accent : null,
      starters: starters(data.starters),
      position: POSITIONS.includes(position) ? position : "bottom-right",
      selection: (data.selection || "").trim().toLowerCase() !== "off",
    };
  }

  const options = readOptions(bookchatScript);

  // Building the widget --------------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function adoptStyles(shadow) {
    // A constructed sheet needs no inline <style>, which a book's CSP may forbid.
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(bookchatStyles);
      shadow.adoptedStyleSheets = [sheet];
    } catch {
      shadow.append(el("style", { text: bookchatStyles }));
    }
  }

  /** Readable text on the accent colour: dark on light accents, white on dark ones. */
  function textOn(colour, probe) {
    probe.style.color = colour;
    const rgb = getComputedStyle(probe).color.match(/\d+(\.\d+)?/g);
    probe.style.color = "";
    if (!rgb) return null;
    const [r, g, b] = rgb.slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.4 ? "#111418" : "#ffffff";
  }

  const host = el("bookchat-widget", {});
  const shadow = host.attachShadow({ mode: "open" });
  adoptStyles(shadow);

  const launcher = el("button", {
    type: "button",
    class: "launcher",
    "aria-expanded": "false",
    "aria-controls": "panel",
    text: options.buttonLabel,
  });
  const answerer = el("p", { class: "answerer", id: "answerer", text: "" });
  const newChat = el("button", { type: "button", class: "secondary", text: "New chat" });
  const close = el("button", { type: "button", class: "close secondary", "aria-label": "Close" }, [
    "×",
  ]);
  const banner = el("div", { class: "banner", role: "status" });
  banner.hidden = true;
  const startersList = el(
    "ul",
    { class: "starters", "aria-label": "Example questions" },
    options.starters.map((q) => el("li", {}, [el("button", { type: "button", class: "starter secondary", text: q })])),
  );
  const empty = el("div", { class: "empty" }, [
    el("p", { text: "Ask anything about the book. Answers cite the pages they come from." }),
  ]);
  if (options.starters.length) empty.append(startersList);
  const log = el("div", { class: "log", role: "log", "aria-label": "Conversation" }, [empty]);
  const contextQuote = el("blockquote", { class: "selected" });
  const clearContext = el("button", { type: "button", class: "secondary clear", text: "Clear" });
  const contextBox = el("div", { class: "context" }, [
    el("p", { class: "about", text: "Asking about the selected text:" }),
    contextQuote,
    clearContext,
  ]);
  contextBox.hidden = true;
  const question = el("textarea", {
    id: "question",
    rows: "2",
    maxlength: "2000",
    autocomplete: "off",
    "aria-describedby": "hint form-error",
  });
  const send = el("button", { type: "submit", class: "send", text: "Send" });
  const stop = el("button", { type: "button", class: "stop secondary", text: "Stop" });
  const formError = el("p", { class: "form-error", id: "form-error", role: "alert" });
  const form = el("form", { class: "ask", novalidate: "" }, [
    contextBox,
    el("label", { for: "question", text: "Ask a question" }),
    el("div", { class: "row" }, [question, send, stop]),
    el("p", { class: "hint", id: "hint", text: "Enter sends; Shift+Enter adds a new line." }),
    formError,
  ]);
  const announcer = el("div", { class: "visually-hidden", "aria-live": "polite" });
  const panel = el(
    "section",
    { class: "panel", id: "panel", role: "dialog", "aria-labelledby": "panel-title" },
    [
      el("header", { class: "bar" }, [
        el("div", { class: "title" }, [el("h2", { id: "panel-title", text: options.title }), answerer]),
        newChat,
        close,
      ]),
      banner,
      log,
      form,
      announcer,
    ],
  );
  panel.hidden = true;
  const askSelection = el("button", { type: "button", class: "ask-selection", text: "Ask about this" });
  askSelection.hidden = true;
  const root = el("div", { class: "bookchat widget", "data-position": options.position }, [
    launcher,
    panel,
    askSelection,
  ]);
  shadow.append(root);

  // Theme: Docusaurus's html[data-theme], else the reader's system setting -------------------

  const darkQuery = matchMedia("(prefers-color-scheme: dark)");
  function applyTheme() {
    const theme = document.documentElement.getAttribute("data-theme");
    root.dataset.theme = theme === "dark" || theme === "light" ? theme : darkQuery.matches ? "dark" : "light";
  }
  applyTheme();
  new MutationObserver(applyTheme).observe(document.documentElement, {
    attributes: true,
    attributeFilter: ["data-theme"],
  });
  darkQuery.addEventListener("change", applyTheme);

  // The conversation ---------------------------------------------------------------------------

  let selectedContext = "";
  function setContext(text) {
    selectedContext = text.slice(0, MAX_CONTEXT);
    contextQuote.textContent = selectedContext;
    contextBox.hidden = !selectedContext;
  }
  clearContext.addEventListener("click", () => {
    setContext("");
    question.focus();
  });

  const chat = createChat(
    {
      answerer,
      banner,
      log,
      empty,
      form,
      question,
      send,
      stop,
      newChat,
      formError,
      announcer,
    },
    {
      apiBase: options.apiBase,
      storageKey: `bookchat.widget.conversation:${options.apiBase}`,
      sameSite: true, // a citation into this book opens in place; the conversation follows
      bookOrigins: [location.origin],
      scroller: {
        atBottom: () => log.scrollTop + log.clientHeight >= log.scrollHeight - 48,
        toEnd: () => {
          log.scrollTop = log.scrollHeight;
        },
      },
      feedback: true,
      context: () => selectedContext,
      sent: () => setContext(""),
    },
  );

  for (const starter of startersList.querySelectorAll("button")) {
    starter.addEventListener("click", () => {
      question.value = starter.textContent;
      chat.ask();
    });
  }

  // Opening and closing ------------------------------------------------------------------------

  let checked = false;
  function remember(open) {
    try {
      if (open) sessionStorage.setItem(OPEN_KEY, "1");
      else sessionStorage.removeItem(OPEN_KEY);
    } catch {
      /* the panel just starts closed on the next page */
    }
  }

  function open({ focus = true } = {}) {
    panel.hidden = false;
    root.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    remember(true);
    if (!checked) {
      checked = true;
      chat.checkHealth(); // also restores the stored conversation
    }
    chat.refresh();
    if (focus) question.focus();
  }

  function shut() {
    panel.hidden = true;
    root.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    remember(false);
    launcher.focus();
  }

  launcher.addEventListener("click", () => (panel.hidden ? open() : shut()));
  close.addEventListener("click", shut);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      shut();
    }
  });

  // Ask about a selection on the book's page -----------------------------------------------------

  let pendingSelection = "";
  function selectionOutsideWidget() {
    const selection = document.getSelection();
    if (!selection || selection.isCollapsed || selection.rangeCount === 0) return null;
    const range = selection.getRangeAt(0);
    if (host.contains(range.commonAncestorContainer)) return null;
    const text = selection.toString().trim();
    return text.length >= 2 ? { text, rect: range.getBoundingClientRect() } : null;
  }

  function placeSelectionButton() {
    const found = selectionOutsideWidget();
    if (!found || !found.rect || (found.rect.width === 0 && found.rect.height === 0)) {
      askSelection.hidden = true;
      pendingSelection = "";
      return;
    }
    pendingSelection = found.text;
    askSelection.hidden = false;
    const width = askSelection.offsetWidth || 120;
    const height = askSelection.offsetHeight || 32;
    const below = found.rect.bottom + 8;
    const top = below + height > innerHeight ? Math.max(4, found.rect.top - height - 8) : below;
    const left = Math.min(Math.max(4, found.rect.left), Math.max(4, innerWidth - width - 4));
    askSelection.style.top = `${Math.round(top)}px`;
    askSelection.style.left = `${Math.round(left)}px`;
  }

  if (options.selection) {
    let queued = 0;
    const queue = () => {
      if (!queued) {
        queued = requestAnimationFrame(() => {
          queued = 0;
          placeSelectionButton();
        });
      }
    };
    document.addEventListener("selectionchange", queue);
    addEventListener("scroll", () => !askSelection.hidden && queue(), { passive: true });
    // Pressing the button must not clear the selection it is about.
    askSelection.addEventListener("mousedown", (event) => event.preventDefault());
    askSelection.addEventListener("click", () => {
      if (!pendingSelection) return;
      setContext(pendingSelection);
      askSelection.hidden = true;
      open();
    });
  }

  function mount() {
    document.body.append(host);
    // The owner's accent colour, with text on it that stays readable (measured once mounted).
    if (options.accent) {
      root.style.setProperty("--accent", options.accent);
      const fg = textOn(options.accent, root);
      if (fg) root.style.setProperty("--accent-fg", fg);
    }
    let wasOpen = false;
    try {
      wasOpen = sessionStorage.getItem(OPEN_KEY) === "1";
    } catch {
      wasOpen = false;
    }
    // After following a citation the panel is open again on the new page, without taking focus.
    if (wasOpen) open({ focus: false });
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
})();
