#!/bin/sh
# The test command: make (or reuse) .venv with the locked dev dependencies, lint, then pytest.
# Works on a fresh Debian with Python 3.11 and no Nix. Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/../.."
deps=dev
. backend/scripts/venv.sh
.venv/bin/ruff check backend tests
.venv/bin/ruff format --check backend tests
exec .venv/bin/python -m pytest "$@"
