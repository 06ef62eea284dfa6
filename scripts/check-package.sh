#!/usr/bin/env bash
# The Debian package, installed, upgraded and purged in a scratch root (dpkg --root with
# --force-script-chrootless: the maintainer scripts run on this machine with DPKG_ROOT set, so
# nothing outside the scratch folder changes). Fails on the first thing that is not as the
# README promises:
#   files, owners and modes; the user from sysusers.d; env written once (0640) and never
#   overwritten; config.toml a conffile; the unit enabled but not started; the installed
#   unit passes `systemd-analyze verify` and scores <= MAX_EXPOSURE (2.0) in `security`;
#   `check-config` as the service user with the installed files; the unit's ExecCondition
#   holds a placeholder env back; purge removes env and keeps the user.
#
# Usage: scripts/check-package.sh [DEB]   (default: build one with PACKAGE_PROFILE=dev)
# Needs root (dpkg --root, files owned by the service group), dpkg, systemd-analyze (250+).
set -euo pipefail
cd "$(dirname "$0")/.."

max=${MAX_EXPOSURE:-2.0}
[[ $(id -u) -eq 0 ]] || { echo "check-package: run as root (dpkg --root, chgrp)" >&2; exit 2; }
deb=${1:-$(PACKAGE_PROFILE=${PACKAGE_PROFILE:-dev} scripts/package.sh)}
[[ -f "$deb" ]] || { echo "check-package: no package at $deb" >&2; exit 2; }

root=$(mktemp -d /tmp/stripe-reconciler-pkg.XXXXXX)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"   # the service user must reach the installed files
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"

fail() { echo "check-package: $*" >&2; exit 1; }
# dpkg into the scratch root. Its dependencies (libc6, systemd) are the host's, not the root's.
rdpkg() { dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@" >&2; }
# "MODE UID GID" of a path in the root.
perm() { stat -c '%a %u %g' "$root$1"; }

echo "==> dpkg --root install $deb" >&2
rdpkg -i "$deb"

# ---- the service user -------------------------------------------------------------------
pw=$(awk -F: '$1 == "stripe-reconciler"' "$root/etc/passwd")
[[ -n "$pw" ]] || fail "no stripe-reconciler user in /etc/passwd (sysusers.d)"
uid=$(cut -d: -f3 <<<"$pw")
gid=$(awk -F: '$1 == "stripe-reconciler" { print $3 }' "$root/etc/group")
[[ -n "$gid" ]] || fail "no stripe-reconciler group"
[[ $uid -lt 1000 && $uid -gt 0 ]] || fail "uid $uid is not a system uid"
[[ $(cut -d: -f7 <<<"$pw") == /usr/sbin/nologin ]] || fail "the user has a login shell: $pw"

# ---- files and modes ----------------------------------------------------------------------
expect() {   # PATH MODE UID GID
    [[ -e "$root$1" ]] || fail "$1 is not installed"
    local got
    got=$(perm "$1")
    [[ "$got" == "$2 $3 $4" ]] || fail "$1: mode/uid/gid $got, want $2 $3 $4"
}
expect /usr/bin/stripe-reconciler 755 0 0
expect /lib/systemd/system/stripe-reconciler.service 644 0 0
expect /usr/lib/sysusers.d/stripe-reconciler.conf 644 0 0
expect /etc/stripe-reconciler 750 0 "$gid"
expect /etc/stripe-reconciler/config.toml 640 0 "$gid"
expect /etc/stripe-reconciler/env 640 0 "$gid"
expect /usr/share/doc/stripe-reconciler/examples/catalog.example.toml 644 0 0
expect /usr/share/doc/stripe-reconciler/usage.txt 644 0 0
expect /usr/share/doc/stripe-reconciler/RUNBOOK.md 644 0 0
expect /usr/share/doc/stripe-reconciler/CHANGELOG.md 644 0 0
expect /usr/share/doc/stripe-reconciler/copyright 644 0 0
expect /usr/share/stripe-reconciler/prometheus/alerts.yml 644 0 0
expect /usr/share/stripe-reconciler/grafana/stripe-reconciler.json 644 0 0
grep -qx '/etc/stripe-reconciler/config.toml' "$root/var/lib/dpkg/info/stripe-reconciler.conffiles" \
    || fail "config.toml is not a conffile"
if grep -q '^/etc/stripe-reconciler/env$' "$root/var/lib/dpkg/info/stripe-reconciler.list"; then
    fail "env is shipped in the package (it must be postinst's, or an upgrade could replace it)"
fi
cmp -s "$root/etc/stripe-reconciler/env" systemd/env.example || fail "env is not the template"
for sub in "" " serve" " check-config" " events retry" " customers show"; do
    grep -q "^Usage: stripe-reconciler$sub " "$root/usr/share/doc/stripe-reconciler/usage.txt" \
        || fail "usage.txt lacks the help of 'stripe-reconciler$sub'"
done
"$root/usr/bin/stripe-reconciler" --version | grep -qx "stripe-reconciler $(dpkg-deb -f "$deb" Version)" \
    || fail "the binary's --version is not the package's"
# The README's install steps name the file this version's package is, and no other.
named=$(grep -o "stripe-reconciler_[0-9][0-9.]*_amd64\.deb" README.md | sort -u)
[[ "$named" == "stripe-reconciler_$(dpkg-deb -f "$deb" Version)_amd64.deb" ]] \
    || fail "README.md names ${named:-no package}, not $(basename "$deb")"

# ---- the unit ------------------------------------------------------------------------------
unit="$root/lib/systemd/system/stripe-reconciler.service"
grep -q '^ExecStart=/usr/bin/stripe-reconciler --config /etc/stripe-reconciler/config.toml serve$' "$unit" \
    || fail "the unit does not run /usr/bin/stripe-reconciler serve"
[[ -L "$root/etc/systemd/system/multi-user.target.wants/stripe-reconciler.service" ]] \
    || fail "the unit is not enabled after install"
echo "==> systemd-analyze verify (installed unit, binary in the scratch root)" >&2
tmp="$root/tmp-verify"
mkdir -p "$tmp"
sed "s#/usr/bin/stripe-reconciler#$root/usr/bin/stripe-reconciler#g" "$unit" >"$tmp/stripe-reconciler.service"
verify_out=$(systemd-analyze verify --man=no --generators=no "$tmp/stripe-reconciler.service" 2>&1) \
    || fail "systemd-analyze verify: $verify_out"
grep -q stripe-reconciler <<<"$verify_out" && fail "systemd-analyze verify warns: $verify_out"
echo "==> systemd-analyze security --offline=yes --root (installed unit)" >&2
security_out=$(systemd-analyze security --offline=yes --root="$root" --no-pager stripe-reconciler.service 2>&1) \
    || fail "systemd-analyze security: $security_out"
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' <<<"$security_out")
[[ -n "$exposure" ]] || fail "no exposure in: $security_out"
awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e <= m) }' || fail "exposure $exposure is above $max"
echo "    exposure $exposure <= $max" >&2

# ---- check-config as the service would run it ----------------------------------------------
env_file="$root/etc/stripe-reconciler/env"
as_service() {   # the unit's User=/Group=, without supplementary groups
    setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"
}
run_check_config() {   # with the variables of the env file, as EnvironmentFile= reads it
    as_service env -i $(grep -E '^[A-Z_]+=' "$env_file") \
        "$root/usr/bin/stripe-reconciler" --config "$root/etc/stripe-reconciler/config.toml" check-config
}
# ExecCondition holds a placeholder env back (and passes once it is filled in).
condition=$(sed -n "s/^ExecCondition=\/bin\/sh -c '\(.*\)'$/\1/p" "$unit")
[[ -n "$condition" ]] || fail "the unit has no ExecCondition"
condition=${condition//\/etc\/stripe-reconciler\/env/$env_file}
if as_service sh -c "$condition"; then fail "ExecCondition lets a placeholder env start the service"; fi

echo "==> as the admin: fill in env, change config.toml" >&2
cat >"$env_file" <<'ENV'
DATABASE_URL=postgres://stripe-reconciler@%2Frun%2Fpostgresql/reconciler
STRIPE_WEBHOOK_SECRET=whsec_check_package
RECONCILER_API_TOKEN=check-package-token-0123456789
ENV
sed -i 's/^listen = .*/listen = "127.0.0.1:8181"/' "$root/etc/stripe-reconciler/config.toml"
as_service sh -c "$condition" || fail "ExecCondition holds back a configured env"
out=$(run_check_config 2>&1) || fail "check-config with the installed files failed: $out"
grep -q 'listen: 127.0.0.1:8181' <<<"$out" || fail "check-config did not read config.toml: $out"
grep -q 'whsec_check_package\|check-package-token' <<<"$out" && fail "check-config printed a secret"
if out=$(setpriv --reuid="$uid" --regid=65534 --clear-groups \
    "$root/usr/bin/stripe-reconciler" --config "$root/etc/stripe-reconciler/config.toml" check-config 2>&1); then
    fail "config.toml is readable outside the service group: $out"
fi

# ---- upgrade (the same version again: postinst configure with an old version) --------------
echo "==> dpkg --root upgrade (reinstall)" >&2
before=$(sha256sum <"$env_file")
rdpkg --force-confold -i "$deb"
[[ $(sha256sum <"$env_file") == "$before" ]] || fail "the upgrade overwrote env"
expect /etc/stripe-reconciler/env 640 0 "$gid"
grep -q '127.0.0.1:8181' "$root/etc/stripe-reconciler/config.toml" || fail "the upgrade replaced config.toml"
[[ $(awk -F: '$1 == "stripe-reconciler"' "$root/etc/passwd") == "$pw" ]] || fail "the upgrade changed the user"

# ---- remove, purge ------------------------------------------------------------------------
echo "==> dpkg --root remove, purge" >&2
rdpkg -r stripe-reconciler
[[ ! -e "$root/usr/bin/stripe-reconciler" ]] || fail "remove left the binary"
[[ -f "$env_file" && -f "$root/etc/stripe-reconciler/config.toml" ]] || fail "remove (not purge) took the configuration"
rdpkg -P stripe-reconciler
[[ ! -e "$root/etc/stripe-reconciler" ]] || fail "purge left $(ls -A "$root/etc/stripe-reconciler")"
[[ ! -e "$root/etc/systemd/system/multi-user.target.wants/stripe-reconciler.service" ]] || fail "purge left the unit enabled"
grep -q '^stripe-reconciler:' "$root/etc/passwd" || fail "purge removed the user"
# The database is the operator's: no maintainer script may talk to Postgres.
if dpkg-deb --ctrl-tarfile "$deb" | tar -xO | grep -nE 'psql|dropdb|pg_|DATABASE_URL'; then
    fail "a maintainer script touches the database"
fi
echo "==> package ok: $deb" >&2
