#!/usr/bin/env bash
# The alert rules: `promtool check rules` (syntax, templates) and `promtool test rules` (the
# unit tests in deploy/prometheus/alerts_test.yml: each rule fires on its case and stays
# quiet on a healthy one), and every runbook_url names a section of docs/RUNBOOK.md.
# Installs Debian's `prometheus` package (which ships promtool) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
    echo "==> installing prometheus (promtool, and the server tests/api/prometheus.rs runs)" >&2
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >&2
    # Debian's package enables its own server; we never use it.
    $sudo service prometheus stop >/dev/null 2>&1 || true
fi

echo "==> promtool check rules deploy/prometheus/alerts.yml" >&2
promtool check rules deploy/prometheus/alerts.yml
echo "==> promtool test rules deploy/prometheus/alerts_test.yml" >&2
promtool test rules deploy/prometheus/alerts_test.yml

# GitHub-style anchors of the runbook's headings: lower case, punctuation dropped, spaces to -.
anchors=$(grep -E '^#{1,6} ' docs/RUNBOOK.md | sed -E 's/^#+ //' | tr 'A-Z' 'a-z' |
    sed -E 's/[^a-z0-9 _-]//g; s/ /-/g')
missing=0
for url in $(sed -n 's/^ *runbook_url: *//p' deploy/prometheus/alerts.yml); do
    [[ $url == docs/RUNBOOK.md#* ]] || { echo "runbook_url $url is not docs/RUNBOOK.md#..." >&2; missing=1; continue; }
    grep -qx "${url#docs/RUNBOOK.md#}" <<<"$anchors" || { echo "docs/RUNBOOK.md has no section for $url" >&2; missing=1; }
done
[[ $missing -eq 0 ]] || exit 1
echo "==> every runbook_url has its section" >&2
