#!/bin/sh
# The run command: make (or reuse) .venv with the locked runtime dependencies, then serve.
# With no configuration at all bookchat answers from its sample book on 127.0.0.1:8000.
# Extra arguments go to `bookchat serve` (for example --port 8080); a first argument that
# names a command runs that command instead (run.sh ingest path/to/book, run.sh ask "…").
# Paths in the arguments are taken from the folder run.sh was started in.
set -eu
here="$(pwd)"
cd "$(dirname "$0")/../.."
root="$(pwd)"
deps=runtime
. backend/scripts/venv.sh
cd "$here"
case "${1:-}" in
    serve | ingest | ask | eval | report | healthcheck | probe | release | --version | --help | -h)
        exec "$root/.venv/bin/bookchat" "$@" ;;
esac
exec "$root/.venv/bin/bookchat" serve "$@"
