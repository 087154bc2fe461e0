// The chat page: asks /api/chat, streams the answer, keeps the conversation across reloads.
(function () {
  "use strict";

  const STORE_KEY = "bookchat.conversation_id";
  // How a stored answer that did not complete is marked when the conversation is restored.
  const STATUS_NOTES = {
    partial: "(This answer was cut off before it finished.)",
    failed: "(This answer failed; ask again to retry.)",
  };
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const { render, isSourceUrl } = globalThis.bookchatMarkdown;

  const $ = (id) => document.getElementById(id);
  const ui = {
    answerer: $("answerer"),
    banner: $("banner"),
    log: $("log"),
    empty: $("empty"),
    form: $("ask"),
    question: $("question"),
    context: $("context"),
    selection: $("selection"),
    selectionSummary: $("selection-summary"),
    send: $("send"),
    newChat: $("new-chat"),
    formError: $("form-error"),
    announcer: $("announcer"),
  };

  let conversationId = loadStoredId();
  let current = null; // { controller } of the answer being streamed
  let healthTimer = null;
  let restored = false;

  // Storage ------------------------------------------------------------------------------------

  // localStorage throws in some sandboxed iframes and private modes; the chat still works.
  function loadStoredId() {
    try {
      const id = localStorage.getItem(STORE_KEY);
      return id && UUID.test(id) ? id : null;
    } catch {
      return null;
    }
  }

  function storeId(id) {
    conversationId = id && UUID.test(id) ? id : null;
    try {
      if (conversationId) localStorage.setItem(STORE_KEY, conversationId);
      else localStorage.removeItem(STORE_KEY);
    } catch {
      /* not persisted; this tab still remembers it */
    }
  }

  // Messages on the page -----------------------------------------------------------------------

  function el(tag, className, children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children || []) node.append(child);
    return node;
  }

  function hiddenHeading(text) {
    return el("h2", "visually-hidden", [text]);
  }

  function addUserMessage(text, context) {
    ui.empty.hidden = true;
    const article = el("article", "msg user", [hiddenHeading("You asked")]);
    if (context) {
      const quote = el("blockquote", "selected", [context]);
      article.append(el("p", "about", ["About the selected text:"]), quote);
    }
    article.append(el("p", "text", [text]));
    ui.log.append(article);
    return article;
  }

  function sourcesList(sources) {
    const items = sources.map((source, i) => {
      const title = source.title || source.file || `Source ${i + 1}`;
      const li = el("li");
      li.value = i + 1;
      if (isSourceUrl(source.url)) {
        const a = el("a", null, [title]);
        a.href = source.url;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        li.append(a);
      } else {
        li.append(title);
      }
      if (source.heading && source.heading !== title) {
        li.append(el("span", "heading", [` — ${source.heading}`]));
      }
      return li;
    });
    return el("section", "sources", [el("h3", null, ["Sources"]), el("ol", null, items)]);
  }

  /** An assistant message that fills in as tokens arrive. */
  function addAnswer() {
    ui.empty.hidden = true;
    const body = el("div", "answer-body");
    const article = el("article", "msg assistant", [hiddenHeading("Answer"), body]);
    article.setAttribute("aria-busy", "true");
    body.append(el("p", "pending", ["Thinking…"]));
    ui.log.append(article);
    let text = "";
    let spoken = 0;
    let frame = 0;

    const paint = () => {
      frame = 0;
      const following = atBottom();
      body.replaceChildren(render(text, []));
      if (following) scrollToEnd();
    };
    // Screen readers get whole sentences from the polite live region, not every token.
    const speak = (final) => {
      const rest = text.slice(spoken);
      const end = final ? rest.length : lastSentenceEnd(rest);
      if (end <= 0) return;
      const sentence = plainText(rest.slice(0, end));
      spoken += end;
      if (sentence) ui.announcer.append(el("span", null, [sentence + " "]));
    };

    return {
      article,
      append(delta) {
        text += delta;
        if (!frame) frame = requestAnimationFrame(paint);
        speak(false);
      },
      finish(sources, note) {
        if (frame) cancelAnimationFrame(frame);
        speak(true);
        const list = Array.isArray(sources) ? sources : [];
        const following = atBottom();
        body.replaceChildren(render(text, list));
        if (!text.trim() && !note) body.append(el("p", "note", ["(The answer was empty.)"]));
        if (note) body.append(el("p", "note", [note]));
        if (list.length) article.append(sourcesList(list));
        article.removeAttribute("aria-busy");
        if (following) scrollToEnd();
        const count = `${list.length} source${list.length === 1 ? "" : "s"}.`;
        if (list.length) ui.announcer.append(el("span", null, [count]));
      },
      fail(message) {
        if (frame) cancelAnimationFrame(frame);
        body.replaceChildren(render(text, []));
        body.append(el("p", "error", [message]));
        article.classList.add("failed");
        article.removeAttribute("aria-busy");
      },
    };
  }

  // Follow a growing answer only while the reader is at the end; never yank them back down.
  function atBottom() {
    const page = document.documentElement;
    return window.innerHeight + window.scrollY >= page.scrollHeight - 48;
  }

  function scrollToEnd() {
    window.scrollTo(0, document.documentElement.scrollHeight);
  }

  function lastSentenceEnd(text) {
    let end = -1;
    for (const m of text.matchAll(/[.!?:](?=\s)|\n/g)) end = m.index + 1;
    return end;
  }

  function plainText(markdown) {
    return markdown
      .replace(/```[^\n]*\n?/g, " ")
      .replace(/\[([^\]\n]+)\]\((https?:[^)\s]+)\)/g, "$1")
      .replace(/^[ \t]*(?:[-*+]|#{1,6}|>)[ \t]+/gm, "")
      .replace(/\*\*|__|`/g, "")
      .replace(/\s+/g, " ")
      .trim();
  }

  function clearConversation() {
    ui.log.replaceChildren(ui.empty);
    ui.empty.hidden = false;
    ui.announcer.replaceChildren();
  }

  // Banner, answerer and errors ----------------------------------------------------------------

  function showBanner(kind, text) {
    ui.banner.hidden = false;
    ui.banner.className = `banner ${kind}`;
    ui.banner.textContent = text;
  }

  function hideBanner() {
    ui.banner.hidden = true;
    ui.banner.textContent = "";
  }

  function showFormError(text) {
    ui.formError.textContent = text;
  }

  function describeAnswerer(llm) {
    if (!llm || typeof llm !== "object") return null;
    const backend = String(llm.backend || llm.name || "").toLowerCase();
    if (backend.includes("gemini")) {
      return `Answers by Gemini${llm.model ? ` (${llm.model})` : ""}`;
    }
    if (backend.includes("offline") || backend.includes("local")) {
      return "Offline answerer: replies are built from the book's passages (no Gemini model)";
    }
    return backend ? `Answerer: ${backend}${llm.model ? ` (${llm.model})` : ""}` : null;
  }

  function problems(services) {
    if (!services || typeof services !== "object") return "";
    return Object.entries(services)
      .filter(([, s]) => s && typeof s === "object" && !["up", "ok", "healthy"].includes(s.status))
      .map(([name, s]) => {
        const why = s.error || s.detail || s.message || s.reason;
        return `${name}: ${s.status || "unknown"}${why ? ` (${why})` : ""}`;
      })
      .join("; ");
  }

  function detailOf(body) {
    if (!body) return "";
    const detail = body.detail ?? body.message;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => (d && d.msg) || JSON.stringify(d)).join("; ");
    }
    return detail ? JSON.stringify(detail) : "";
  }

  // Health -------------------------------------------------------------------------------------

  function scheduleHealth(seconds) {
    clearTimeout(healthTimer);
    healthTimer = setTimeout(checkHealth, seconds * 1000);
  }

  let healthFailures = 0;

  async function checkHealth() {
    let body = null;
    try {
      const res = await fetch("/api/health", { cache: "no-store" });
      body = await res.json().catch(() => null);
      if (!body || typeof body.status !== "string") throw new Error(`HTTP ${res.status}`);
    } catch (err) {
      healthFailures += 1;
      const wait = Math.min(2 * healthFailures, 15);
      showBanner("error", `Cannot reach the chat service (${err.message}). Retrying in ${wait} s…`);
      ui.answerer.textContent = "Answerer unknown: the service is not reachable.";
      scheduleHealth(wait);
      return;
    }
    healthFailures = 0;
    const llm = body.services && body.services.llm;
    ui.answerer.textContent = describeAnswerer(llm) || "Answerer: not reported by the service";
    if (body.status === "starting") {
      const step = body.startup && body.startup.step;
      showBanner("waking", `The service is waking up${step ? ` (${step})` : ""}. Retrying in 3 s…`);
      scheduleHealth(3);
      return;
    }
    if (body.status === "healthy") {
      hideBanner();
    } else if (body.status === "degraded") {
      const what = problems(body.services);
      showBanner("warn", `Some parts of the service are degraded${what ? `: ${what}` : ""}.`);
      scheduleHealth(30);
    } else {
      const why = (body.startup && body.startup.error) || problems(body.services);
      showBanner("error", `The chat service is ${body.status}${why ? `: ${why}` : ""}.`);
      scheduleHealth(15);
    }
    if (!restored) {
      restored = true;
      restoreConversation();
    }
  }

  // Conversation restore -----------------------------------------------------------------------

  async function restoreConversation() {
    if (!conversationId) return;
    const id = conversationId;
    let res;
    try {
      res = await fetch(`/api/conversation/${encodeURIComponent(id)}`, { cache: "no-store" });
    } catch (err) {
      showFormError(`Could not load the previous conversation (${err.message}).`);
      return;
    }
    if (id !== conversationId || current) return; // the reader moved on meanwhile
    if (res.status === 404) {
      storeId(null);
      return;
    }
    const body = await res.json().catch(() => null);
    if (id !== conversationId || current) return;
    if (!res.ok || !body || !Array.isArray(body.messages)) {
      showFormError(`Could not load the previous conversation: ${detailOf(body) || res.status}.`);
      return;
    }
    clearConversation();
    for (const message of body.messages) {
      if (message.role === "user") {
        addUserMessage(String(message.content ?? ""), null);
      } else if (message.role === "assistant") {
        const answer = addAnswer();
        answer.append(String(message.content ?? ""));
        answer.finish(message.sources, STATUS_NOTES[message.status] ?? null);
      }
    }
    ui.announcer.replaceChildren();
    scrollToEnd();
  }

  // Asking -------------------------------------------------------------------------------------

  class ChatError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  /** Read an SSE body, calling onEvent with each `data:` JSON payload. */
  async function readEvents(stream, onEvent) {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let data = [];
    const dispatch = () => {
      if (data.length) onEvent(JSON.parse(data.join("\n")));
      data = [];
    };
    const handle = (rawLine) => {
      const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
      if (line === "") dispatch();
      else if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
      // Other fields (event:, id:, retry:) and comments (": ping") carry nothing the page needs.
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          handle(buffer.slice(0, newline));
          buffer = buffer.slice(newline + 1);
        }
        if (done) break;
      }
      if (buffer) handle(buffer);
      dispatch();
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  async function ask() {
    const raw = ui.question.value;
    const message = raw.trim();
    if (current) {
      showFormError("Wait for the current answer to finish, or start a new chat.");
      return;
    }
    showFormError("");
    if (!message) {
      showFormError("Type a question first.");
      ui.question.focus();
      return;
    }
    if (message.length > 2000) {
      showFormError(`The question is ${message.length} characters; the limit is 2000.`);
      return;
    }
    const context = ui.context.value.trim();
    const payload = { message, mode: context ? "selection" : "general" };
    if (context) payload.context = context;
    if (conversationId) payload.conversation_id = conversationId;

    const controller = new AbortController();
    current = { controller };
    ui.send.disabled = true;
    ui.announcer.replaceChildren();
    const asked = addUserMessage(message, context);
    const answer = addAnswer();
    scrollToEnd();
    let accepted = false;
    let finished = false;
    try {
      let res;
      try {
        res = await fetch("/api/chat", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
          body: JSON.stringify(payload),
          signal: controller.signal,
        });
      } catch (err) {
        if (err.name === "AbortError") throw err;
        throw new ChatError(`Cannot reach the chat service (${err.message}).`, 0);
      }
      const type = res.headers.get("content-type") || "";
      if (!res.ok || !type.startsWith("text/event-stream")) {
        const body = await res.json().catch(() => null);
        if (res.status === 404 && payload.conversation_id) storeId(null);
        throw new ChatError(detailOf(body) || `The service answered HTTP ${res.status}.`, res.status);
      }
      await readEvents(res.body, (event) => {
        if (event.type === "metadata") {
          accepted = true;
          storeId(event.conversation_id);
          if (ui.banner.classList.contains("waking")) scheduleHealth(0);
          if (event.answerer) {
            const label = describeAnswerer(event.answerer);
            if (label) ui.answerer.textContent = label;
          }
          // The question is safely with the server now; keep anything typed since.
          if (ui.question.value === raw) ui.question.value = "";
        } else if (event.type === "token") {
          answer.append(String(event.content ?? ""));
        } else if (event.type === "done") {
          finished = true;
          answer.finish(event.sources, null);
        } else if (event.type === "error") {
          throw new ChatError(event.message || "The answer failed.", 0);
        }
      });
      if (!finished) throw new ChatError("The connection closed before the answer finished.", 0);
    } catch (err) {
      const aborted = err.name === "AbortError";
      const text = aborted ? "Stopped." : err.message || String(err);
      answer.fail(text);
      if (!aborted) {
        // Never lose the reader's question: put it back unless they already typed another.
        if (!ui.question.value.trim()) ui.question.value = raw;
        const hint = err.status === 503 ? " The service may still be waking up." : "";
        showFormError(`${text}${hint} Your question is still in the box; press Send to retry.`);
        if (err.status === 503 || err.status === 0) scheduleHealth(0.1);
      }
      if (!accepted && !aborted) asked.classList.add("unsent");
    } finally {
      if (current && current.controller === controller) current = null;
      ui.send.disabled = false;
    }
  }

  function newChat() {
    if (current) current.controller.abort();
    current = null;
    storeId(null);
    clearConversation();
    showFormError("");
    ui.question.focus();
  }

  // Wiring -------------------------------------------------------------------------------------

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask();
  });
  ui.question.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter is a newline; an IME composition's Enter only commits the text.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ask();
    }
  });
  ui.newChat.addEventListener("click", newChat);
  const updateSelectionSummary = () => {
    ui.selectionSummary.textContent = ui.context.value.trim()
      ? "Asking about the selected text"
      : "Ask about a passage";
  };
  ui.context.addEventListener("input", updateSelectionSummary);
  updateSelectionSummary();

  checkHealth();
})();
