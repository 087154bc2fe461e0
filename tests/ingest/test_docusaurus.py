"""Reading a Docusaurus docs tree: pages, sections, routes and anchors, and what is skipped."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bookchat.ingest.docusaurus import Page, read_docs
from bookchat.ingest.routes import (
    HeadingSlugger,
    doc_slug,
    github_slug,
    is_category_index,
    page_url,
    strip_number_prefix,
)
from bookchat.ingest.siteconfig import SiteConfig

SITE = SiteConfig(site_url="https://book.example")


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    docs = root / "docs"
    for name, content in files.items():
        path = docs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    docs.mkdir(exist_ok=True)
    return docs


def read(tmp_path: Path, files: dict[str, str | bytes], site: SiteConfig = SITE):
    return read_docs(write_tree(tmp_path, files), site)


def one_page(tmp_path: Path, content: str, name: str = "page.md") -> Page:
    pages, problems = read(tmp_path, {name: content})
    assert problems == []
    assert len(pages) == 1
    return pages[0]


# --- headings and code blocks ---------------------------------------------------------------


def test_hash_lines_in_fenced_code_are_code_not_headings(tmp_path: Path) -> None:
    page = one_page(
        tmp_path,
        """
        # Setup

        Intro text.

        ```bash
        # install the tool
        pip install thing
        ## not a heading either
        ```

        ~~~sh
        # tilde fences too
        ```
        # still inside the tilde fence
        ~~~

        ````md
        ```
        # nested fence marker inside a longer fence
        ```
        ````

        1. Step one:

           ```bash
           # a fence nested in a list item
           make build
           ```

        ## Real heading

        Body.
        """,
    )
    assert [s.headings for s in page.sections] == [(), ("Real heading",)]
    lead = page.sections[0].text
    for line in (
        "# install the tool",
        "## not a heading either",
        "# tilde fences too",
        "# still inside the tilde fence",
        "# nested fence marker inside a longer fence",
        "   # a fence nested in a list item",
        "pip install thing",
    ):
        assert line in lead
    assert page.title == "Setup"


def test_unclosed_fence_runs_to_the_end(tmp_path: Path) -> None:
    page = one_page(tmp_path, "Text.\n\n```\n# comment\n\n## not a heading\n")
    assert [s.headings for s in page.sections] == [()]
    assert "## not a heading" in page.sections[0].text


def test_heading_path_levels_and_lead_section(tmp_path: Path) -> None:
    page = one_page(
        tmp_path,
        """
        ---
        title: Front Title
        ---

        import X from './x';

        # Big Title

        After the h1.

        ## A

        a text

        ### A1

        a1 text

        #### A1x

        deep

        ## B ##

        b text

        ### B1

        b1 text
        """,
    )
    assert page.title == "Front Title"
    assert [(s.headings, s.anchor) for s in page.sections] == [
        ((), None),
        (("A",), "a"),
        (("A", "A1"), "a1"),
        (("A", "A1", "A1x"), "a1x"),
        (("B",), "b"),
        (("B", "B1"), "b1"),
    ]
    assert page.sections[0].text == "After the h1."


def test_an_h1_after_content_is_a_section_not_the_title(tmp_path: Path) -> None:
    page = one_page(tmp_path, "Lead text.\n\n# Later H1\n\nBody.\n\n## Sub\n\nMore.\n")
    assert page.title == "page"
    assert [(s.headings, s.anchor) for s in page.sections] == [
        ((), None),
        (("Later H1",), "later-h1"),
        (("Later H1", "Sub"), "sub"),
    ]


def test_heading_needs_a_space_and_at_most_three_spaces_indent(tmp_path: Path) -> None:
    page = one_page(tmp_path, "#hashtag is text\n\n    # indented four is not a heading\n")
    assert [s.headings for s in page.sections] == [()]
    assert page.title == "page"


def test_empty_sections_are_dropped(tmp_path: Path) -> None:
    page = one_page(tmp_path, "## Empty\n\n## Full\n\nText.\n")
    assert [s.headings for s in page.sections] == [("Full",)]


# --- titles ----------------------------------------------------------------------------------


def test_title_falls_back_to_h1_then_unprefixed_file_name(tmp_path: Path) -> None:
    pages, _ = read(
        tmp_path,
        {
            "a.md": "# From H1\n\ntext\n",
            "02-file-name.md": "text only\n",
            "c.md": "---\ntitle: From Front Matter\n---\n# H1\n\ntext\n",
        },
    )
    titles = {p.file: p.title for p in pages}
    assert titles == {
        "a.md": "From H1",
        "02-file-name.md": "file-name",
        "c.md": "From Front Matter",
    }


def test_title_strips_inline_markdown(tmp_path: Path) -> None:
    page = one_page(tmp_path, "# Using `bookchat` with **Qdrant**\n\ntext\n")
    assert page.title == "Using bookchat with Qdrant"


# --- routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("01-intro", "intro"),
        ("01.intro", "intro"),
        ("01_intro", "intro"),
        ("003 - my doc", "my doc"),
        ("2024-01-01-release", "2024-01-01-release"),  # a date, not a prefix
        ("2021-11-foo", "2021-11-foo"),
        ("1.2-notes", "1.2-notes"),  # a version, not a prefix
        ("01-", "01-"),  # nothing after the separator
        ("intro", "intro"),
        ("10-things", "things"),
    ],
)
def test_number_prefixes(name: str, expected: str) -> None:
    assert strip_number_prefix(name) == expected


@pytest.mark.parametrize(
    ("source", "index"),
    [
        ("guides/index.md", True),
        ("guides/README.md", True),
        ("guides/readme.mdx", True),
        ("guides/guides.md", True),
        ("01-guides/01-guides.md", True),
        ("01-guides/guides.md", False),  # compared before number prefixes are stripped
        ("index.md", True),
        ("guides/intro.md", False),
    ],
)
def test_category_index_convention(source: str, index: bool) -> None:
    assert is_category_index(source) is index


def test_urls_follow_docusaurus_routing(tmp_path: Path) -> None:
    pages, problems = read(
        tmp_path,
        {
            "intro.md": "---\nslug: /\n---\nHome.\n",
            "01-getting-started/01-installation.md": "Install.\n",
            "01-getting-started/index.md": "Overview.\n",
            "02-guides/README.md": "Guides.\n",
            "reference/reference.md": "Ref.\n",
            "reference/02-api.mdx": "---\nslug: /api-docs\n---\nAPI.\n",
            "reference/relative.md": "---\nslug: renamed/page\n---\nRel.\n",
            "reference/up.md": "---\nslug: ../top-level\n---\nUp.\n",
            "reference/with-id.md": "---\nid: custom-id\n---\nId.\n",
            "notes/2024-01-01-release.md": "Release.\n",
        },
    )
    assert problems == []
    urls = {p.file: p.url for p in pages}
    assert urls == {
        "intro.md": "https://book.example/docs/",
        "01-getting-started/01-installation.md": (
            "https://book.example/docs/getting-started/installation"
        ),
        "01-getting-started/index.md": "https://book.example/docs/getting-started/",
        "02-guides/README.md": "https://book.example/docs/guides/",
        "reference/reference.md": "https://book.example/docs/reference/",
        "reference/02-api.mdx": "https://book.example/docs/api-docs",
        "reference/relative.md": "https://book.example/docs/reference/renamed/page",
        "reference/up.md": "https://book.example/docs/top-level",
        "reference/with-id.md": "https://book.example/docs/reference/custom-id",
        "notes/2024-01-01-release.md": "https://book.example/docs/notes/2024-01-01-release",
    }


def test_route_base_path_root_and_base_url(tmp_path: Path) -> None:
    site = SiteConfig(site_url="https://o.github.io/", base_url="/my-book", route_base_path="/")
    pages, _ = read(tmp_path, {"01-a/02-b.md": "B.\n", "index.md": "Home.\n"}, site)
    assert {p.file: p.url for p in pages} == {
        "01-a/02-b.md": "https://o.github.io/my-book/a/b",
        "index.md": "https://o.github.io/my-book/",
    }


def test_parse_number_prefixes_false_keeps_the_prefix() -> None:
    assert doc_slug("01-a/02-b.md", parse_number_prefixes=False) == "/01-a/02-b"


def test_trailing_slash_option() -> None:
    on = SiteConfig(site_url="https://x.example", trailing_slash=True)
    off = SiteConfig(site_url="https://x.example", trailing_slash=False)
    assert page_url(on, "/a") == "https://x.example/docs/a/"
    assert page_url(off, "/a/") == "https://x.example/docs/a"
    assert page_url(off, "/") == "https://x.example/docs"


# --- anchors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        # Cases from github-slugger's own fixtures.
        ("bravoCharlieDelta", "bravocharliedelta"),
        ("heading with a - dash", "heading-with-a---dash"),
        ("heading with an _ underscore", "heading-with-an-_-underscore"),
        ("heading with a period.txt", "heading-with-a-periodtxt"),
        (
            "exchange.bind_headers(exchange, routing [, bindCallback])",
            "exchangebind_headersexchange-routing--bindcallback",
        ),
        ("apostrophe’s should be trimmed", "apostrophes-should-be-trimmed"),
        ("I ♥ unicode", "i--unicode"),
        ("en–dash", "endash"),
        ("😄 - an emoji", "---an-emoji"),
        ("Привет non-latin 你好", "привет-non-latin-你好"),
        (":ok_hand: Single", "ok_hand-single"),
        ("What's `--dry-run` for?", "whats---dry-run-for"),
        ("Café & Crème", "café--crème"),
    ],
)
def test_github_slug(text: str, slug: str) -> None:
    assert github_slug(text) == slug


def test_slugger_duplicates_follow_github_slugger() -> None:
    slugger = HeadingSlugger()
    got = [slugger.slug(t) for t in ["echo", "echo", "echo 1", "echo-1", "echo", "foxtrot-1"]]
    assert got == ["echo", "echo-1", "echo-1-1", "echo-1-2", "echo-2", "foxtrot-1"]


def test_anchors_in_a_page(tmp_path: Path) -> None:
    page = one_page(
        tmp_path,
        """
        # Install

        ## Install

        one

        ## Options {#custom-options}

        two

        ## Install

        three

        ### Use [the API](./api.md) with `curl`!

        four

        ## Ünïcode Héading ✓

        five
        """,
    )
    assert [(s.headings[-1], s.anchor) for s in page.sections] == [
        ("Install", "install-1"),  # the h1 title took "install"
        ("Options", "custom-options"),
        ("Install", "install-2"),
        ("Use the API with curl!", "use-the-api-with-curl"),
        ("Ünïcode Héading ✓", "ünïcode-héading-"),
    ]


def test_page_url_and_anchor_for_unicode_heading(tmp_path: Path) -> None:
    page = one_page(tmp_path, "## 安装指南\n\n内容。\n", name="zh.md")
    assert page.url == "https://book.example/docs/zh"
    assert page.sections[0].anchor == "安装指南"


# --- MDX and admonitions ---------------------------------------------------------------------


def test_mdx_import_export_and_jsx_are_stripped_text_kept(tmp_path: Path) -> None:
    page = one_page(
        tmp_path,
        """
        ---
        title: MDX page
        ---

        import Tabs from '@theme/Tabs';
        import {
          Thing,
          Other,
        } from '@site/src/components';

        export const meta = {
          answer: 42,
        };

        {/* an MDX comment that is not prose */}
        <!-- an HTML comment -->

        Some prose with <kbd>Ctrl</kbd> and a `<Tabs>` example in code.

        <Tabs groupId="os">
          <TabItem value="linux" label="Linux">

          Linux prose stays.

          </TabItem>
        </Tabs>

        <Thing
          prop={{a: 1, b: () => 2 > 1}}
          other="x"
        />

        Closing sentence.
        """,
        name="page.mdx",
    )
    text = page.sections[0].text
    assert "Some prose with Ctrl and a `<Tabs>` example in code." in text
    assert "Linux prose stays." in text
    assert "Closing sentence." in text
    for gone in ("import", "export", "answer: 42", "TabItem", "<Thing", "prop=", "comment"):
        assert gone not in text


def test_import_word_in_prose_is_kept(tmp_path: Path) -> None:
    page = one_page(tmp_path, "You can import data.\nImport is easy.\n")
    assert page.sections[0].text == "You can import data.\nImport is easy."


def test_admonitions_keep_their_text_and_title(tmp_path: Path) -> None:
    page = one_page(
        tmp_path,
        """
        :::tip Preview first

        Use the dry run.

        :::

        :::note[Bracket title]
        Notes keep text.
        :::

        ::::warning
        Outer.
        :::info
        Inner.
        :::
        ::::
        """,
    )
    text = page.sections[0].text
    kept = ("Preview first", "Use the dry run.", "Bracket title", "Notes keep text.", "Inner.")
    assert all(k in text for k in kept)
    assert ":::" not in text


# --- what is skipped -------------------------------------------------------------------------


def test_partials_drafts_and_hidden_files_are_not_pages(tmp_path: Path) -> None:
    pages, problems = read(
        tmp_path,
        {
            "page.md": "Page.\n",
            "_partial.mdx": "Partial.\n",
            "_shared/inside.md": "Inside a partials folder.\n",
            ".hidden/x.md": "Hidden.\n",
            "draft.md": "---\ndraft: true\n---\nDraft.\n",
            "unlisted.md": "---\nunlisted: true\n---\nUnlisted but routed.\n",
            "notes.txt": "Not markdown.\n",
            "image.png": b"\x89PNG\r\n\x1a\n\x00\x00",
        },
    )
    assert problems == []
    assert sorted(p.file for p in pages) == ["page.md", "unlisted.md"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("---\ntitle: [unclosed\n---\nText.\n", "invalid YAML front matter"),
        ("---\ntitle: x\nText without a closing line.\n", "never closed"),
        ("---\n- a\n- b\n---\nText.\n", "not a YAML mapping"),
        ("---\ndraft: maybe\n---\nText.\n", "`draft` must be true or false"),
        ("---\nid: a/b\n---\nText.\n", "cannot include a slash"),
        ("---\nslug: [1, 2]\n---\nText.\n", "`slug` must be a string"),
        (b"Binary \x00\x01\x02 content", "binary"),
        (b"caf\xe9 in latin-1", "not UTF-8"),
    ],
)
def test_bad_files_are_reported_and_skipped(
    tmp_path: Path, content: str | bytes, reason: str
) -> None:
    pages, problems = read(tmp_path, {"bad.md": content, "good.md": "Good page.\n"})
    assert [p.file for p in pages] == ["good.md"]
    assert len(problems) == 1
    assert problems[0][0] == "bad.md"
    assert reason in problems[0][1]


def test_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    raw = "\ufeff---\r\ntitle: Windows\r\n---\r\n## Part\r\n\r\nText.\r\n".encode()
    pages, problems = read(tmp_path, {"win.md": raw})
    assert problems == []
    assert pages[0].title == "Windows"
    assert pages[0].sections[0].headings == ("Part",)
    assert pages[0].sections[0].text == "Text."


def test_category_labels(tmp_path: Path) -> None:
    pages, problems = read(
        tmp_path,
        {
            "01-guides/_category_.json": '{"label": "Guides & How-tos"}',
            "01-guides/02-more/_category_.yml": "label: More stuff\n",
            "01-guides/02-more/page.md": "Text.\n",
            "broken/_category_.json": "{not json",
            "broken/page.md": "Text.\n",
        },
    )
    by_file = {p.file: p.categories for p in pages}
    assert by_file["01-guides/02-more/page.md"] == ("Guides & How-tos", "More stuff")
    assert by_file["broken/page.md"] == ("broken",)
    assert [f for f, _ in problems] == ["broken/_category_.json"]


def test_missing_docs_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="docs folder not found"):
        read_docs(tmp_path / "nope", SITE)


def test_squared_abbreviations_are_symbols_but_squared_letters_are_kept() -> None:
    # U+1F14A SQUARED HV is a symbol that github-slugger removes; U+1F150 NEGATIVE CIRCLED
    # LATIN CAPITAL LETTER A is Alphabetic and kept (lowercased by nothing: it has no case).
    assert github_slug("a\U0001f14a b") == "a-b"
    assert github_slug("a\U0001f150 b") == "a\U0001f150-b"
    assert github_slug("\u24b6 circled") == "\u24d0-circled"


def test_page_title_explicit_ids_and_repeats_slug_as_docusaurus_does(tmp_path: Path) -> None:
    docs = write_tree(
        tmp_path,
        {
            "page.md": "# Setup\n\nLead.\n\n## Setup\n\nA.\n\n## Setup {#setup}\n\nB.\n\n"
            "## Setup\n\nC.\n\n## Caf&eacute; &amp; bar\n\nD.\n",
        },
    )
    [page], _ = read_docs(docs, SITE)
    anchors = [s.anchor for s in page.sections]
    # The title's h1 takes `setup`; an explicit id is used as written and takes no number.
    assert anchors == [None, "setup-1", "setup", "setup-2", "café--bar"]
    assert page.sections[-1].headings == ("Café & bar",)


def test_character_references_in_text_are_decoded_but_not_in_code(tmp_path: Path) -> None:
    body = (
        "Fast&nbsp;refresh &copy; 2024 &mdash; use &lt;View&gt; &#8212; &#x41; and `&amp;` "
        "but not &copy=2 or &unknownthing.\n\n```html\n&lt;div&gt;\n```\n"
    )
    docs = write_tree(tmp_path, {"page.md": f"# T\n\n{body}"})
    [page], _ = read_docs(docs, SITE)
    text = page.sections[0].text
    assert text.startswith("Fast refresh © 2024 — use <View> — A and `&amp;` ")
    assert "&copy=2 or &unknownthing." in text
    assert "```html\n&lt;div&gt;\n```" in text


def test_symbolic_links_out_of_the_docs_folder_are_not_ingested(tmp_path: Path) -> None:
    docs = write_tree(tmp_path, {"intro.md": "# Intro\n\nHello.\n", "real/page.md": "# P\n\nX.\n"})
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nThe owner's private notes.\n", encoding="utf-8")
    (docs / "leak.md").symlink_to(secret)
    (docs / "alias.md").symlink_to(docs / "real" / "page.md")  # inside the tree: fine
    (docs / "outside").symlink_to(tmp_path, target_is_directory=True)  # never walked into
    pages, problems = read_docs(docs, SITE)
    assert sorted(p.file for p in pages) == ["alias.md", "intro.md", "real/page.md"]
    assert problems == [("leak.md", "a symbolic link to outside the docs folder; skipped")]
    assert all("private" not in s.text for p in pages for s in p.sections)
