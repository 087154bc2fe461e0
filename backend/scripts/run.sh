#!/bin/sh
# The run command: make (or reuse) .venv with the locked runtime dependencies, then serve.
# With no configuration at all bookchat answers from its sample book on 127.0.0.1:8000.
# Extra arguments go to `bookchat serve` (for example --port 8080).
set -eu
cd "$(dirname "$0")/../.."
deps=runtime
. backend/scripts/venv.sh
exec .venv/bin/bookchat serve "$@"
