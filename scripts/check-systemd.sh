#!/usr/bin/env bash
# Prints `systemd-analyze security` for systemd/stripe-reconciler.service (for humans and CI
# logs) and fails when the overall exposure is above the limit (default 2.0), or when
# `systemd-analyze verify` reports a problem with the unit. Works without a running systemd.
#
# Usage: scripts/check-systemd.sh [UNIT_FILE]      env: MAX_EXPOSURE=2.0
#
# Installs Debian's `systemd` package (which ships systemd-analyze) when the tool is missing
# and this runs as root; otherwise asks for it and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

unit=${1:-systemd/stripe-reconciler.service}
max=${MAX_EXPOSURE:-2.0}
name=$(basename "$unit")
[[ -f "$unit" ]] || { echo "check-systemd: no unit file at $unit" >&2; exit 2; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "==> systemd-analyze not found; installing Debian's systemd package" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >&2
    fi
    command -v systemd-analyze >/dev/null 2>&1 || {
        echo "check-systemd: systemd-analyze not installed (apt-get install systemd)" >&2
        exit 2
    }
fi
echo "==> $(systemd-analyze --version | head -n 1)" >&2

# The unit's binary is not installed here: check a copy whose ExecStart/ExecStartPre point at
# /bin/true, so neither command warns that /usr/local/bin/stripe-reconciler is missing. The
# sandbox settings, which are all that `security` scores, are unchanged.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's#^\(ExecStart\(Pre\)\?=\)/usr/local/bin/stripe-reconciler #\1/bin/true #' "$unit" >"$tmp/$name"

echo "==> systemd-analyze verify $unit" >&2
verify_out=$(systemd-analyze verify --man=no --generators=no "$tmp/$name" 2>&1) && verify_rc=0 || verify_rc=$?
if [[ $verify_rc -ne 0 ]] || grep -q -F "$name" <<<"$verify_out"; then
    echo "$verify_out" >&2
    echo "check-systemd: systemd-analyze verify reported problems with $unit" >&2
    exit 1
fi
[[ -z "$verify_out" ]] || echo "$verify_out" >&2   # about other units; not ours to fix
echo "    ok" >&2

echo "==> systemd-analyze security --offline=yes $unit" >&2
security_out=$(systemd-analyze security --offline=yes --no-pager "$tmp/$name" 2>&1) || {
    echo "$security_out" >&2
    echo "check-systemd: systemd-analyze security failed" >&2
    exit 1
}
echo "$security_out"

exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' <<<"$security_out")
[[ -n "$exposure" ]] || { echo "check-systemd: no overall exposure in the output" >&2; exit 1; }
if awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e > m) }'; then
    echo "check-systemd: exposure $exposure is above $max" >&2
    exit 1
fi
echo "==> exposure $exposure <= $max" >&2
