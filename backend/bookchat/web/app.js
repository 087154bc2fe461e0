// The chat page at /: the shared conversation (chat.js) wired to this page's elements.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const context = $("context");
  const summary = $("selection-summary");

  // The page follows the window: it grows with the answer, and the reader scrolls it.
  const scroller = {
    // Follow a growing answer only while the reader is at the end; never yank them back down.
    atBottom() {
      const page = document.documentElement;
      return window.innerHeight + window.scrollY >= page.scrollHeight - 48;
    },
    toEnd() {
      window.scrollTo(0, document.documentElement.scrollHeight);
    },
  };

  const chat = globalThis.bookchatChat.createChat(
    {
      answerer: $("answerer"),
      banner: $("banner"),
      log: $("log"),
      empty: $("empty"),
      form: $("ask"),
      question: $("question"),
      send: $("send"),
      stop: $("stop"),
      newChat: $("new-chat"),
      formError: $("form-error"),
      announcer: $("announcer"),
    },
    {
      apiBase: "",
      storageKey: "bookchat.conversation_id",
      sameSite: false, // the book lives on another site: its pages open in a new tab
      scroller,
      feedback: true,
      context: () => context.value,
    },
  );

  const updateSelectionSummary = () => {
    summary.textContent = context.value.trim() ? "Asking about the selected text" : "Ask about a passage";
  };
  context.addEventListener("input", updateSelectionSummary);
  updateSelectionSummary();

  chat.checkHealth();
})();
