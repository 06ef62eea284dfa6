#!/usr/bin/env bash
# Customer search at a million customers: GET /v1/customers?search=... against the release
# daemon and a scratch PostgreSQL holding 1,000,000 customers (each on the free plan, one in
# ten on pro), the way support searches: a customer id, an email fragment, a last name, a
# name and a plan filter together. Prints p50/p90/p99/max per kind and overall.
#
# Knobs: SEARCH_CUSTOMERS (1000000), SEARCH_REQUESTS (200 per kind), BENCH_SKIP_BUILD=1; the
# daemon is taken from CARGO_TARGET_DIR (else target/). Each request's seconds and URL are
# in .run/bench-search/KIND.txt (`sort -g` puts the slowest last).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

customers=${SEARCH_CUSTOMERS:-1000000}
requests=${SEARCH_REQUESTS:-200}
token=bench-token
daemon=${CARGO_TARGET_DIR:-target}/release/stripe-reconciler
logs=.run/bench-search
mkdir -p "$logs"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    pg_stop
}
trap cleanup EXIT

if [[ "${BENCH_SKIP_BUILD:-}" != 1 ]]; then
    echo "==> cargo build --release --bin stripe-reconciler" >&2
    cargo build --release --quiet --bin stripe-reconciler
fi
pg_start bench-search "$(pg_free_port)"
pg_create_db reconciler_search
db="postgres://postgres@127.0.0.1:$PG_PORT/reconciler_search"
psql() { "$PG_STARTED_BIN/psql" "$db" -qtAX "$@"; }
DATABASE_URL=$db "$daemon" migrate >/dev/null

if [[ $(psql -c "SELECT count(*) FROM customers") -lt $customers ]]; then
    echo "==> inserting $customers customers" >&2
    psql <<SQL
TRUNCATE customers CASCADE;
INSERT INTO customers (id, name, email, created_at)
SELECT 'user_' || g,
       (ARRAY['Ada','Ben','Cleo','Dev','Eli','Fay','Gus','Hana','Ivo','Jun'])[1 + g % 10] || ' ' ||
       (ARRAY['Smith','Kowalski','Nguyen','Garcia','Okafor','Larsen','Tanaka','Rossi','Dubois','Silva',
              'Moreau','Novak','Haddad','Ivanova','Murphy','Schmidt','Costa','Kim','Patel','Ortiz'])[1 + (g / 10) % 20]
              || '-' || (g % 997),
       'customer' || g || '@' || (ARRAY['acme.test','example.test','mail.test','corp.test'])[1 + g % 4],
       now() - make_interval(secs => $customers - g)
FROM generate_series(1, $customers) g;
INSERT INTO customer_plans (customer_pk, plan_id, plan_group, status, started_at)
SELECT pk, CASE WHEN pk % 10 = 0 THEN 'pro' ELSE 'free' END, 'main', 'active', created_at
FROM customers;
ANALYZE customers;
ANALYZE customer_plans;
SQL
fi

port=$(pg_free_port)
DATABASE_URL=$db STRIPE_WEBHOOK_SECRET=whsec_bench RECONCILER_API_TOKEN=$token \
    RECONCILER_LISTEN=127.0.0.1:$port RECONCILER_CATALOG=config/catalog.example.toml \
    RUST_LOG=warn "$daemon" serve --no-migrate >"$logs/daemon.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

# One kind of search: its queries are drawn from the data, so each finds what support would.
measure() {
    local kind=$1 make=$2 i query
    : >"$logs/$kind.txt"
    for ((i = 0; i < requests; i++)); do
        query=$($make "$i")
        curl -s -o /dev/null -w '%{time_total} %{url_effective}\n' -H "Authorization: Bearer $token" \
            "http://127.0.0.1:$port/v1/customers?$query" >>"$logs/$kind.txt"
    done
}
by_id() { echo "search=user_$(((RANDOM * 32768 + RANDOM) % customers + 1))"; }
by_email() { echo "search=customer$(((RANDOM * 32768 + RANDOM) % customers + 1))%40"; }
names=(smith kowalski nguyen garcia okafor larsen tanaka rossi dubois silva)
by_name() { echo "search=${names[$((RANDOM % 10))]}-$((RANDOM % 997))"; }
by_plan() { echo "search=${names[$((RANDOM % 10))]}&plan_id=pro"; }

summary() {
    local kind=$1
    sort -g "$logs/$kind.txt" | awk -v kind="$kind" '
        function at(q,   i) { i = int(NR * q); if (i < 1) i = 1; return v[i] }
        { v[NR] = $1 * 1000 }
        END { printf "| %s | %d | %.2f | %.2f | %.2f | %.2f |\n", kind, NR, at(0.50), at(0.90), at(0.99), v[NR] }'
}

echo "==> $requests requests per kind, 1 at a time" >&2
for kind in by_id by_email by_name by_plan; do
    measure "$kind" "$kind"
done
cat "$logs"/by_*.txt >"$logs/all.txt"
echo
echo "Customer search, $customers customers ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)):"
echo
echo "| search | requests | p50 ms | p90 ms | p99 ms | max ms |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for kind in by_id by_email by_name by_plan all; do
    summary "$kind"
done
