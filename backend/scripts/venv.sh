# Sourced by run.sh and test.sh (with deps=runtime or deps=dev set): create .venv and install the dependencies pinned by poetry.lock
# (exported, with hashes, to backend/requirements/$deps.txt), then bookchat itself without deps.
# Poetry's own installer is not used: it needs PyPI's JSON API, which some mirrors lack.
set -eu
kind="${deps:?set deps=runtime or deps=dev before sourcing venv.sh}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "bookchat needs Python 3.11 or newer (found $("$python" --version 2>&1)); set PYTHON=python3.11" >&2
    exit 1
fi
# Everything said here goes to stderr, so a command's own output stays clean.
say() { echo "bookchat: $*" >&2; }
if [ ! -x .venv/bin/python ]; then
    say "first run: creating the Python environment in $(pwd)/.venv"
    # Debian ships venv's pip bootstrap separately (python3-venv); say so instead of a trace.
    if ! "$python" -m venv .venv >/dev/null 2>&1; then
        rm -rf .venv
        echo "bookchat: '$python -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
        exit 1
    fi
fi
stamp_of() { cat "backend/requirements/$1.txt" pyproject.toml | sha256sum | cut -d' ' -f1; }
current() { [ "$(cat ".venv/.bookchat-$1.sha256" 2>/dev/null)" = "$(stamp_of "$1")" ]; }
stamp=".venv/.bookchat-$kind.sha256"
want="$(stamp_of "$kind")"
# dev.txt pins every package of runtime.txt too (main + dev groups): after test.sh, run.sh
# has nothing to install.
if current "$kind" || { [ "$kind" = runtime ] && current dev; }; then
    :
else
    count="$(grep -c '^[a-zA-Z0-9]' "backend/requirements/$kind.txt" || true)"
    say "installing the $count locked $kind dependencies (backend/requirements/$kind.txt)" \
        "into .venv: about a minute the first time, once per change of the lock"
    started="$(date +%s)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        --require-hashes -r "backend/requirements/$kind.txt"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    # pip compiles the dependencies' bytecode, not an editable project's: without this, every
    # start compiles bookchat's ~150 modules again where PYTHONDONTWRITEBYTECODE is set (about
    # 0.15 s of a 1 s start-up); a source edited later is recompiled as usual.
    .venv/bin/python -m compileall -q -j 0 backend/bookchat >/dev/null
    echo "$want" > "$stamp"
    say "installed in $(($(date +%s) - started)) s"
fi
