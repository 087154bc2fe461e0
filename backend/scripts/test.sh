#!/bin/sh
# The test command: make (or reuse) .venv with the locked dev dependencies, lint, check the
# import layering (pyproject's [tool.importlinter]), then pytest.
# Works on a fresh Debian with Python 3.11 and no Nix. Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/../.."
deps=dev
. backend/scripts/venv.sh
.venv/bin/ruff check backend tests
.venv/bin/ruff format --check backend tests
.venv/bin/lint-imports --no-cache --no-logo
exec .venv/bin/python -m pytest "$@"
