#!/usr/bin/env bash
# Runs the daemon for real on this machine: a project-local PostgreSQL (data in .pgdata/dev,
# kept between runs), a release build, migrations, and `serve` with config/dev.toml.
# Ctrl-C stops the daemon and the PostgreSQL server this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

pg_port=${RECONCILER_DEV_PG_PORT:-54329}
trap pg_stop EXIT
pg_start dev "$pg_port"
pg_create_db reconciler

export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/reconciler"
export STRIPE_WEBHOOK_SECRET=${STRIPE_WEBHOOK_SECRET:-whsec_dev_local_only}
export RECONCILER_API_TOKEN=${RECONCILER_API_TOKEN:-dev-token}
export RECONCILER_CONFIG=${RECONCILER_CONFIG:-config/dev.toml}

echo "==> cargo build --release" >&2
cargo build --release --quiet
bin=target/release/stripe-reconciler
listen=$(grep -E '^listen' "$RECONCILER_CONFIG" | cut -d'"' -f2)
listen=${RECONCILER_LISTEN:-$listen}

cat >&2 <<MSG

==> stripe-reconciler is starting on http://$listen (Ctrl-C stops it and PostgreSQL).
    In another terminal, replay the fixtures and read an event back:

      STRIPE_WEBHOOK_SECRET=$STRIPE_WEBHOOK_SECRET $bin replay fixtures/*.json --to http://$listen/webhooks/stripe
      curl -s -H 'Authorization: Bearer $RECONCILER_API_TOKEN' http://$listen/v1/events/evt_RcnFixture0001

MSG
"$bin" serve
