#!/bin/sh
# Re-export poetry.lock to the hash-pinned requirement files that run.sh and test.sh install.
# Run after every change to poetry.lock (tests/delivery/test_requirements.py checks they agree).
# Needs poetry and poetry-plugin-export.
set -eu
cd "$(dirname "$0")/../.."
poetry="${POETRY:-poetry}"
mkdir -p backend/requirements
"$poetry" export --quiet -f requirements.txt --only main -o backend/requirements/runtime.txt
"$poetry" export --quiet -f requirements.txt --with dev -o backend/requirements/dev.txt
