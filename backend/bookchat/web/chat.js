// One conversation with the book: asking, streaming, citations, sources, stop, copy, feedback,
// restore and service health. The page at / and the embeddable widget both drive it; each hands
// it the elements it built and a few options, so every rule about answers lives here once.
(function () {
  "use strict";

  const { render, isSourceUrl } = globalThis.bookchatMarkdown;

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const MAX_QUESTION = 2000;
  const MAX_CONTEXT = 20000;
  const MAX_REASON = 500;
  // How a stored answer that did not complete is marked when the conversation is restored.
  const STATUS_NOTES = {
    partial: "(This answer was cut off before it finished.)",
    stopped: "(Stopped: this answer is incomplete.)",
    failed: "(This answer failed; ask again to retry.)",
  };
  // A stop that the server does not confirm within this time becomes a plain disconnect.
  const STOP_GRACE_MS = 4000;
  // A conversation restored while a server process still answers its last question
  // (`answering: true`) is read again this often, at most this many times, until it is stored.
  const ANSWERING_POLL_MS = 2000;
  const ANSWERING_POLLS = 90;

  function el(tag, className, children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children || []) node.append(child);
    return node;
  }

  function button(className, label, text) {
    const b = el("button", className, [text]);
    b.type = "button";
    if (label) b.setAttribute("aria-label", label);
    return b;
  }

  /** Copy text to the clipboard; falls back to a selected textarea where the API is missing. */
  async function copyText(text, within) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch {
        /* denied: try the old way */
      }
    }
    const area = el("textarea", "visually-hidden", []);
    area.value = text;
    (within || document.body).append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }

  function flash(target, text) {
    const before = target.dataset.label || target.textContent;
    target.dataset.label = before;
    target.textContent = text;
    setTimeout(() => {
      target.textContent = target.dataset.label;
    }, 1500);
  }

  /** The numbers [n] an answer cites, in order of first citation. */
  function citedNumbers(text) {
    const seen = [];
    for (const m of String(text).matchAll(/\[(\d{1,3}(?:[ \t]*,[ \t]*\d{1,3})*)\](?!\()/g)) {
      for (const part of m[1].split(",")) {
        const n = Number(part.trim());
        if (!seen.includes(n)) seen.push(n);
      }
    }
    return seen;
  }

  /**
   * Which sources the answer cites and which it does not. A server that says so per source
   * (`cited`) is believed; otherwise the [n] markers in the text decide.
   */
  function splitSources(text, sources) {
    const numbered = sources.map((source, i) => ({ source, n: i + 1 }));
    const flagged = sources.some((s) => s && typeof s.cited === "boolean");
    const cited = flagged
      ? numbered.filter((x) => x.source.cited)
      : numbered.filter((x) => citedNumbers(text).includes(x.n));
    const related = numbered.filter((x) => !cited.includes(x));
    return { cited, related };
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
      .replace(/^[ \t]*\|?[ \t:|-]+\|[ \t:|-]*$/gm, "")
      .replace(/\*\*|__|`|\|/g, " ")
      .replace(/\s+/g, " ")
      .trim();
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

  class ChatError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code || "";
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
      // Other fields (event:, id:, retry:) and comments (": ping") carry nothing needed here.
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

  function retryAfterSeconds(res) {
    const raw = res.headers.get("retry-after");
    const seconds = raw && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : null;
    return seconds;
  }

  /**
   * Wire a conversation to the given elements.
   *
   * ui: log, empty, form, question, send, stop, newChat, formError, announcer, and optionally
   *   answerer and banner. options: apiBase ("" for the page's own origin), storageKey,
   *   sameSite (links into this origin open in place), scroller {atBottom(), toEnd()},
   *   context() -> the selected text to send, sent() after a question was accepted.
   */
  function createChat(ui, options) {
    const api = (path) => `${options.apiBase || ""}${path}`;
    const scroller = options.scroller;
    const bookOrigins = new Set(options.bookOrigins || []);
    let conversationId = loadStoredId();
    let current = null; // the answer being streamed: { controller, stopping, userMessageId }
    let healthTimer = null;
    let healthFailures = 0;
    // Why the notice at the top says the service is down, so an answer does not repeat it.
    let noticeReason = "";
    let restored = false;
    let lastAnswerer = null;

    // Storage ----------------------------------------------------------------------------------

    // localStorage throws in some sandboxed iframes and private modes; the chat still works.
    function loadStoredId() {
      try {
        const id = localStorage.getItem(options.storageKey);
        return id && UUID.test(id) ? id : null;
      } catch {
        return null;
      }
    }

    function storeId(id) {
      conversationId = id && UUID.test(id) ? id : null;
      try {
        if (conversationId) localStorage.setItem(options.storageKey, conversationId);
        else localStorage.removeItem(options.storageKey);
      } catch {
        /* not persisted; this tab still remembers it */
      }
    }

    // Links --------------------------------------------------------------------------------------

    function originOf(href) {
      try {
        return new URL(href, document.baseURI).origin;
      } catch {
        return null;
      }
    }

    /** Origins that count as the book's own: where its sources live (and the page itself). */
    function trustedOrigins(sources) {
      const origins = new Set(bookOrigins);
      for (const s of sources) if (s && isSourceUrl(s.url)) origins.add(originOf(s.url));
      return origins;
    }

    // A link elsewhere than the book is shown as its text and its address, never as an anchor
    // a phishing answer could dress up; same-site links in the widget open in place.
    function settleLinks(node, sources) {
      const trusted = trustedOrigins(sources);
      for (const a of [...node.querySelectorAll("a")]) {
        if (!trusted.has(originOf(a.href))) {
          const label = a.textContent;
          const shown = label === a.href ? [a.href] : [label, " (", el("code", "url", [a.href]), ")"];
          a.replaceWith(el("span", "foreign-link", shown));
        } else if (options.sameSite && originOf(a.href) === location.origin) {
          a.removeAttribute("target");
        }
      }
    }

    // Code blocks get a copy button, and a cue when they are wider than the answer.
    function decorateCode(node) {
      for (const pre of node.querySelectorAll("pre")) {
        if (pre.parentElement && pre.parentElement.classList.contains("code-block")) continue;
        const wrap = el("div", "code-block", []);
        pre.replaceWith(wrap);
        const copy = button("copy-code", "Copy code", "Copy");
        const cue = el("p", "scroll-cue", ["Scroll sideways for more →"]);
        cue.hidden = true;
        pre.tabIndex = 0; // a wide block can be scrolled from the keyboard
        const code = pre.querySelector("code");
        const language = code && code.dataset.language ? code.dataset.language : "";
        wrap.append(el("div", "code-bar", [el("span", "language", [language]), copy]), pre, cue);
      }
    }

    function markOverflow(node) {
      for (const wrap of node.querySelectorAll(".code-block, .table-wrap")) {
        const inner = wrap.querySelector("pre, table");
        const box = wrap.classList.contains("table-wrap") ? wrap : inner;
        const wide = box && box.scrollWidth > box.clientWidth + 1;
        wrap.classList.toggle("scrolls", Boolean(wide));
        const cue = wrap.querySelector(".scroll-cue");
        if (cue) cue.hidden = !wide;
      }
    }

    function renderAnswer(text, sources) {
      const fragment = render(text, sources);
      const holder = el("div", null, [fragment]);
      settleLinks(holder, sources);
      decorateCode(holder);
      return [...holder.childNodes];
    }

    // Messages ---------------------------------------------------------------------------------

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

    function sourceItem({ source, n }, numbered, trusted) {
      const title = source.title || source.file || `Source ${n}`;
      const li = el("li");
      if (numbered) li.value = n;
      let page;
      if (isSourceUrl(source.url) && trusted.has(originOf(source.url))) {
        page = el("a", "page", [title]);
        page.href = source.url;
        if (!(options.sameSite && originOf(source.url) === location.origin)) {
          page.target = "_blank";
          page.rel = "noopener noreferrer";
        }
      } else {
        page = el("span", "page", [title]);
      }
      li.append(page);
      if (source.heading && source.heading !== title) {
        li.append(el("span", "heading", [` — ${source.heading}`]));
      }
      return li;
    }

    function sourcesSection(text, sources) {
      const { cited, related } = splitSources(text, sources);
      // An answer that cites nothing (a refusal) shows no sources: nothing backs it.
      if (!cited.length) return null;
      const trusted = trustedOrigins(sources);
      const section = el("section", "sources", [
        el("h3", null, ["Sources"]),
        el("ol", null, cited.map((x) => sourceItem(x, true, trusted))),
      ]);
      if (related.length) {
        const more = el("details", "related", [
          el("summary", null, [`Related reading (${related.length})`]),
          el("ul", null, related.map((x) => sourceItem(x, false, trusted))),
        ]);
        section.append(more);
      }
      return section;
    }

    function answerAsText(text, sources) {
      const { cited } = splitSources(text, sources);
      if (!cited.length) return text.trim();
      const lines = cited.map(({ source, n }) => {
        const where = [source.title, source.heading].filter(Boolean).join(" — ");
        return `[${n}] ${where}${isSourceUrl(source.url) ? ` ${source.url}` : ""}`;
      });
      return `${text.trim()}\n\nSources:\n${lines.join("\n")}`;
    }

    function feedbackControls(messageId, previous) {
      const box = el("div", "feedback", []);
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", "Was this answer helpful?");
      const up = button("vote up", null, "Helpful");
      const down = button("vote down", null, "Not helpful");
      const status = el("span", "feedback-status", []);
      status.setAttribute("role", "status");
      const form = el("form", "reason", []);
      form.hidden = true;
      const reasonId = `reason-${messageId}`;
      const label = el("label", null, ["What was wrong? (optional)"]);
      label.htmlFor = reasonId;
      const reason = el("input", null, []);
      reason.id = reasonId;
      reason.maxLength = MAX_REASON;
      reason.autocomplete = "off";
      const submit = el("button", "secondary", ["Send feedback"]);
      submit.type = "submit";
      form.append(label, reason, submit);
      box.append(up, down, status, form);

      const press = (rating) => {
        up.setAttribute("aria-pressed", String(rating === "up"));
        down.setAttribute("aria-pressed", String(rating === "down"));
      };
      press(previous && previous.rating);
      if (previous && previous.reason) reason.value = previous.reason;

      const send = async (rating, why) => {
        status.textContent = "Sending…";
        let res;
        try {
          res = await fetch(api("/api/feedback"), {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(why ? { message_id: messageId, rating, reason: why }
              : { message_id: messageId, rating }),
          });
        } catch (err) {
          status.textContent = `Feedback not sent (${err.message}).`;
          return false;
        }
        if (!res.ok) {
          const body = await res.json().catch(() => null);
          status.textContent = `Feedback not sent: ${detailOf(body) || `HTTP ${res.status}`}.`;
          return false;
        }
        press(rating);
        status.textContent = "Thanks for the feedback.";
        return true;
      };
      up.addEventListener("click", () => {
        form.hidden = true;
        send("up", "");
      });
      down.addEventListener("click", async () => {
        if (await send("down", "")) {
          form.hidden = false;
          reason.focus();
        }
      });
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (await send("down", reason.value.trim().slice(0, MAX_REASON))) form.hidden = true;
      });
      return box;
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
        const following = scroller.atBottom();
        body.replaceChildren(...renderAnswer(text, []));
        markOverflow(body);
        if (following) scroller.toEnd();
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
        finish(sources, note, extra) {
          if (frame) cancelAnimationFrame(frame);
          speak(true);
          const list = Array.isArray(sources) ? sources : [];
          const following = scroller.atBottom();
          body.replaceChildren(...renderAnswer(text, list));
          markOverflow(body);
          if (!text.trim() && !note) body.append(el("p", "note", ["(The answer was empty.)"]));
          if (note) body.append(el("p", "note", [note]));
          const section = sourcesSection(text, list);
          if (section) article.append(section);
          const tools = el("div", "answer-tools", []);
          if (text.trim()) {
            const copy = button("copy-answer secondary", null, "Copy answer");
            copy.addEventListener("click", async () => {
              flash(copy, (await copyText(answerAsText(text, list), ui.log)) ? "Copied" : "Copy failed");
            });
            tools.append(copy);
          }
          const id = extra && extra.messageId;
          if (options.feedback && id && UUID.test(id)) {
            tools.append(feedbackControls(id, extra.feedback));
          }
          if (tools.childNodes.length) article.append(tools);
          article.removeAttribute("aria-busy");
          if (following) scroller.toEnd();
          const count = section ? section.querySelectorAll("ol > li").length : 0;
          if (count) ui.announcer.append(el("span", null, [`${count} source${count === 1 ? "" : "s"}.`]));
        },
        fail(message) {
          if (frame) cancelAnimationFrame(frame);
          body.replaceChildren(...renderAnswer(text, []));
          body.append(el("p", "error", [message]));
          article.classList.add("failed");
          article.removeAttribute("aria-busy");
        },
      };
    }

    function clearConversation() {
      ui.log.replaceChildren(ui.empty);
      ui.empty.hidden = false;
      ui.announcer.replaceChildren();
    }

    // Banner, answerer and errors --------------------------------------------------------------

    function showBanner(kind, text) {
      if (!ui.banner) return;
      ui.banner.hidden = false;
      ui.banner.className = `banner ${kind}`;
      ui.banner.textContent = text;
    }

    function hideBanner() {
      if (!ui.banner) return;
      ui.banner.hidden = true;
      ui.banner.textContent = "";
    }

    function showFormError(text) {
      ui.formError.textContent = text;
    }

    function setAnswerer(llm, fallback) {
      lastAnswerer = llm || lastAnswerer;
      if (ui.answerer) ui.answerer.textContent = describeAnswerer(llm) || fallback;
    }

    // Health -----------------------------------------------------------------------------------

    function scheduleHealth(seconds) {
      clearTimeout(healthTimer);
      healthTimer = setTimeout(checkHealth, seconds * 1000);
    }

    async function checkHealth() {
      let body = null;
      try {
        const res = await fetch(api("/api/health"), { cache: "no-store" });
        body = await res.json().catch(() => null);
        if (!body || typeof body.status !== "string") throw new Error(`HTTP ${res.status}`);
      } catch (err) {
        healthFailures += 1;
        const wait = Math.min(2 * healthFailures, 15);
        showBanner("error", `Cannot reach the chat service (${err.message}). Retrying in ${wait} s…`);
        if (ui.answerer) ui.answerer.textContent = "Answerer unknown: the service is not reachable.";
        scheduleHealth(wait);
        return;
      }
      healthFailures = 0;
      noticeReason = "";
      const llm = body.services && body.services.llm;
      if (body.status === "starting") {
        setAnswerer(llm, "Answerer: not reported by the service");
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
        if (ui.banner) noticeReason = why;
        scheduleHealth(15);
      }
      setAnswerer(llm, "Answerer: not reported by the service");
      if (!restored) {
        restored = true;
        restoreConversation();
      }
    }

    // Conversation restore ---------------------------------------------------------------------

    let answeringPolls = 0;

    async function restoreConversation() {
      if (!conversationId) return;
      const id = conversationId;
      let res;
      try {
        res = await fetch(api(`/api/conversation/${encodeURIComponent(id)}`), { cache: "no-store" });
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
          addUserMessage(String(message.content ?? ""), message.context || null);
        } else if (message.role === "assistant") {
          const answer = addAnswer();
          answer.append(String(message.content ?? ""));
          answer.finish(message.sources, STATUS_NOTES[message.status] ?? null, {
            messageId: message.id,
            feedback: message.feedback,
          });
        }
      }
      ui.announcer.replaceChildren();
      if (body.answering === true && answeringPolls < ANSWERING_POLLS) {
        // Another tab (or a reload mid-stream) left the answer to a server process that is
        // still writing it: show that, and read the conversation again until it is stored.
        const waiting = addAnswer();
        waiting.article.querySelector(".pending").textContent = "Still being answered…";
        answeringPolls += 1;
        setTimeout(() => {
          if (id === conversationId && !current) restoreConversation();
        }, ANSWERING_POLL_MS);
      } else {
        answeringPolls = 0;
      }
      scroller.toEnd();
    }

    // Asking -----------------------------------------------------------------------------------

    function streaming(on) {
      ui.send.disabled = on;
      if (ui.stop) ui.stop.hidden = !on;
    }

    async function ask(messageText) {
      const raw = messageText ?? ui.question.value;
      const message = raw.trim();
      if (current) {
        showFormError("Wait for the current answer to finish, or press Stop.");
        return;
      }
      showFormError("");
      if (!message) {
        showFormError("Type a question first.");
        ui.question.focus();
        return;
      }
      if (message.length > MAX_QUESTION) {
        showFormError(`The question is ${message.length} characters; the limit is ${MAX_QUESTION}.`);
        return;
      }
      const context = String(options.context ? options.context() || "" : "").trim().slice(0, MAX_CONTEXT);
      const payload = { message, mode: context ? "selection" : "general" };
      if (context) payload.context = context;
      if (conversationId) payload.conversation_id = conversationId;

      const controller = new AbortController();
      const turn = { controller, stopping: false, userMessageId: null };
      current = turn;
      streaming(true);
      ui.announcer.replaceChildren();
      const asked = addUserMessage(message, context);
      const answer = addAnswer();
      scroller.toEnd();
      let accepted = false;
      let finished = false;
      try {
        let res;
        try {
          res = await fetch(api("/api/chat"), {
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
          if (res.status === 429) {
            const wait = retryAfterSeconds(res);
            throw new ChatError(
              `Too many questions right now${wait ? `: please wait ${wait} s` : ": please wait a moment"}` +
                " before sending again.",
              429,
              body && body.code,
            );
          }
          throw new ChatError(
            detailOf(body) || `The service answered HTTP ${res.status}.`,
            res.status,
            body && body.code,
          );
        }
        await readEvents(res.body, (event) => {
          if (event.type === "metadata") {
            accepted = true;
            storeId(event.conversation_id);
            turn.userMessageId = event.user_message_id || null;
            if (ui.banner && ui.banner.classList.contains("waking")) scheduleHealth(0);
            if (event.answerer) setAnswerer(event.answerer, ui.answerer ? ui.answerer.textContent : "");
            // The server's own words for why this answer differs (the daily budget is spent).
            if (event.notice && typeof event.notice.message === "string") {
              showBanner("warn", event.notice.message);
              answer.article.classList.add("offline");
              if (ui.answerer && /^llm_(client_)?budget_spent$/.test(event.notice.code)) {
                ui.answerer.textContent = "Answers are offline for today: replies quote the book's passages";
              }
            }
            // The question is safely with the server now; keep anything typed since.
            if (ui.question.value === raw) ui.question.value = "";
            if (options.sent) options.sent();
          } else if (event.type === "token") {
            answer.append(String(event.content ?? ""));
          } else if (event.type === "done") {
            finished = true;
            const note = event.stopped ? STATUS_NOTES.stopped : null;
            answer.finish(event.sources, note, { messageId: event.message_id });
          } else if (event.type === "error") {
            throw new ChatError(event.message || "The answer failed.", 0, event.code);
          }
        });
        if (!finished) throw new ChatError("The connection closed before the answer finished.", 0);
      } catch (err) {
        const aborted = err.name === "AbortError";
        let reason = aborted ? "Stopped." : err.message || String(err);
        let hint = err.status === 503 ? " The service may still be waking up." : "";
        // A 503 "unavailable" is a fixed sentence; the notice at the top has the health's why.
        if (!aborted && noticeReason && (err.code === "unavailable" || reason.includes(noticeReason))) {
          // Said once: the notice at the top already gives this reason.
          reason = "The service is not ready; the notice at the top says why.";
          hint = "";
        }
        // The reason goes next to Send, where the reader acts on it (role=alert reads it out);
        // the answer only marks where it stopped.
        answer.fail(aborted ? reason : accepted ? "The answer stopped here." : "Not answered.");
        if (!aborted) {
          // Never lose the reader's question: put it back unless they already typed another.
          if (!ui.question.value.trim()) ui.question.value = raw;
          showFormError(`${reason}${hint} Your question is still in the box; press Send to retry.`);
          if (err.status === 503 || err.status === 0) scheduleHealth(0.1);
        }
        if (!accepted && !aborted) asked.classList.add("unsent");
      } finally {
        if (current === turn) current = null;
        streaming(false);
      }
    }

    /** Stop the answer being streamed: the server stores it as stopped and ends the stream. */
    async function stop() {
      const turn = current;
      if (!turn || turn.stopping) return;
      turn.stopping = true;
      const giveUp = setTimeout(() => turn.controller.abort(), STOP_GRACE_MS);
      let ok = false;
      if (turn.userMessageId) {
        try {
          const res = await fetch(api("/api/chat/stop"), {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ user_message_id: turn.userMessageId }),
          });
          ok = res.ok;
        } catch {
          ok = false;
        }
      }
      // Not confirmed (an older server, or the answer already ended): just hang up.
      if (!ok && current === turn) {
        clearTimeout(giveUp);
        turn.controller.abort();
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

    // Wiring -----------------------------------------------------------------------------------

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
    if (ui.stop) {
      ui.stop.hidden = true;
      ui.stop.addEventListener("click", stop);
    }
    // One listener for every code block's copy button, present and future.
    ui.log.addEventListener("click", async (event) => {
      const target = event.target instanceof Element ? event.target.closest("button.copy-code") : null;
      if (!target) return;
      const pre = target.closest(".code-block").querySelector("pre");
      flash(target, (await copyText(pre ? pre.textContent : "", ui.log)) ? "Copied" : "Copy failed");
    });
    window.addEventListener("resize", () => markOverflow(ui.log));

    return {
      ask,
      stop,
      newChat,
      checkHealth,
      restore: restoreConversation,
      hasConversation: () => Boolean(conversationId),
      // Wide code and tables can only be measured once their panel is on screen.
      refresh: () => markOverflow(ui.log),
      get answerer() {
        return lastAnswerer;
      },
    };
  }

  globalThis.bookchatChat = Object.freeze({ createChat, splitSources, citedNumbers });
})();
