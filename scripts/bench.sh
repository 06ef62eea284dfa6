#!/usr/bin/env bash
# Side-by-side webhook benchmark, one command: stripe-reconciler against the reference
# handler written the way Stripe's docs show it (bench/reference/), one after the other,
# against the same scratch PostgreSQL (synchronous_commit on, the default).
#
# Per system: (a) flat out, (b) fixed 1,000 events/s (ours also creates the customers first
# and reports end-to-end apply lag), (c) fixed rate at the reference's flat-out accepted/s
# rounded down to a multiple of 100 (p99 ack "at the same offered load"). Max RSS is sampled
# every 200 ms during every run (the reference's is the sum over its processes).
#
# Writes bench/results/latest.md (the table, also printed) and bench/results/latest.jsonl
# (one JSON object per run, from stripe-bench). Logs go to .run/bench/.
#
# Knobs: BENCH_SECS (20), BENCH_CONNECTIONS (64), BENCH_WARMUP (3), BENCH_RATE (1000),
#        BENCH_SKIP_BUILD=1 (use the existing target/release binaries), BENCH_PG_PORT (free port),
#        REFERENCE_WORKERS, REFERENCE_POOL_SIZE (passed through to the reference),
#        BENCH_APPLY=0 (skip the apply benchmark that runs last: scripts/bench-apply.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pg.sh

secs=${BENCH_SECS:-20}
conns=${BENCH_CONNECTIONS:-64}
warmup=${BENCH_WARMUP:-3}
fixed_rate=${BENCH_RATE:-1000}
secret=whsec_bench
token=bench-token
daemon=target/release/stripe-reconciler
loadgen=target/release/stripe-bench
results_dir=bench/results
json="$results_dir/latest.jsonl"
table="$results_dir/latest.md"
logs=.run/bench
rss_file="$logs/rss.tsv"
stamp=$(date -u +%Y%m%dT%H%M%SZ)

say() { echo "==> $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

server_pid=""
sampler_pid=""
stop_sampler() {
    if [[ -n "$sampler_pid" ]]; then
        kill "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
        sampler_pid=""
    fi
}
stop_server() {
    [[ -n "$server_pid" ]] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 250; i++)); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
cleanup() {
    stop_sampler
    stop_server
    pg_stop
    rm -f "$rss_file.tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -------------------------------------------------------------------------------
if [[ "${BENCH_SKIP_BUILD:-}" != 1 ]]; then
    say "cargo build --release --bins"
    cargo build --release --bins --quiet
fi
[[ -x "$daemon" ]] || die "$daemon is missing (build it, or unset BENCH_SKIP_BUILD)"
[[ -x "$loadgen" ]] || die "$loadgen is missing (build it, or unset BENCH_SKIP_BUILD)"
command -v node >/dev/null || die "node is required for the reference handler"
command -v python3 >/dev/null || die "python3 is required"
command -v curl >/dev/null || die "curl is required"

say "npm ci in bench/reference ($(node --version))"
(cd bench/reference && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# --- Postgres ----------------------------------------------------------------------------
mkdir -p "$results_dir" "$logs"
: >"$json"
: >"$rss_file"
pg_port=${BENCH_PG_PORT:-$(pg_free_port)}
pg_start bench "$pg_port"
psql_admin() { PGOPTIONS='-c client_min_messages=warning' "$PG_STARTED_BIN/psql" "$PG_ADMIN_URL" -qtAX "$@"; }
for db in bench_ours bench_ref; do
    psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    pg_create_db "$db"
done
ours_db="postgres://postgres@127.0.0.1:$pg_port/bench_ours"
ref_db="postgres://postgres@127.0.0.1:$pg_port/bench_ref"
# Any statement slower than 1 s gets its plan in the server log ($PG_DATA/server.log).
psql_admin -c "LOAD 'auto_explain'" -c "ALTER SYSTEM SET session_preload_libraries = 'auto_explain'" \
    -c "ALTER SYSTEM SET auto_explain.log_min_duration = '1s'" -c "SELECT pg_reload_conf()" >/dev/null
pg_version=$(psql_admin -c "SHOW server_version")
sync_commit=$(psql_admin -c "SHOW synchronous_commit")
say "PostgreSQL $pg_version, synchronous_commit = $sync_commit"

# --- helpers -----------------------------------------------------------------------------
# Adds the VmRSS (KiB) of a process and its descendants to RSS_TOTAL (builtins only: no
# forks per sample, so the sampler costs next to nothing).
rss_add() {
    local pid=$1 key kib rest children file child
    [[ -r /proc/$pid/status ]] || return 0
    while read -r key kib rest; do
        [[ $key == VmRSS: ]] && RSS_TOTAL=$((RSS_TOTAL + kib)) && break
    done </proc/"$pid"/status
    for file in /proc/"$pid"/task/*/children; do
        read -r -a children <"$file" 2>/dev/null || true
        for child in "${children[@]}"; do rss_add "$child"; done
    done
}
# Writes the max RSS (KiB) seen so far to $1 every 200 ms until killed.
sample_rss() {
    local out=$1 pid=$2 max=0
    while :; do
        RSS_TOTAL=0
        rss_add "$pid" || true
        if ((RSS_TOTAL > max)); then
            max=$RSS_TOTAL
            echo "$max" >"$out"
        fi
        sleep 0.2
    done
}

wait_http() { # url seconds; any HTTP 200 answer
    local url=$1 deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        kill -0 "$server_pid" 2>/dev/null || return 1
        [[ $(curl -s -o /dev/null -w '%{http_code}' -m 2 "$url" || true) == 200 ]] && return 0
        sleep 0.2
    done
    return 1
}

# Waits until the daemon's queue holds no event, so the next run does not compete with the
# workers still applying (or skipping) the previous run's events.
wait_drained() {
    local deadline=$((SECONDS + 600)) n
    while ((SECONDS < deadline)); do
        n=$("$PG_STARTED_BIN/psql" "$ours_db" -qtAX -c "SELECT count(*) FROM jobs WHERE state = 'pending' AND kind = 'stripe_event'")
        [[ $n == 0 ]] && return 0
        sleep 1
    done
    say "warning: the daemon still has $n pending jobs after 600 s; going on"
}

# run LABEL RATE [extra stripe-bench args...]
run() {
    local label=$1 rate=$2
    shift 2
    local desc="flat out"
    [[ $rate != 0 ]] && desc="$rate/s"
    say "$label: $desc, $conns connections, ${secs}s (+${warmup}s warm-up)"
    psql_admin -c CHECKPOINT >/dev/null
    rm -f "$rss_file.tmp"
    sample_rss "$rss_file.tmp" "$server_pid" &
    sampler_pid=$!
    local rc=0
    "$loadgen" load --url "$base/webhooks/stripe" --secret "$secret" \
        --connections "$conns" --rate "$rate" --duration "$secs" --warmup "$warmup" \
        --run-id "$label-$stamp" --label "$label" --json "$json" --keep-going "$@" || rc=$?
    stop_sampler
    printf '%s\t%s\n' "$label" "$(cat "$rss_file.tmp" 2>/dev/null || echo 0)" >>"$rss_file"
    ((rc == 0)) || die "stripe-bench failed for $label (exit $rc)"
    kill -0 "$server_pid" 2>/dev/null || die "the server under test died during $label; see $logs/"
}

accepted_per_s() { # label
    python3 - "$json" "$1" <<'PY'
import json, sys
path, label = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path) if l.strip()]
print(int([r for r in rows if r.get("label") == label][-1]["accepted_per_s"]))
PY
}

# --- the reference first: its flat-out rate sets the "same offered load" --------------------
ref_port=$(pg_free_port)
base="http://127.0.0.1:$ref_port"
say "starting the reference (node bench/reference/server.js) on $base"
PORT=$ref_port DATABASE_URL=$ref_db STRIPE_WEBHOOK_SECRET=$secret \
    node bench/reference/server.js >"$logs/reference.log" 2>&1 &
server_pid=$!
wait_http "$base/healthz" 60 || { tail -n 20 "$logs/reference.log" >&2; die "the reference did not start"; }

run reference-flat 0
ref_workers=$(cat /proc/"$server_pid"/task/*/children | wc -w)
same_rate=$(($(accepted_per_s reference-flat) / 100 * 100))
((same_rate >= 100)) || same_rate=100
say "reference flat out: $(accepted_per_s reference-flat)/s accepted; same-load rate = $same_rate/s"
run "reference-$fixed_rate" "$fixed_rate"
run "reference-same-$same_rate" "$same_rate"
stop_server

# --- ours ----------------------------------------------------------------------------------
ours_port=$(pg_free_port)
base="http://127.0.0.1:$ours_port"
say "starting stripe-reconciler serve on $base (default config and log level, no STRIPE_API_KEY)"
env -u STRIPE_API_KEY -u STRIPE_API_BASE -u RECONCILER_CONFIG \
    DATABASE_URL="$ours_db" STRIPE_WEBHOOK_SECRET=$secret RECONCILER_API_TOKEN=$token \
    RECONCILER_LISTEN="127.0.0.1:$ours_port" \
    "$daemon" serve >"$logs/ours.log" 2>&1 &
server_pid=$!
wait_http "$base/readyz" 120 || { tail -n 20 "$logs/ours.log" >&2; die "the daemon did not become ready"; }

# Every run creates the customers first (--api), so the workers apply each event to the store
# (an invoice row per event) rather than skip it, and reports apply lag (--database-url); the
# flat-out run's lag is mostly the time its backlog took to drain after the load stopped.
applied=(--api "$base" --token "$token" --database-url "$ours_db")
run ours-flat 0 "${applied[@]}"
wait_drained
run "ours-$fixed_rate" "$fixed_rate" "${applied[@]}"
wait_drained
run "ours-same-$same_rate" "$same_rate" "${applied[@]}"
stop_server

# --- the table -----------------------------------------------------------------------------
{
    echo "# Benchmark results"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- . ':!bench/results' 2>/dev/null || echo ' (dirty)')."
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo '?')),"
    echo "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM; PostgreSQL $pg_version, synchronous_commit = $sync_commit;"
    echo "Node $(node --version), reference with $ref_workers worker processes, pg pool ${REFERENCE_POOL_SIZE:-16} each;"
    echo "stripe-reconciler with its default config and log level, no STRIPE_API_KEY; every event applied (an invoice row each)."
    echo "Each run: $conns connections, ${secs} s measured after ${warmup} s warm-up; load generator, server and Postgres share the machine."
    echo
} >"$table"
python3 - "$json" "$rss_file" "$same_rate" "$fixed_rate" >>"$table" <<'PY'
import json, sys
path, rss_path, same_rate, fixed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = {}
for line in open(path):
    if line.strip():
        r = json.loads(line)
        rows[r["label"]] = r
rss = {}
for line in open(rss_path):
    label, kib = line.rstrip("\n").split("\t")
    rss[label] = int(kib or 0) / 1024

def f(v, digits=1):
    return "–" if v is None else f"{v:,.{digits}f}"

order = []
for system in ("ours", "reference"):
    for run, label in (("flat out", f"{system}-flat"), (f"fixed {fixed}/s", f"{system}-{fixed}"),
                       (f"same load {same_rate}/s", f"{system}-same-{same_rate}")):
        if label in rows:
            order.append((system, run, label))

print("| system | run | offered/s | accepted/s | ack p50 ms | ack p90 ms | ack p99 ms | ack max ms "
      "| apply lag p50 ms | apply lag p99 ms | max RSS MiB | failed |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for system, run, label in order:
    r = rows[label]
    ack = r.get("ack_ms") or {}
    lag = r.get("apply_lag_ms") or {}
    offered = "flat out" if not r.get("offered_rate") else f"{r['offered_rate']:,}"
    failed = (r.get("rejected") or 0) + (r.get("errors") or 0)
    print(f"| {system} | {run} | {offered} | {f(r.get('accepted_per_s'), 0)} "
          f"| {f(ack.get('p50'), 2)} | {f(ack.get('p90'), 2)} | {f(ack.get('p99'), 2)} | {f(ack.get('max'), 2)} "
          f"| {f(lag.get('p50'), 2)} | {f(lag.get('p99'), 2)} | {f(rss.get(label))} | {failed:,} |")

def get(label, *keys):
    v = rows.get(label)
    for k in keys:
        v = None if v is None else v.get(k)
    return v

print()
print("`failed` = non-2xx answers + transport errors. Ack latency of fixed-rate runs is measured "
      "from each request's scheduled send time.")
print()
ours_flat, ref_flat = get("ours-flat", "accepted_per_s"), get("reference-flat", "accepted_per_s")
ratio = ours_flat / ref_flat if ours_flat and ref_flat else None
checks = []
if ratio is not None:
    print(f"**Flat-out accepted/s, ours / reference: {ratio:.2f}×** ({ours_flat:,.0f} / {ref_flat:,.0f})")
    checks.append((f"verified, stored webhooks/s ≥ 3× reference", f"{ratio:.2f}×", ratio >= 3))
o99 = get(f"ours-same-{same_rate}", "ack_ms", "p99")
r99 = get(f"reference-same-{same_rate}", "ack_ms", "p99")
if o99 is not None and r99 is not None:
    checks.append((f"p99 ack ≤ reference at {same_rate}/s", f"{o99:.2f} ms vs {r99:.2f} ms", o99 <= r99))
lag99 = get(f"ours-{fixed}", "apply_lag_ms", "p99")
if lag99 is not None:
    checks.append((f"p99 apply lag ≤ 50 ms at {fixed}/s", f"{lag99:.2f} ms", lag99 <= 50))
if f"ours-{fixed}" in rss:
    checks.append((f"RSS ≤ 64 MiB at {fixed}/s", f"{rss[f'ours-{fixed}']:.1f} MiB", rss[f"ours-{fixed}"] <= 64))
if checks:
    print()
    print("| target | measured | met |")
    print("| --- | --- | --- |")
    for name, got, ok in checks:
        print(f"| {name} | {got} | {'yes' if ok else '**no**'} |")
PY
rm -f "$rss_file"

# --- what users get: the applied state, on a stock server ----------------------------------
# The webhook runs above store invoice.paid only; the lifecycle mix (every kind of event we
# apply, customers linked) drained on a PostgreSQL with every setting at its default.
if [[ "${BENCH_APPLY:-1}" == 1 ]]; then
    pg_stop
    say "scripts/bench-apply.sh (the lifecycle mix, applied/s beside ingest/s)"
    BENCH_SKIP_BUILD=1 scripts/bench-apply.sh >&2
    { echo; echo "## Applying (scripts/bench-apply.sh)"; echo; tail -n +3 bench/results/apply.md; } >>"$table"
fi
echo
cat "$table"
say "wrote $table and $json"
