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

# Debian packages the tests use: Chromium for the App tests (Playwright downloads no
# browser); packages that ship photographs for the held-out near-duplicate quality test
# (benchmarks/eval_photos.py; that test is skipped without them)
PHOTO_PACKAGES="opencv-doc lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds"

missing_packages() {
    local p
    [ -x /usr/bin/chromium ] || echo chromium
    for p in $PHOTO_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done
}

ensure_test_packages() {
    local missing
    missing="$(missing_packages | tr '\n' ' ')"
    [ -z "${missing// /}" ] && return 0
    if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
        cannot_install "$missing" "$( command -v apt-get >/dev/null 2>&1 \
            && echo "run 'sudo apt-get install $missing'" || echo "there is no apt-get here")"
        return 0
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
    say "installing the Debian packages the tests use: $missing(apt-get update + install," \
        "about two minutes)"
    log="$(mktemp)"
    # shellcheck disable=SC2086  # one word per package
    if { apt-get -o DPkg::Lock::Timeout="$wait" update \
            && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$wait" \
                install -y $missing; } >"$log" 2>&1 && [ -x /usr/bin/chromium ]; then
        rm -f "$log"
        say "installed: $missing"
        return 0
    fi
    say "installing the apt packages failed; apt-get said (full output: $log):"
    grep -E '^(E|W):' "$log" | tail -n 10 | sed 's/^/    /' >&2 \
        || tail -n 10 "$log" | sed 's/^/    /' >&2
    holders="$(apt_lock_holders || true)"
    if [ -n "$holders" ]; then
        say "apt/dpkg is locked by another process; let it finish (or end it), then rerun:"
        echo "$holders" | sed 's/^/    /' >&2
    fi
    cannot_install "$missing" "apt-get failed"
}

# without Chromium the App tests cannot run: stop; without the photos one test is skipped
cannot_install() {
    if [ ! -x /usr/bin/chromium ]; then
        say "the App tests need /usr/bin/chromium: $2, then rerun"
        exit 1
    fi
    say "the held-out quality test needs the photo packages $1: $2 (skipped until then)"
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
        ensure_test_packages
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
