#!/usr/bin/env bash
# Builds the Debian package: target/debian/stripe-reconciler_<version>_amd64.deb, with
# cargo-deb (installed when missing) from Cargo.toml's [package.metadata.deb].
#
# Usage: scripts/package.sh            env: PACKAGE_PROFILE=release (default) | dev
#
# PACKAGE_PROFILE=dev packages the debug binary the tests build (CI's package test, no second
# cold build); ship the release one. Prints the .deb's path on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${PACKAGE_PROFILE:-release}
case "$profile" in
    release) dir=release ;;
    dev) dir=debug ;;
    *) echo "package.sh: PACKAGE_PROFILE must be release or dev" >&2; exit 2 ;;
esac

if ! cargo deb --version >/dev/null 2>&1; then
    echo "==> cargo install cargo-deb --locked (once, ~2 min)" >&2
    cargo install cargo-deb --locked --quiet >&2
fi

echo "==> cargo build --profile $profile --bin stripe-reconciler" >&2
cargo build --locked --profile "$profile" --bin stripe-reconciler >&2
bin="target/$dir/stripe-reconciler"

# The packaged unit is systemd/'s, with the binary where the package puts it.
assets=target/debian-assets
rm -rf "$assets" && mkdir -p "$assets"
sed 's#/usr/local/bin/stripe-reconciler#/usr/bin/stripe-reconciler#g' \
    systemd/stripe-reconciler.service >"$assets/stripe-reconciler.service"
grep -q '/usr/local/bin' "$assets/stripe-reconciler.service" \
    && { echo "package.sh: the unit still names /usr/local/bin" >&2; exit 1; }

# usage.txt: the --help of every command and subcommand, as a man page would list them.
help_of() {
    local -a cmd=("$@")
    local title="stripe-reconciler${cmd[*]:+ ${cmd[*]}}"
    printf '%s\n%s\n\n' "$title" "$(printf '%*s' ${#title} '' | tr ' ' '=')"
    "$bin" "${cmd[@]}" --help
    printf '\n\n'
    # The "Commands:" list of this help, but `help` itself.
    "$bin" "${cmd[@]}" --help | awk '/^Commands:/ { on = 1; next } /^$/ { on = 0 } on && $1 != "help" { print $1 }' |
        while read -r sub; do help_of "${cmd[@]}" "$sub"; done
}
help_of >"$assets/usage.txt"

# CARGO_TARGET_DIR-independent: cargo-deb maps target/release/ in the assets to the profile's
# folder.
echo "==> cargo deb --no-build --profile $profile" >&2
# A test package: compressed quickly, its debug info left in the binary.
fast=(); [[ $profile == dev ]] && fast=(--fast --no-separate-debug-symbols --no-compress-debug-symbols)
out=$(cargo deb --no-build --profile "$profile" --locked "${fast[@]}" -o target/debian/ 2>&1) || { echo "$out" >&2; exit 1; }
version=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "stripe-reconciler"))')
deb="target/debian/stripe-reconciler_${version}_amd64.deb"
[[ -f "$deb" ]] || { echo "$out" >&2; echo "package.sh: $deb was not made" >&2; exit 1; }
echo "==> $deb ($(du -h "$deb" | cut -f1))" >&2
echo "$deb"
