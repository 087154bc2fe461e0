// A small Markdown renderer that cannot produce markup from its input.
//
// Text only ever reaches the page through text nodes (no HTML parsing anywhere), so any HTML in a model
// answer or a book passage shows as the characters it is made of. On top of that a whitelisted
// subset becomes elements: paragraphs, headings, bold, italic, inline and fenced code, lists,
// block quotes, GitHub-flavoured tables, http(s) links, and [n] citations linked to the n-th source.
(function () {
  "use strict";

  const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
  const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
  const QUOTE = /^ {0,3}> ?(.*)$/;
  const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
  const ITEM = /^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
  const BLANK = /^\s*$/;
  // A GFM table: a header row, then a delimiter row such as | --- | :-: | with at least one pipe.
  const TABLE_DELIMITER = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
  const ABSOLUTE_HTTP = /^https?:\/\//i;
  // One alternative per inline construct; the earliest match wins, left to right.
  const INLINE = new RegExp(
    [
      /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/.source, // 1,2: code span
      /\[([^\[\]\n]+)\]\(([^\s()<>]+)\)/.source, // 3,4: link
      /\[(\d{1,3}(?:[ \t]*,[ \t]*\d{1,3})*)\](?!\()/.source, // 5: citation(s)
      /\*\*(?=\S)([\s\S]*?\S)\*\*/.source, // 6: bold
      /__(?=\S)([\s\S]*?\S)__(?!\w)/.source, // 7: bold
      /\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/.source, // 8: italic
      /(?<!\w)_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/.source, // 9: italic
      /(https?:\/\/[^\s<>()\[\]"']*[^\s<>()\[\]"'.,;:!?])/.source, // 10: bare URL
    ].join("|"),
    "g",
  );

  function el(tag, children) {
    const node = document.createElement(tag);
    for (const child of children || []) node.append(child);
    return node;
  }

  /** A link element for an http(s) URL, or null for anything else (javascript:, data:, ...). */
  function safeLink(href, children) {
    let url;
    try {
      url = new URL(href, document.baseURI);
    } catch {
      return null;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    const a = el("a", children);
    a.href = url.href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  /** True for absolute http(s) URLs, the only URLs a source may link to. */
  function isSourceUrl(href) {
    return typeof href === "string" && ABSOLUTE_HTTP.test(href);
  }

  function citation(numbers, sources) {
    const nodes = [document.createTextNode("[")];
    numbers.forEach((n, i) => {
      if (i > 0) nodes.push(document.createTextNode(", "));
      const source = sources[n - 1];
      const link = source && isSourceUrl(source.url) ? safeLink(source.url, [String(n)]) : null;
      if (link) {
        link.className = "cite";
        const where = [source.title, source.heading].filter(Boolean).join(" – ");
        link.setAttribute("aria-label", `Source ${n}${where ? ": " + where : ""}`);
        nodes.push(link);
      } else {
        nodes.push(document.createTextNode(String(n)));
      }
    });
    nodes.push(document.createTextNode("]"));
    return nodes;
  }

  /** Inline Markdown of one line or paragraph as a list of nodes. */
  function inline(text, sources, inLink) {
    const out = [];
    let last = 0;
    const matches = [...text.matchAll(INLINE)];
    for (const m of matches) {
      if (m.index < last) continue;
      let nodes = null;
      if (m[1] !== undefined) {
        nodes = [el("code", [m[2]])];
      } else if (m[3] !== undefined) {
        // Only absolute http(s) targets become links; a book-relative or javascript: target
        // leaves just the link text, since there is no page here for it to point at.
        const text = inline(m[3], sources, true);
        const link = inLink || !ABSOLUTE_HTTP.test(m[4]) ? null : safeLink(m[4], text);
        nodes = link ? [link] : text;
      } else if (m[5] !== undefined) {
        nodes = inLink ? null : citation(m[5].split(",").map((s) => Number(s.trim())), sources);
      } else if (m[6] !== undefined || m[7] !== undefined) {
        nodes = [el("strong", inline(m[6] ?? m[7], sources, inLink))];
      } else if (m[8] !== undefined || m[9] !== undefined) {
        nodes = [el("em", inline(m[8] ?? m[9], sources, inLink))];
      } else if (m[10] !== undefined) {
        const link = inLink ? null : safeLink(m[10], [m[10]]);
        nodes = link ? [link] : null;
      }
      if (!nodes) continue;
      if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
      out.push(...nodes);
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(document.createTextNode(text.slice(last)));
    return out;
  }

  function paragraph(lines, sources) {
    const p = el("p");
    lines.forEach((line, i) => {
      if (i > 0) p.append(el("br"));
      p.append(...inline(line.trim(), sources, false));
    });
    return p;
  }

  function indentOf(line) {
    return line.length - line.trimStart().length;
  }

  function cells(line) {
    let row = line.trim();
    if (row.startsWith("|")) row = row.slice(1);
    if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
    // Split on pipes that are not escaped; an escaped pipe is a literal one inside the cell.
    return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, "|"));
  }

  function startsTable(lines, i) {
    if (i + 1 >= lines.length || !lines[i].includes("|") || !TABLE_DELIMITER.test(lines[i + 1])) {
      return false;
    }
    const delimiter = lines[i + 1];
    if (!delimiter.includes("|") && cells(lines[i]).length < 2) return false; // "a | b" over "---"
    return cells(lines[i]).length === cells(delimiter).length;
  }

  function table(lines, i, sources) {
    const header = cells(lines[i]);
    const align = cells(lines[i + 1]).map((d) => {
      if (d.startsWith(":") && d.endsWith(":")) return "center";
      if (d.endsWith(":")) return "right";
      return d.startsWith(":") ? "left" : "";
    });
    const row = (values, tag) =>
      el(
        "tr",
        values.map((value, k) => {
          const cell = el(tag, inline(value, sources, false));
          if (align[k]) cell.dataset.align = align[k];
          return cell;
        }),
      );
    const body = [];
    i += 2;
    while (i < lines.length && !BLANK.test(lines[i]) && lines[i].includes("|")) {
      // A row has exactly the header's cells: extra ones are dropped, missing ones are empty.
      const values = cells(lines[i]).slice(0, header.length);
      while (values.length < header.length) values.push("");
      body.push(row(values, "td"));
      i += 1;
    }
    const node = el("table", [el("thead", [row(header, "th")])]);
    if (body.length) node.append(el("tbody", body));
    const wrap = el("div", [node]);
    wrap.className = "table-wrap";
    return [wrap, i];
  }

  function startsBlock(line) {
    return FENCE.test(line) || HEADING.test(line) || QUOTE.test(line) || ITEM.test(line);
  }

  function fencedCode(lines, i) {
    const [, fence, info] = FENCE.exec(lines[i]);
    const close = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`);
    const body = [];
    i += 1;
    while (i < lines.length && !close.test(lines[i])) body.push(lines[i++]);
    const code = el("code", [body.join("\n")]);
    const language = info.trim().split(/\s+/)[0];
    if (/^[\w+#.-]{1,20}$/.test(language)) code.dataset.language = language;
    return [el("pre", [code]), i + 1];
  }

  function list(lines, i, sources) {
    const first = ITEM.exec(lines[i]);
    const ordered = /\d/.test(first[2]);
    const baseIndent = first[1].length;
    const node = el(ordered ? "ol" : "ul");
    if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
    let loose = false;
    while (i < lines.length) {
      const m = ITEM.exec(lines[i]);
      if (!m || m[1].length > baseIndent + 1 || /\d/.test(m[2]) !== ordered) break;
      if (m[1].length < baseIndent) break;
      const contentIndent = m[1].length + m[2].length + 1;
      const body = [m[3]];
      i += 1;
      while (i < lines.length) {
        const line = lines[i];
        if (BLANK.test(line)) {
          let next = i + 1;
          while (next < lines.length && BLANK.test(lines[next])) next += 1;
          if (next >= lines.length) break;
          const sibling = ITEM.exec(lines[next]);
          if (indentOf(lines[next]) > baseIndent + 1) {
            body.push("");
            loose = true;
            i = next;
            continue;
          }
          if (sibling && sibling[1].length >= baseIndent && /\d/.test(sibling[2]) === ordered) {
            loose = true;
            i = next;
          }
          break;
        }
        const indent = indentOf(line);
        if (indent > baseIndent + 1) {
          body.push(line.slice(Math.min(indent, contentIndent)));
        } else if (startsBlock(line)) {
          break;
        } else {
          body.push(line.trim()); // a lazy continuation of the item's paragraph
        }
        i += 1;
      }
      const item = el("li", [blocks(body, sources)]);
      node.append(item);
    }
    if (!loose) {
      // Tight list: items hold their text directly rather than in paragraphs.
      for (const item of node.children) {
        for (const p of [...item.children].filter((c) => c.tagName === "P")) {
          const parts = [...p.childNodes];
          if (p.previousSibling) parts.unshift(el("br"));
          p.replaceWith(...parts);
        }
      }
    }
    return [node, i];
  }

  /** Block-level Markdown as a DocumentFragment. */
  function blocks(lines, sources) {
    const out = document.createDocumentFragment();
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (BLANK.test(line)) {
        i += 1;
      } else if (FENCE.test(line)) {
        let node;
        [node, i] = fencedCode(lines, i);
        out.append(node);
      } else if ((m = HEADING.exec(line))) {
        const level = Math.min(m[1].length + 2, 6); // the page's own h1/h2 stay on top
        out.append(el(`h${level}`, inline(m[2], sources, false)));
        i += 1;
      } else if (RULE.test(line)) {
        out.append(el("hr"));
        i += 1;
      } else if (QUOTE.test(line)) {
        const quoted = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
          quoted.push(m[1]);
          i += 1;
        }
        out.append(el("blockquote", [blocks(quoted, sources)]));
      } else if (ITEM.test(line)) {
        let node;
        [node, i] = list(lines, i, sources);
        out.append(node);
      } else if (startsTable(lines, i)) {
        let node;
        [node, i] = table(lines, i, sources);
        out.append(node);
      } else {
        const para = [line];
        i += 1;
        while (i < lines.length && !BLANK.test(lines[i]) && !startsBlock(lines[i])) {
          if (RULE.test(lines[i]) || startsTable(lines, i)) break;
          para.push(lines[i]);
          i += 1;
        }
        out.append(paragraph(para, sources));
      }
    }
    return out;
  }

  /** Render Markdown text; `sources` turns [n] into links to sources[n-1].url. */
  function render(text, sources) {
    const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
    return blocks(lines, Array.isArray(sources) ? sources : []);
  }

  globalThis.bookchatMarkdown = Object.freeze({ render, isSourceUrl });
})();
