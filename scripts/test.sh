#!/usr/bin/env bash
# The whole test suite against a scratch PostgreSQL that this script starts and stops.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

name="test-$$"
trap 'pg_stop; rm -rf ".pgdata/$name" "${PG_DATA:-/nonexistent}"' EXIT
pg_start "$name" "$(pg_free_port)"
# Tests create one database per test from this admin URL.
export DATABASE_URL="$PG_ADMIN_URL"
export PG_BIN_DIR="$PG_STARTED_BIN"

echo "==> cargo test --workspace" >&2
cargo test --workspace --all-targets "$@" -- --test-threads "${TEST_THREADS:-4}"
