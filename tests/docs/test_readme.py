"""The README a newcomer reads first: two commands, a five-minute path, then links to reference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bookchat.config import Settings

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "backend" / "docs"
# The README is the front door: longer than this and the path drowns in reference again.
MAX_README_LINES = 150
PATH_TITLE = "From clone to your own book answering"


def sections(text: str) -> list[tuple[str, str]]:
    """(title, body) of each `## ` section, in order."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def code_blocks(body: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", body, flags=re.M | re.S)


def commands(block: str) -> list[str]:
    """The command of each line of a shell block, without its trailing comment."""
    found = []
    for line in block.splitlines():
        command = re.sub(r"\s+#\s.*$", "", line).strip()
        if command and not command.startswith("#"):
            found.append(command)
    return found


def test_the_two_commands_come_first() -> None:
    text = README.read_text(encoding="utf-8")
    title, body = sections(text)[0]
    assert title == "The two commands"
    assert commands(code_blocks(body)[0]) == [
        "sh backend/scripts/run.sh",
        "sh backend/scripts/test.sh",
    ]


def test_the_five_minute_path_follows_with_three_commands() -> None:
    titles = [title for title, _ in sections(README.read_text(encoding="utf-8"))]
    assert titles[1] == PATH_TITLE
    body = dict(sections(README.read_text(encoding="utf-8")))[PATH_TITLE]
    blocks = code_blocks(body)
    assert len(blocks) == 1, "the path is one block of commands to copy"
    assert len(commands(blocks[0])) == 3


def test_the_readme_is_short_and_reference_lives_in_linked_pages() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES
    linked = set(re.findall(r"\]\((backend/docs/[^)#]+)", text))
    pages = {f"backend/docs/{page.name}" for page in DOCS.glob("*.md")}
    assert pages, "the reference pages exist"
    assert linked == pages, "every reference page is linked from the README, and only those"


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a page's headings (lowercase, punctuation dropped, spaces -> -)."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("source", ["README.md", *sorted(p.name for p in DOCS.glob("*.md"))])
def test_every_link_to_a_page_and_anchor_resolves(source: str) -> None:
    path = README if source == "README.md" else DOCS / source
    text = path.read_text(encoding="utf-8")
    for target, anchor in re.findall(
        r"\]\(((?:backend/docs/|\./)?[\w./-]+\.md)(?:#([\w-]+))?\)", text
    ):
        page = (path.parent / target).resolve()
        assert page.is_file(), f"{source} links to {target}, which does not exist"
        if anchor:
            assert anchor in _anchors(page.read_text(encoding="utf-8")), f"{target}#{anchor}"


def test_every_variable_the_settings_read_is_in_the_configuration_table() -> None:
    table = (DOCS / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Z_]+)`", table, flags=re.M))
    documented |= set(re.findall(r"^\| `[A-Z_]+` / `([A-Z_]+)`", table, flags=re.M))
    read = {str(field.validation_alias) for field in Settings.model_fields.values()}
    read = {name for alias in read for name in re.findall(r"[A-Z][A-Z_]+", alias)}
    assert read <= documented, sorted(read - documented)
