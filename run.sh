#!/usr/bin/env bash
# One entry point for a fresh clone; each command first sets up .venv.
#   ./run.sh demo [--keep|--app] the demo: real photos, all eight operators
#   ./run.sh test [pytest args] the test suite (real MongoDB, real images, the App in Chromium)
#   ./run.sh bench [--quick]    the benchmarks (ratios against the reference methods)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${DEDUP_VENV:-.venv}"

say() { echo "run.sh: $*" >&2; }

setup_python() {
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the virtual environment $VENV"
        python3 -m venv "$VENV"
    fi
    local stamp="$VENV/.dedup-installed" start=$SECONDS
    if ! cmp -s pyproject.toml "$stamp" 2>/dev/null; then
        [ -f "$stamp" ] && say "pyproject.toml changed since $VENV was set up: installing again"
        say "upgrading pip in $VENV"
        "$VENV/bin/pip" install -q --upgrade pip
        say "installing this project and its test tools into $VENV (FiftyOne, its brain, a" \
            "MongoDB, faiss, LanceDB, Playwright...: ~2 GB, a few minutes the first time)"
        "$VENV/bin/pip" install -q ".[test]"
        cp pyproject.toml "$stamp"
        say "$VENV is ready ($((SECONDS - start)) s)"
    fi
}

# pid and command line of the processes that hold apt's or dpkg's locks
apt_lock_holders() {
    local lock pid
    for lock in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock \
                /var/cache/apt/archives/lock; do
        [ -e "$lock" ] || continue
        for pid in $(fuser "$lock" 2>/dev/null); do
            echo "$lock is held by pid $pid: $(ps -o args= -p "$pid" 2>/dev/null || echo '?')"
        done
    done
}

# the App tests drive Debian's Chromium (Playwright downloads no browser)
ensure_chromium() {
    [ -x /usr/bin/chromium ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        say "the App tests need /usr/bin/chromium and there is no apt-get here:" \
            "install Chromium so that /usr/bin/chromium exists, then rerun"
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        say "the App tests need /usr/bin/chromium: run 'sudo apt-get install chromium'," \
            "then rerun"
        exit 1
    fi
    local wait="${DEDUP_APT_LOCK_TIMEOUT:-120}" holders log start=$SECONDS
    holders="$(apt_lock_holders || true)"
    if [ -n "$holders" ]; then
        say "another apt or dpkg is running; waiting up to $wait s for it to finish:"
        echo "$holders" | sed 's/^/    /' >&2
        # apt-get update does not wait for the lists lock by itself
        while [ -n "$(apt_lock_holders || true)" ] && [ $((SECONDS - start)) -lt "$wait" ]; do
            sleep 2
        done
    fi
    say "the App tests need /usr/bin/chromium: installing Debian's 'chromium' package" \
        "(apt-get update + install, about a minute)"
    log="$(mktemp)"
    if { apt-get -o DPkg::Lock::Timeout="$wait" update \
            && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$wait" \
                install -y chromium; } >"$log" 2>&1 && [ -x /usr/bin/chromium ]; then
        rm -f "$log"
        say "chromium installed"
        return 0
    fi
    say "installing the apt package 'chromium' failed; apt-get said (full output: $log):"
    grep -E '^(E|W):' "$log" | tail -n 10 | sed 's/^/    /' >&2 \
        || tail -n 10 "$log" | sed 's/^/    /' >&2
    holders="$(apt_lock_holders || true)"
    if [ -n "$holders" ]; then
        say "apt/dpkg is locked by another process; let it finish (or end it), then rerun:"
        echo "$holders" | sed 's/^/    /' >&2
    fi
    exit 1
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
        ensure_chromium
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    bench)
        setup_python
        exec "$VENV/bin/python" benchmarks/run.py "$@"
        ;;
    *)
        echo "usage: ./run.sh demo [--keep | --app] | test [pytest args] | bench [--quick]" >&2
        exit 2
        ;;
esac
