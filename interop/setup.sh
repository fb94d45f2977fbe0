#!/usr/bin/env bash
# Creates (or reuses) the interop suite's throwaway Python environment: a venv in
# target/interop-venv with plain.jobs and what it needs, and the OpenTelemetry SDK for the trace
# tests, installed by name from PyPI (interop/requirements.txt). Prints the venv's python on
# stdout; messages go to stderr.
#
#   PY="$(interop/setup.sh)" && "$PY" interop/run.py info
#
# A second run is instant: the venv carries a stamp of requirements.txt and of the Python it
# was made with, and is rebuilt only when either changes (or the venv is broken).
#
# Python: plain.jobs 0.57.5 needs 3.13 or newer. Looked for, in order: $INTEROP_PYTHON;
# python3.14, python3.13, python3 on PATH; pyenv's versions ($PYENV_ROOT or ~/.pyenv, and
# /root/.pyenv); /usr/local/bin and /usr/bin. With none found it fails, saying so: the suite
# never skips silently.
#
# Environment: INTEROP_PYTHON (a python3.13+ to use), INTEROP_VENV (default
# <repo>/target/interop-venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQUIREMENTS="$ROOT/interop/requirements.txt"
VENV="${INTEROP_VENV:-$ROOT/target/interop-venv}"
MIN_MINOR=13

say() { echo "interop/setup.sh: $*" >&2; }

# Prints "3.N.M" when $1 is a CPython >= 3.13 that can make a venv with pip.
usable_python() {
    "$1" - "$MIN_MINOR" 2>/dev/null <<'EOF'
import sys
if sys.version_info[:2] < (3, int(sys.argv[1])):
    sys.exit(1)
import ensurepip, venv  # noqa: F401  (Debian splits these out of the interpreter)
print(".".join(map(str, sys.version_info[:3])))
EOF
}

candidates() {
    if [[ -n "${INTEROP_PYTHON:-}" ]]; then
        echo "$INTEROP_PYTHON"
        return
    fi
    local name dir
    for name in python3.14 python3.13 python3; do
        command -v "$name" 2>/dev/null || true
    done
    for dir in "${PYENV_ROOT:-$HOME/.pyenv}" /root/.pyenv; do
        # Newest first.
        ls -d "$dir"/versions/3.*/bin/python3 2>/dev/null | sort -V -r || true
    done
    for dir in /usr/local/bin /usr/bin; do
        ls "$dir"/python3.1[3-9] "$dir"/python3.[2-9][0-9] 2>/dev/null || true
    done
}

find_python() {
    local candidate version looked=()
    while IFS= read -r candidate; do
        [[ -n "$candidate" ]] || continue
        looked+=("$candidate")
        if version="$(usable_python "$candidate")"; then
            PYTHON="$candidate"
            PYTHON_VERSION="$version"
            return 0
        fi
    done < <(candidates)
    say "no Python 3.$MIN_MINOR or newer (with venv and ensurepip) was found, so the interop"
    say "suite cannot run. Looked at: ${looked[*]:-nothing}."
    say "Install one (pyenv install 3.13, or a distribution package python3.13) or point"
    say "INTEROP_PYTHON at one."
    exit 1
}

mkdir -p "$(dirname "$VENV")"
# One setup at a time (tests may start several at once).
exec 9>"$VENV.lock"
if command -v flock >/dev/null; then
    flock 9
fi

find_python
STAMP="python $PYTHON_VERSION ($PYTHON); requirements $(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"

if [[ -f "$VENV/.interop-stamp" && "$(cat "$VENV/.interop-stamp")" == "$STAMP" ]] &&
    "$VENV/bin/python" -c "import plain.jobs, plain.postgres, psycopg, opentelemetry.sdk.trace" \
        2>/dev/null; then
    echo "$VENV/bin/python"
    exit 0
fi

say "creating $VENV with Python $PYTHON_VERSION ($PYTHON)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$VENV/bin/python" -m pip install --quiet --requirement "$REQUIREMENTS" >&2; then
    say "pip could not install interop/requirements.txt from PyPI"
    rm -rf "$VENV"
    exit 1
fi
echo "$STAMP" >"$VENV/.interop-stamp"
say "ready: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(*(f"{p} {m.version(p)}" for p in ("plain.jobs", "plain.postgres", "opentelemetry-sdk")), sep=", ")')"
echo "$VENV/bin/python"
