"""The image digest hf/Dockerfile is pinned to: parsing, validation and the rewrite.

The Space's whole build is `FROM ghcr.io/<owner>/bookchat@sha256:<64 hex>`. A digest names one
immutable image, so the Space runs exactly what the release workflow built, ran and probed.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

IMAGE_NAME = "bookchat"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# The digest committed before the first release: well-formed, names no image, and marked.
UNRELEASED_DIGEST = "sha256:" + "0" * 64
UNRELEASED_MARKER = "# bookchat: unreleased"
# GHCR namespaces are GitHub user or organisation names, which registries require lower-case.
_OWNER = r"[a-z0-9](?:[a-z0-9-]{0,37}[a-z0-9])?"
IMAGE = re.compile(rf"ghcr\.io/{_OWNER}/{IMAGE_NAME}")
_FROM = re.compile(
    r"^FROM[ \t]+(?P<image>[^\s@]+)@(?P<digest>\S+)(?P<rest>[ \t]+AS[ \t]+\S+)?[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)


class PinError(ValueError):
    """A digest, image name or Dockerfile that cannot be pinned; the message says why."""


@dataclass(frozen=True)
class Pinned:
    """The result of a pin: the new Dockerfile text and what changed."""

    text: str
    image: str
    digest: str
    previous_image: str
    previous: str

    @property
    def changed(self) -> bool:
        """Whether the FROM line differs from before."""
        return (self.image, self.digest) != (self.previous_image, self.previous)


def parse_image(name: str) -> str:
    """A GHCR image name `ghcr.io/<owner>/bookchat`, or PinError."""
    name = name.strip()
    if not IMAGE.fullmatch(name):
        raise PinError(
            f"{name!r} is not the expected image name ghcr.io/<owner>/{IMAGE_NAME} "
            "(owner: a lower-case GitHub user or organisation name)"
        )
    return name


def parse_reference(reference: str, *, image: str) -> str:
    """The digest in `sha256:<64 hex>` or `<image>@sha256:<64 hex>`; the image must match."""
    reference = reference.strip()
    named, at, digest = reference.rpartition("@")
    if at and named != image:
        raise PinError(f"{reference!r} names image {named!r}, expected {image!r}")
    if not DIGEST.fullmatch(digest):
        raise PinError(
            f"{digest!r} is not an image digest: expected sha256: followed by "
            "64 lower-case hexadecimal digits"
        )
    if digest == UNRELEASED_DIGEST:
        raise PinError(f"{digest} is the placeholder for 'not released yet', not an image")
    return digest


def current(text: str) -> tuple[str, str]:
    """The (image, digest) of the Dockerfile's single pinned FROM line, or PinError."""
    lines = list(_FROM.finditer(text))
    froms = re.findall(r"^FROM\b", text, re.MULTILINE | re.IGNORECASE)
    if len(froms) != 1 or len(lines) != 1:
        raise PinError(
            "the Dockerfile must have exactly one FROM line of the form "
            f"FROM ghcr.io/<owner>/{IMAGE_NAME}@sha256:<64 hex> (found {len(froms)} FROM lines)"
        )
    return lines[0]["image"], lines[0]["digest"]


def pin(text: str, reference: str, *, image: str | None = None) -> Pinned:
    """Rewrite the FROM line to `image@digest`, dropping the unreleased marker."""
    old_image, old_digest = current(text)
    expected = parse_image(image if image is not None else old_image)
    digest = parse_reference(reference, image=expected)
    match = _FROM.search(text)
    assert match is not None  # current() found exactly one
    line = f"FROM {expected}@{digest}{match['rest'] or ''}"
    new = text[: match.start()] + line + text[match.end() :]
    # The marker says "this digest is a placeholder"; a real digest makes it false.
    new = "".join(
        kept for kept in new.splitlines(keepends=True) if not kept.startswith(UNRELEASED_MARKER)
    )
    return Pinned(
        text=new, image=expected, digest=digest, previous_image=old_image, previous=old_digest
    )


def pin_file(path: Path, reference: str, *, image: str | None = None) -> Pinned:
    """Pin the Dockerfile at path in place (atomically: a crash leaves the old file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PinError(f"cannot read {path}: {exc.strerror or exc}") from None
    result = pin(text, reference, image=image)
    if result.text != text:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(result.text)
            os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return result
