#!/usr/bin/env bash
# The whole test suite against a scratch PostgreSQL that this script starts and stops.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

# The console's browser test drives Debian's headless Chromium through chromedriver; it
# never skips, so install them when missing (as root, or through sudo).
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    echo "==> installing chromium and chromium-driver (the console's browser test)" >&2
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >&2
fi

# tests/systemd.rs fails (never skips) without systemd-analyze, which Debian's `systemd`
# package ships; it works without systemd running as PID 1.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "==> installing systemd (systemd-analyze, for tests/systemd.rs)" >&2
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends systemd >&2
fi

# tests/api/prometheus.rs runs a real Prometheus (Debian's `prometheus` package, which also
# ships promtool); it never skips. Installing it does not start a server here.
if ! command -v prometheus >/dev/null 2>&1; then
    echo "==> installing prometheus (tests/api/prometheus.rs)" >&2
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >&2
    $sudo service prometheus stop >/dev/null 2>&1 || true
fi

name="test-$$"
trap 'pg_stop; rm -rf ".pgdata/$name" "${PG_DATA:-/nonexistent}"' EXIT
pg_start "$name" "$(pg_free_port)"
# Tests create one database per test from this admin URL.
export DATABASE_URL="$PG_ADMIN_URL"
export PG_BIN_DIR="$PG_STARTED_BIN"

echo "==> cargo test --workspace" >&2
status=0
cargo test --workspace --all-targets "$@" -- --test-threads "${TEST_THREADS:-4}" || status=$?
if [[ $status -ne 0 ]]; then
    # A run that fails on a fresh machine must say whether the machine was the cause:
    # free disk and memory, and what the test server logged about itself.
    echo "==> the tests failed (exit $status); the machine and the test server:" >&2
    df -h "$PWD" "${PG_DATA:-/tmp}" >&2 || true
    free -m >&2 || true
    du -sh target "${PG_DATA:-/nonexistent}" 2>/dev/null >&2 || true
    grep -E "PANIC|FATAL|No space|out of memory|terminated by signal|too many" "${PG_LOG:-/dev/null}" \
        | tail -n 30 >&2 || true
fi
exit $status
