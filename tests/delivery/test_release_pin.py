"""`bookchat release pin`: rewrite hf/Dockerfile's digest, refusing anything malformed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bookchat.cli import main
from bookchat.release import UNRELEASED_DIGEST, UNRELEASED_MARKER, PinError, current, pin

IMAGE = "ghcr.io/acme/bookchat"
DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER = "sha256:" + "fedcba9876543210" * 4

UNRELEASED = f"""\
# The Space's build.
{UNRELEASED_MARKER}: the all-zero digest below names no image.
FROM {IMAGE}@{UNRELEASED_DIGEST}

HEALTHCHECK --interval=30s CMD ["bookchat", "healthcheck"]
"""


@pytest.fixture
def dockerfile(tmp_path: Path) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(UNRELEASED, encoding="utf-8")
    path.chmod(0o640)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["release", "pin", *argv])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def test_pin_rewrites_the_digest_and_drops_the_unreleased_marker(
    dockerfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([DIGEST, "--dockerfile", str(dockerfile)], capsys)
    assert (code, err) == (0, "")
    assert out == f"{dockerfile}: FROM {IMAGE}@{DIGEST} (was {UNRELEASED_DIGEST})\n"
    assert dockerfile.read_text(encoding="utf-8") == (
        "# The Space's build.\n"
        f"FROM {IMAGE}@{DIGEST}\n"
        "\n"
        'HEALTHCHECK --interval=30s CMD ["bookchat", "healthcheck"]\n'
    )
    # Written in place: same permissions, no temporary file left behind.
    assert stat.S_IMODE(dockerfile.stat().st_mode) == 0o640
    assert [p.name for p in dockerfile.parent.iterdir()] == ["Dockerfile"]


def test_pin_again_changes_only_the_digest(
    dockerfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run([DIGEST, "--dockerfile", str(dockerfile)], capsys)
    first = dockerfile.read_text(encoding="utf-8")
    code, out, _ = run([f"{IMAGE}@{OTHER}", "--dockerfile", str(dockerfile)], capsys)
    assert code == 0
    assert out.endswith(f"(was {DIGEST})\n")
    assert dockerfile.read_text(encoding="utf-8") == first.replace(DIGEST, OTHER)


def test_pinning_the_same_digest_is_a_no_op(
    dockerfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run([DIGEST, "--dockerfile", str(dockerfile)], capsys)
    before = dockerfile.read_bytes()
    code, out, _ = run([DIGEST, "--dockerfile", str(dockerfile)], capsys)
    assert code == 0
    assert "already FROM" in out
    assert dockerfile.read_bytes() == before


def test_image_option_sets_the_owner(dockerfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(
        [DIGEST, "--image", "ghcr.io/my-org/bookchat", "--dockerfile", str(dockerfile)], capsys
    )
    assert code == 0
    assert current(dockerfile.read_text(encoding="utf-8")) == ("ghcr.io/my-org/bookchat", DIGEST)


@pytest.mark.parametrize(
    ("reference", "why"),
    [
        ("sha256:" + "0123456789ABCDEF" * 4, "64 lower-case hexadecimal"),
        ("sha256:" + "0" * 63, "64 lower-case hexadecimal"),
        ("sha256:" + "0" * 65, "64 lower-case hexadecimal"),
        ("sha256:" + "g" * 64, "64 lower-case hexadecimal"),
        ("sha512:" + "0" * 128, "64 lower-case hexadecimal"),
        ("0123456789abcdef" * 4, "64 lower-case hexadecimal"),
        ("latest", "64 lower-case hexadecimal"),
        ("", "64 lower-case hexadecimal"),
        (UNRELEASED_DIGEST, "placeholder"),
        (f"ghcr.io/someone-else/bookchat@{DIGEST}", "expected 'ghcr.io/acme/bookchat'"),
        (f"docker.io/acme/bookchat@{DIGEST}", "expected 'ghcr.io/acme/bookchat'"),
        (f"ghcr.io/acme/bookchat:1.0@{DIGEST}", "expected 'ghcr.io/acme/bookchat'"),
    ],
)
def test_malformed_references_are_refused_and_nothing_is_written(
    dockerfile: Path, reference: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([reference, "--dockerfile", str(dockerfile)], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("bookchat release pin: ")
    assert why in err
    assert dockerfile.read_text(encoding="utf-8") == UNRELEASED


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/acme/other",
        "ghcr.io/Acme/bookchat",
        "ghcr.io/acme/bookchat:latest",
        "docker.io/acme/bookchat",
        "ghcr.io/-acme/bookchat",
        "ghcr.io//bookchat",
    ],
)
def test_unexpected_image_names_are_refused(
    dockerfile: Path, image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run([DIGEST, "--image", image, "--dockerfile", str(dockerfile)], capsys)
    assert code == 2
    assert "is not the expected image name ghcr.io/<owner>/bookchat" in err
    assert dockerfile.read_text(encoding="utf-8") == UNRELEASED


@pytest.mark.parametrize(
    "text",
    [
        "FROM ghcr.io/acme/bookchat:latest\n",
        f"FROM python:3.11 AS build\nFROM {IMAGE}@{UNRELEASED_DIGEST}\n",
        "HEALTHCHECK NONE\n",
        "",
    ],
)
def test_dockerfiles_without_one_pinned_from_are_refused(text: str) -> None:
    with pytest.raises(PinError, match="exactly one FROM line"):
        pin(text, DIGEST)


def test_the_image_in_a_malformed_dockerfile_is_checked_too() -> None:
    with pytest.raises(PinError, match="expected image name"):
        pin(f"FROM docker.io/library/python@{OTHER}\n", DIGEST)


def test_a_missing_dockerfile_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run([DIGEST, "--dockerfile", str(tmp_path / "nope")], capsys)
    assert code == 2
    assert f"cannot read {tmp_path / 'nope'}" in err


def test_a_stage_name_survives_the_rewrite() -> None:
    result = pin(f"FROM {IMAGE}@{UNRELEASED_DIGEST} AS space\n", DIGEST)
    assert result.text == f"FROM {IMAGE}@{DIGEST} AS space\n"
