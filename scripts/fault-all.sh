#!/usr/bin/env bash
# Runs every fault test in sequence (kill -9 under load, a PostgreSQL crash under load,
# slow-loris and oversized bodies beside real load), prints each one's time, and fails if any
# failed. Each test starts its own scratch PostgreSQL and daemon; see the scripts' headers.
# FAULT_PROFILE=release runs the release binaries (built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

tests=(fault-kill fault-pg fault-slowloris)
results=()
failed=0
total_start=$(date +%s%3N)
for t in "${tests[@]}"; do
    echo "==> scripts/$t.sh"
    start=$(date +%s%3N)
    status=ok
    "scripts/$t.sh" || { status="FAILED ($?)"; failed=$((failed + 1)); }
    ms=$(($(date +%s%3N) - start))
    results+=("$(printf '%-16s %-12s %3d.%01d s' "$t" "$status" $((ms / 1000)) $((ms % 1000 / 100)))")
done
ms=$(($(date +%s%3N) - total_start))
echo "==> fault tests"
printf '  %s\n' "${results[@]}"
printf '  %-16s %-12s %3d.%01d s\n' total "$failed failed" $((ms / 1000)) $((ms % 1000 / 100))
((failed == 0))
