"""hf/: the Space's Dockerfile and README frontmatter, and their honesty about the digest."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from bookchat.config import Settings
from bookchat.release import IMAGE, UNRELEASED_DIGEST, UNRELEASED_MARKER, current, parse_image
from tests.delivery.tools import REPO

HF = REPO / "hf"
# The colours the Hub accepts for colorFrom/colorTo.
COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


def dockerfile() -> str:
    return (HF / "Dockerfile").read_text(encoding="utf-8")


def frontmatter() -> tuple[dict[str, object], str]:
    text = (HF / "README.md").read_text(encoding="utf-8")
    match = re.fullmatch(r"---\n(.*?)\n---\n(.*)", text, re.DOTALL)
    assert match, "hf/README.md must start with a --- YAML block ---"
    data = yaml.safe_load(match[1])
    assert isinstance(data, dict)
    return data, match[2]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, comments dropped, continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_is_one_pinned_from_of_the_bookchat_image() -> None:
    image, digest = current(dockerfile())
    assert parse_image(image) == image
    assert IMAGE.fullmatch(image)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)


def test_dockerfile_adds_only_what_a_space_needs() -> None:
    # The image has no shell: RUN could not work, and anything built here would not be the
    # image the release workflow tested.
    keywords = [keyword for keyword, _ in instructions(dockerfile())]
    assert keywords[0] == "FROM"
    assert set(keywords) <= {"FROM", "HEALTHCHECK", "ENV", "LABEL", "EXPOSE"}


def test_healthcheck_is_exec_form_bookchat_healthcheck() -> None:
    checks = [rest for keyword, rest in instructions(dockerfile()) if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    argv = json.loads(command)  # exec form: a JSON array, no shell involved
    assert argv[:2] == ["bookchat", "healthcheck"]
    timeout = re.search(r"--timeout=(\d+)s", options)
    assert timeout, "a HEALTHCHECK timeout bounds a hung probe"
    if "--timeout" in argv:
        # The probe must give up before Docker kills it, so it can print why.
        assert float(argv[argv.index("--timeout") + 1]) < int(timeout[1])


def test_placeholder_digest_is_marked_and_a_real_one_is_not() -> None:
    text = dockerfile()
    _, digest = current(text)
    marked = any(line.startswith(UNRELEASED_MARKER) for line in text.splitlines())
    readme = (HF / "README.md").read_text(encoding="utf-8")
    if digest == UNRELEASED_DIGEST:
        assert marked, "the all-zero digest must carry the unreleased marker"
        assert "placeholder" in readme
        assert "cannot build" in readme
    else:
        assert not marked, "a real digest must not be called unreleased"


def test_frontmatter_configures_a_docker_space_on_7860() -> None:
    data, _ = frontmatter()
    assert {"title", "emoji", "colorFrom", "colorTo", "sdk", "app_port", "short_description"} <= (
        set(data)
    )
    assert data["sdk"] == "docker"
    assert data["app_port"] == 7860
    assert data["colorFrom"] in COLOURS
    assert data["colorTo"] in COLOURS
    assert isinstance(data["short_description"], str)
    assert 0 < len(data["short_description"]) <= 60
    assert re.fullmatch(r"\d+[smh]", str(data["startup_duration_timeout"]))
    assert isinstance(data["emoji"], str)
    assert len(data["emoji"]) <= 2


def test_image_serves_the_port_the_space_routes_to() -> None:
    from tests.delivery.test_image_definition import image

    config = image()["config"]
    data, _ = frontmatter()
    assert config["ExposedPorts"] == {f"{data['app_port']}/tcp": {}}
    argv = config["Cmd"]
    assert argv[argv.index("--port") + 1] == str(data["app_port"])


def test_readme_documents_the_endpoints_that_exist(tmp_path: object) -> None:
    from bookchat.app import create_app

    _, body = frontmatter()
    documented = set(re.findall(r"`(?:GET|POST) (/[^`\s]*)`", body))
    assert {"/", "/api/chat", "/api/health"} <= documented
    app = create_app(Settings(BOOKCHAT_DATA_DIR=str(tmp_path)))
    served = {re.sub(r"\{[^}]+\}", "{}", path) for path in _paths(app.routes)}
    for path in documented:
        assert re.sub(r"\{[^}]+\}", "{}", path) in served, path


def _paths(routes: list[object]) -> list[str]:
    """Route paths, including those of routers the app includes."""
    found: list[str] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += _paths(list(included.routes))
        elif isinstance(getattr(route, "path", None), str):
            found.append(route.path)  # type: ignore[attr-defined]
    return found


@pytest.mark.parametrize(
    "name", ["GEMINI_API_KEY", "QDRANT_URL", "QDRANT_API_KEY", "DATABASE_URL", "ALLOWED_ORIGINS"]
)
def test_readme_documents_each_secret_the_settings_read(name: str) -> None:
    _, body = frontmatter()
    assert f"`{name}`" in body
    aliases = {str(field.validation_alias) for field in Settings.model_fields.values()}
    assert name in aliases
