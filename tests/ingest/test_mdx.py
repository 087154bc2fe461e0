"""MDX as Docusaurus renders it: mdx-code-block fences, imported partials, tab labels."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from bookchat.ingest.chunker import chunk_site
from bookchat.ingest.docusaurus import read_docs
from bookchat.ingest.siteconfig import SiteConfig, resolve_site

SITE = SiteConfig(site_url="https://book.example")
SITES = Path(__file__).resolve().parents[1] / "fixtures" / "sites"


def page_text(tmp_path: Path, files: dict[str, str], name: str = "page.mdx") -> str:
    docs = tmp_path / "docs"
    for file, content in files.items():
        path = docs / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    pages, problems = read_docs(docs, SITE)
    assert problems == []
    page = next(p for p in pages if p.file == name)
    return "\n\n".join(s.text for s in page.sections)


def test_mdx_code_block_is_rendered_not_quoted(tmp_path: Path) -> None:
    text = page_text(
        tmp_path,
        {
            "page.mdx": """
            # Install

            ````mdx-code-block
            import Tabs from '@theme/Tabs';
            import TabItem from '@theme/TabItem';

            <Tabs>
            <TabItem value="npm">

            ```bash
            npm install thing
            ```

            </TabItem>
            </Tabs>
            ````

            Then run it.
            """
        },
    )
    assert "mdx-code-block" not in text
    assert "import Tabs" not in text
    assert "<Tabs>" not in text
    assert "```bash\nnpm install thing\n```" in text  # the real code inside stays code
    assert "npm:" in text
    assert "Then run it." in text


def test_partials_are_inlined_where_they_are_used(tmp_path: Path) -> None:
    text = page_text(
        tmp_path,
        {
            "page.mdx": """
            # Guide

            import Note from './_note.mdx';
            import Shared from '@site/shared/_shared.md'; import Escaped from './\\_escaped.md';

            Before the note.

            <Note />

            Between.

            <Shared/>

            <Escaped></Escaped>

            ```mdx
            <Note />
            ```
            """,
            "_note.mdx": """
            ---
            title: ignored
            ---
            The note says **keep backups**.

            import Inner from './_inner.md';

            <Inner />
            """,
            "_inner.md": "Inner partial text.\n",
            "_escaped.md": "Escaped path works.\n",
            "../shared/_shared.md": "Shared through the site alias.\n",
        },
    )
    assert text.index("Before the note.") < text.index("keep backups") < text.index("Between.")
    assert "title: ignored" not in text
    assert "Inner partial text." in text
    assert "Shared through the site alias." in text
    assert "Escaped path works." in text
    # Inside a code block the usage is an example, left as written.
    assert "```mdx\n<Note />\n```" in text


def test_a_partial_outside_the_book_is_not_read(tmp_path: Path) -> None:
    # A page (or a symlinked partial) that imports a file from outside the book's folder must
    # not pull, say, a home folder's notes into passages that strangers can ask for.
    book = tmp_path / "book"
    secret = tmp_path / "secret.md"
    secret.write_text("The owner's private notes.\n", encoding="utf-8")
    (book / "docs").mkdir(parents=True)
    (book / "docs" / "_link.md").symlink_to(secret)
    text = page_text(
        book,
        {
            "page.mdx": """
            import Up from '../../secret.md';
            import Linked from './_link.md';
            import Fine from './_fine.md';

            Start.

            <Up />

            <Linked />

            <Fine />
            """,
            "_fine.md": "Inside the book.\n",
        },
    )
    assert "Inside the book." in text
    assert "private notes" not in text


def test_a_partial_cycle_stops(tmp_path: Path) -> None:
    text = page_text(
        tmp_path,
        {
            "page.mdx": "import A from './_a.mdx';\n\nStart.\n\n<A />\n",
            "_a.mdx": "import B from './_b.mdx';\n\nIn A.\n\n<B />\n",
            "_b.mdx": "import A from './_a.mdx';\n\nIn B.\n\n<A />\n",
        },
    )
    assert text.count("In A.") == 1
    assert text.count("In B.") == 1


def test_each_tab_keeps_its_label(tmp_path: Path) -> None:
    text = page_text(
        tmp_path,
        {
            "page.mdx": """
            <Tabs groupId="os">
              <TabItem value="mac" label="macOS" default>
                Use Homebrew.
              </TabItem>
              <TabItem value="win" label={'Windows'}>
                Use winget.
              </TabItem>
              <TabItem value="linux">
                Use apt.
              </TabItem>
            </Tabs>
            """
        },
    )
    assert re.search(r"macOS:\s+Use Homebrew\.", text)
    assert re.search(r"Windows:\s+Use winget\.", text)
    assert re.search(r"linux:\s+Use apt\.", text)
    assert "TabItem" not in text


def test_real_sites_lose_no_partial_and_leak_no_mdx() -> None:
    jest = chunk_site(resolve_site(SITES / "jest" / "website"))
    upgrading = [c.text for c in jest.chunks if c.file == "UpgradingToJest29.md"]
    assert any("explicitly import Jest APIs" in t for t in upgrading)
    native = chunk_site(resolve_site(SITES / "react-native-website" / "website"))
    entry = [c.text for c in native.chunks if c.file == "global-intersectionobserverentry.md"]
    assert any("only available in React Native’s Canary" in t for t in entry)
    for chunk in native.chunks + jest.chunks:
        prose = re.sub(r"^(`{3,}|~{3,}).*?^\1", "", chunk.text, flags=re.M | re.S)
        assert "mdx-code-block" not in chunk.text
        assert not re.search(r"^import .* from ", prose, re.M), chunk.text
        assert "<TabItem" not in prose
        assert "<Tabs" not in prose


def test_real_chunks_are_well_formed_fences() -> None:
    for site in ("jest/website", "react-native-website/website", "redux/website"):
        book = chunk_site(resolve_site(SITES / site), max_tokens=80)
        for chunk in book.chunks:
            fences = re.findall(r"^[ \t]*(?:`{3,}|~{3,})", chunk.text, re.M)
            assert len(fences) % 2 == 0, (site, chunk.file, chunk.text)


def test_html_headings_are_headings_with_their_own_ids_or_their_parents(tmp_path: Path) -> None:
    # React Native's setup partials write their headings in HTML (CC BY 4.0,
    # facebook/react-native-website, docs/_getting-started-linux-android.md, shortened).
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "setup.md").write_text(
        "# Setup\n\n## Installing dependencies\n\nYou will need Node and a JDK.\n\n"
        "<h3>Node</h3>\n\nFollow the instructions to install Node 22.11.0 or newer.\n\n"
        '<h4 id="android-sdk">2. Install the <b>Android</b> SDK</h4>\n\n'
        "Android Studio installs the latest Android SDK by default.\n\n"
        "## Installing dependencies\n\nOnce more, for another platform.\n",
        encoding="utf-8",
    )
    pages, problems = read_docs(docs, SITE)
    assert problems == []
    assert [(s.headings[-1], s.anchor) for s in pages[0].sections] == [
        ("Installing dependencies", "installing-dependencies"),
        ("Node", "installing-dependencies"),  # no id of its own: its parent's
        ("2. Install the Android SDK", "android-sdk"),
        # The HTML headings took no slug: the Markdown repeat is still -1.
        ("Installing dependencies", "installing-dependencies-1"),
    ]
    assert pages[0].sections[2].headings == (
        "Installing dependencies",
        "Node",
        "2. Install the Android SDK",
    )


def test_jsx_elements_with_nested_expression_attributes_leave_no_markup(tmp_path: Path) -> None:
    # Objects four deep (ionic's <Playground>), and a string holding a lone brace (Detox's
    # <FlavorizedCodeBlock header={'apps: {\n'}>): the tags go, the prose around them stays.
    text = page_text(
        tmp_path,
        {
            "page.mdx": r"""
            # Page

            Before the demo.

            <Playground
              version="9"
              code={{
                react,
                angular: { files: { 'src/app.html': { name: html_source } } },
              }}
              src="usage/demo.html"
            />

            <Flavored
              header={'   apps: {\n'}
              note={`a } in ${"a template"}`}
              flavors={['Debug', 'Release']}
            >

            After the demo.

            </Flavored>
            """
        },
    )
    assert "Before the demo." in text
    assert "After the demo." in text
    for markup in ("<Playground", "code={{", "files:", "src=", "<Flavored", "header=", "/>"):
        assert markup not in text, text


def test_real_playground_partials_leave_no_markup() -> None:
    # ionic-docs: every component page inlines @site/static/usage/… partials whose whole body
    # is one multi-line <Playground code={{…}} /> element; 437 of its 2,678 chunks carried it.
    book = chunk_site(resolve_site(SITES / "ionic-docs"))
    texts = [c.text for c in book.chunks if c.file == "api/item-sliding.md"]
    assert any("Sliding item options are placed" in t for t in texts)
    assert any("Options can be expanded to take up the full width" in t for t in texts)
    for chunk in book.chunks:
        prose = re.sub(r"^(`{3,}|~{3,}).*?^\1", "", chunk.text, flags=re.M | re.S)
        assert "<Playground" not in prose, chunk.text
        assert "code={{" not in prose, chunk.text


def test_a_partial_renders_the_props_it_is_given(tmp_path: Path) -> None:
    # Docusaurus's "Importing Markdown" pattern; Detox's config pages use it for each section.
    text = page_text(
        tmp_path,
        {
            "_where.mdx": """
            Define the <code>{props.section}</code> section globally or per configuration.

            ```js
            const shown = {props.section};
            ```
            """,
            "page.mdx": """
            import Where from './_where.mdx';

            # Config

            ## Apps

            <Where section="apps" />

            ## Devices

            <Where section={'devices'} />

            ## Other

            <Where />
            """,
        },
    )
    assert "Define the apps section globally" in text
    assert "Define the devices section globally" in text
    assert "Define the  section globally" in text  # no prop: React renders nothing
    assert "const shown = {props.section};" in text  # code shows the expression as written
    assert "{props.section} section" not in text
