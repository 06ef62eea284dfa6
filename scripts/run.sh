#!/usr/bin/env bash
# Runs the daemon for real on this machine: a project-local PostgreSQL (data in .pgdata/dev,
# kept between runs), a release build, migrations, and `serve` with config/dev.toml and the
# example catalog. Without STRIPE_API_KEY it also starts the project's fake Stripe API (the
# `fake-stripe` binary of crates/fake-stripe, not part of the product), so a plan can be
# attached and a checkout completed on this machine alone.
# Ctrl-C stops the daemon, the fake and the PostgreSQL server this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

pg_port=${RECONCILER_DEV_PG_PORT:-54329}
fake_pid=""
cleanup() {
    [[ -n "$fake_pid" ]] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    pg_stop
}
trap cleanup EXIT
pg_start dev "$pg_port"
pg_create_db reconciler

export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/reconciler"
export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_dev_local_only}
export RECONCILER_API_TOKEN=${RECONCILER_API_TOKEN:-dev-token}
export RECONCILER_CONFIG=${RECONCILER_CONFIG:-config/dev.toml}

echo "==> cargo build --release --workspace" >&2
cargo build --release --workspace --quiet
bin=target/release/stripe-reconciler
listen=$(grep -E '^listen' "$RECONCILER_CONFIG" | cut -d'"' -f2)
listen=${RECONCILER_LISTEN:-$listen}
api="http://$listen"
auth="Authorization: Bearer $RECONCILER_API_TOKEN"

if [[ -z "${STRIPE_API_KEY:-}" ]]; then
    fake_listen=${RECONCILER_DEV_FAKE_STRIPE:-127.0.0.1:12111}
    target/release/fake-stripe --listen "$fake_listen" --webhook-url "$api/webhooks/stripe" &
    fake_pid=$!
    export STRIPE_API_KEY=sk_test_fake_local
    export STRIPE_API_BASE="http://$fake_listen"
    echo "==> no STRIPE_API_KEY: using the fake Stripe API on $STRIPE_API_BASE" >&2
fi

cat >&2 <<MSG

==> stripe-reconciler is starting on $api (Ctrl-C stops everything this script started).
    In another terminal:

    # replay the fixtures and read an event back
    STRIPE_WEBHOOK_SECRET=$STRIPE_WEBHOOK_SECRET $bin replay fixtures/*.json --to $api/webhooks/stripe
    curl -s -H '$auth' $api/v1/events/evt_RcnFixture0001

    # create a customer, attach the paid plan, complete the checkout, see the plan active
    curl -s -H '$auth' -d '{"id":"user_1","email":"me@example.com"}' $api/v1/customers
    curl -s -H '$auth' -d '{"customer_id":"user_1","plan_id":"pro","success_url":"http://localhost/ok","cancel_url":"http://localhost/cancel"}' $api/v1/attach
    # open checkout_url in a browser and press Pay (with the fake), or: curl -X POST <checkout_url>/complete
    curl -s -H '$auth' $api/v1/customers/user_1

    # cancel it at the period's end, then look at the customer from the command line
    curl -s -H '$auth' -d '{"customer_id":"user_1","plan_id":"pro"}' $api/v1/cancel
    DATABASE_URL=$DATABASE_URL RECONCILER_CONFIG=$RECONCILER_CONFIG $bin customers show user_1

    DATABASE_URL=$DATABASE_URL $bin status

    The operator console: $api/console (sign in with the API token, RECONCILER_API_TOKEN).

MSG
"$bin" serve
