#!/usr/bin/env bash
# Writes fixtures/upgrade/<TAG>.sql: a database as release TAG leaves it, for the upgrade test
# (tests/api/upgrade.rs restores it and starts the current binary on it).
#
# Usage: scripts/upgrade-fixture.sh TAG        (e.g. v0.1.0; run once per release, commit the dump)
#
# Checks TAG out into a temporary git worktree, builds its binary (into this checkout's
# target/, so the dependencies are reused; the current binary is rebuilt by the next cargo
# command), runs it against a scratch PostgreSQL (scripts/pg.sh) and makes, through its own
# API and webhooks:
#   applied events      user_123's subscription, invoice and checkout (fixtures/)
#   skipped events      product.created (no handler), an invoice of an unknown Stripe customer
#   a dead letter       a subscription whose item has neither price nor plan
#   received events     user_123's renewal, failed payment and cancellation, stored while the
#                       daemon ran without workers (RECONCILER_WORKERS=0)
#   a failed event      the renewal's invoice.created, set to `failed` as the worker records a
#                       retryable failure (attempts 2, last_error, due a minute after the dump);
#                       the two events after it wait behind it. No handler of a release fails
#                       retryably on demand, so this one state is written with SQL.
#   a queued job        stripe.create_customer for user_456 (created with create_in_stripe)
# then `pg_dump --inserts` (plain SQL the test runs with sqlx; no psql needed).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
tag=${1:?usage: scripts/upgrade-fixture.sh TAG (e.g. v0.1.0)}
commit=$(git rev-parse --verify "$tag^{commit}")
out="fixtures/upgrade/$tag.sql"
source scripts/pg.sh

work=$(mktemp -d /tmp/stripe-reconciler-upgrade.XXXXXX)
daemon_pid=""
cleanup() {
    if [[ -n "$daemon_pid" ]]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
    pg_stop
    git worktree remove --force "$work/src" >/dev/null 2>&1 || true
    rm -rf "$work" ".pgdata/upgrade-$$" "${PG_DATA:-/nonexistent}"
}
trap cleanup EXIT

echo "==> $tag ($commit) into a temporary worktree" >&2
git worktree add --detach "$work/src" "$commit" >/dev/null
echo "==> cargo build $tag (target/ shared with this checkout)" >&2
(cd "$work/src" && CARGO_TARGET_DIR="$repo/target" cargo build --locked --bin stripe-reconciler >&2)
old="$work/stripe-reconciler-$tag"
cp "$repo/target/debug/stripe-reconciler" "$old"
"$old" --version >&2

pg_start "upgrade-$$" "$(pg_free_port)"
pg_create_db upgrade_fixture
psql="$PG_STARTED_BIN/psql"
export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/upgrade_fixture"
export STRIPE_WEBHOOK_SECRET=whsec_upgrade_fixture
export RECONCILER_API_TOKEN=upgrade-fixture-token
export RECONCILER_CATALOG="$work/src/config/catalog.example.toml"
port=$(pg_free_port)
export RECONCILER_LISTEN="127.0.0.1:$port"
base="http://127.0.0.1:$port"

start_old() {   # WORKERS [VAR=value...]
    local workers=$1
    shift
    env RECONCILER_WORKERS="$workers" "$@" "$old" serve 2>>"$work/daemon.log" &
    daemon_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    cat "$work/daemon.log" >&2
    echo "upgrade-fixture: the $tag daemon did not get ready" >&2
    exit 1
}
stop_old() {
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || true
    daemon_pid=""
}
api() {   # METHOD PATH JSON
    curl -fsS -X "$1" -H "Authorization: Bearer $RECONCILER_API_TOKEN" \
        -H 'content-type: application/json' -d "$3" "$base$2" >/dev/null
}
replay() { "$old" replay --to "$base/webhooks/stripe" "$@" >&2; }
sql() { "$psql" "$DATABASE_URL" -qtAX -v ON_ERROR_STOP=1 -c "$1"; }

# Two events made from the fixtures: an unknown customer's invoice, an unreadable subscription.
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
inv = json.load(open("fixtures/invoice.paid.json"))
inv["id"] = "evt_UpgradeUnknownCustomer"
inv["data"]["object"]["id"] = "in_UpgradeUnknown"
inv["data"]["object"]["customer"] = "cus_UpgradeUnknown"
inv["data"]["object"]["parent"] = None
json.dump(inv, open(f"{work}/unknown_customer.json", "w"))
sub = json.load(open("fixtures/customer.subscription.updated.json"))
sub["id"] = "evt_UpgradeDeadLetter"
for item in sub["data"]["object"]["items"]["data"]:
    item.pop("price", None)
    item.pop("plan", None)
json.dump(sub, open(f"{work}/dead_letter.json", "w"))
PY

echo "==> $tag with workers: applied, skipped, dead" >&2
start_old 4
api POST /v1/customers '{"id":"user_123","name":"Upgrade Fixture","email":"user_123@example.com"}'
replay fixtures/product.created.json fixtures/checkout.session.expired.json \
    fixtures/customer.subscription.created.json fixtures/invoice.paid.json \
    fixtures/checkout.session.completed.json "$work/unknown_customer.json" "$work/dead_letter.json"
for _ in $(seq 1 150); do
    [[ $(sql "SELECT count(*) FROM jobs WHERE state = 'pending'") == 0 ]] && break
    sleep 0.2
done
[[ $(sql "SELECT count(*) FROM jobs WHERE state = 'pending'") == 0 ]] || { echo "upgrade-fixture: $tag did not drain" >&2; exit 1; }
stop_old

echo "==> $tag without workers: received events, a queued outbound job" >&2
# With a Stripe key (the API is never called: no worker runs), so that the API queues the
# outbound job; the address is a closed port.
start_old 0 STRIPE_API_KEY=sk_test_upgrade_fixture STRIPE_API_BASE=http://127.0.0.1:9/
replay fixtures/invoice.created.json fixtures/invoice.payment_failed.json \
    fixtures/customer.subscription.updated.json
api POST /v1/customers '{"id":"user_456","name":"Queued Stripe Customer","create_in_stripe":true}'
stop_old

echo "==> a retryable failure recorded on the renewal's invoice.created" >&2
sql "UPDATE events SET state = 'failed', attempts = 2,
         last_error = 'connection reset by peer (written by upgrade-fixture.sh)'
     WHERE id = 'evt_RcnFixture0006';
     UPDATE jobs SET attempts = 2, run_at = now() + interval '1 minute',
         last_error = 'connection reset by peer (written by upgrade-fixture.sh)'
     WHERE job_key = 'evt_RcnFixture0006';"

echo "==> what $tag left" >&2
sql "SELECT 'events ' || state, count(*) FROM events GROUP BY state
     UNION ALL SELECT 'jobs ' || kind || ' ' || state, count(*) FROM jobs GROUP BY kind, state
     ORDER BY 1" >&2
for state in applied skipped dead received failed; do
    [[ $(sql "SELECT count(*) FROM events WHERE state = '$state'") -gt 0 ]] \
        || { echo "upgrade-fixture: no $state event" >&2; exit 1; }
done
[[ $(sql "SELECT count(*) FROM jobs WHERE kind = 'stripe.create_customer' AND state = 'pending'") -ge 1 ]] \
    || { echo "upgrade-fixture: no queued stripe.create_customer job" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
{
    echo "-- A database written by stripe-reconciler $tag ($commit): scripts/upgrade-fixture.sh $tag."
    echo "-- Restored by tests/api/upgrade.rs. Do not edit: run the script again."
    # Newer pg_dump versions fence the dump with psql-only \restrict lines; sqlx runs plain SQL.
    "$PG_STARTED_BIN/pg_dump" --inserts --no-owner --no-privileges --no-comments "$DATABASE_URL" |
        grep -v -E '^\\(un)?restrict '
} >"$out"
echo "==> $out ($(wc -c <"$out") bytes)" >&2
