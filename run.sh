#!/usr/bin/env bash
# One entry point for a fresh clone; each command first sets up .venv.
#   ./run.sh demo [--app]       the demo: real photos, all eight operators
#   ./run.sh test [pytest args] the test suite (real MongoDB, real images, the App in Chromium)
#   ./run.sh bench [--quick]    the benchmarks (ratios against the reference methods)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${DEDUP_VENV:-.venv}"

setup_python() {
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    local stamp="$VENV/.dedup-installed"
    if ! cmp -s pyproject.toml "$stamp" 2>/dev/null; then
        "$VENV/bin/pip" install -q --upgrade pip
        "$VENV/bin/pip" install -q ".[test]"
        cp pyproject.toml "$stamp"
    fi
}

command="${1:-}"
shift || true
case "$command" in
    demo)
        setup_python
        exec "$VENV/bin/python" scripts/demo.py "$@"
        ;;
    test)
        setup_python
        # the App tests drive Debian's Chromium (Playwright downloads no browser)
        if [ ! -x /usr/bin/chromium ]; then
            { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
                && [ -x /usr/bin/chromium ]; } || {
                echo "run.sh: the App tests need /usr/bin/chromium; installing the apt" \
                    "package 'chromium' failed (needs root and apt)" >&2
                exit 1
            }
        fi
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    bench)
        setup_python
        exec "$VENV/bin/python" benchmarks/run.py "$@"
        ;;
    *)
        echo "usage: ./run.sh demo [--app] | test [pytest args] | bench [--quick]" >&2
        exit 2
        ;;
esac
