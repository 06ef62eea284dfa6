#!/usr/bin/env bash
# Fault test: kill -9 under load loses no acknowledged event and applies none twice.
#
# While `stripe-bench load` offers signed invoice.paid events at a fixed rate (300/s; the
# customers are created first through the API, so the events apply rather than skip), the
# daemon is SIGKILLed 10 times at 0.5-1.5 s intervals and restarted at once on the same port.
# Once the load has ended and the queue has drained, SQL proves:
#   - every event id the daemon answered 2xx for is stored in `events` (an ack means durable);
#   - every stored event of the run is 'applied' with attempts = 1 (a second application, or
#     a failed one, would have counted another attempt), and no job of the run is left;
#   - the effect happened exactly once per event: the run's invoices (in_bench_<run>_*)
#     number exactly the run's stored events, and each event has exactly one timeline entry
#     (invoices are upserts and cannot double; timeline entries would);
#   - something was acknowledged at all (acked > 0), so the test can fail.
set -euo pipefail
# shellcheck source=scripts/fault-common.sh
source "$(dirname "$0")/fault-common.sh"

RATE=${FAULT_KILL_RATE:-300}
DURATION=${FAULT_KILL_DURATION:-20}
KILLS=${FAULT_KILLS:-10}
CUSTOMERS=200
run="kill$$"
evt_like=$(like_run evt_bench "$run")
inv_like=$(like_run in_bench "$run")
acked="$FAULT_TMP/acked"
json="$FAULT_TMP/load.json"
bench_out="$FAULT_TMP/bench.out"

now_ms() { date +%s%3N; }

daemon_start
step "load: $RATE/s for ${DURATION}s over 64 connections, run $run, $CUSTOMERS customers"
"$BENCH" load --url "$WEBHOOK_URL" --secret "$STRIPE_WEBHOOK_SECRET" \
    --rate "$RATE" --duration "$DURATION" --warmup 0 --connections 64 \
    --customers "$CUSTOMERS" --api "$API_URL" --token "$RECONCILER_API_TOKEN" \
    --run-id "$run" --acked-out "$acked" --json "$json" --label fault-kill --keep-going \
    >"$bench_out" 2>&1 &
bench=$!
track_pid "$bench"

# Kill only once events flow: creating the customers comes first and is not fault-tolerant.
deadline=$((SECONDS + 60))
until [[ "$(psql_q "SELECT count(*) FROM events WHERE id LIKE '$evt_like'")" -gt 0 ]]; do
    kill -0 "$bench" 2>/dev/null || { cat "$bench_out" >&2; fail "stripe-bench exited before any event was stored"; }
    ((SECONDS < deadline)) || fail "no event of the run stored within 60 s"
    sleep 0.2
done

kills=0
under_load=0
restart_max_ms=0
restart_total_ms=0
while ((kills < KILLS)); do
    pause_ms=$((500 + RANDOM % 1001))
    sleep_ms "$pause_ms"
    kill -0 "$bench" 2>/dev/null && under_load=$((under_load + 1))
    t0=$(now_ms)
    daemon_kill9
    kills=$((kills + 1))
    daemon_start
    took=$(($(now_ms) - t0))
    restart_total_ms=$((restart_total_ms + took))
    ((took > restart_max_ms)) && restart_max_ms=$took
    step "kill $kills: down ${took} ms until ready again"
done
step "$kills kills, $under_load of them while the load ran; waiting for the load to end"
bench_rc=0
wait "$bench" || bench_rc=$?
cat "$bench_out" >&2
((bench_rc == 0)) || fail "stripe-bench load exited with $bench_rc"
((under_load > 0)) || fail "no kill happened while the load ran (the load ended too early)"

step "waiting for the queue to drain"
wait_drained "$evt_like" 120 || fail "the run's jobs did not drain within 120 s"

load_acked "$acked"
bench_accepted=$(json_get "$json" 'j["accepted"]')
bench_errors=$(json_get "$json" 'j["errors"]')
bench_statuses=$(json_get "$json" 'json.dumps(j["statuses"], separators=(",", ":"))')
jobs_left=$(psql_q "SELECT count(*) FROM jobs WHERE job_key LIKE '$evt_like'")

problems=()
check_effects "id LIKE '$evt_like'" "stripe_id LIKE '$inv_like'" "state = 'applied' AND attempts = 1"
[[ "$n_acked" == "$bench_accepted" ]] || problems+=("acked file has $n_acked ids, stripe-bench counted $bench_accepted accepted")
((jobs_left == 0)) || problems+=("$jobs_left jobs of the run are left in the queue")

summary="fault-kill: acked=$n_acked stored=$stored applied=$applied invoices=$invoices timeline=$timeline kills=$kills (under load $under_load, restart avg $((restart_total_ms / kills)) ms max $restart_max_ms ms) load errors=$bench_errors statuses=$bench_statuses"
echo "$summary"
fail_on_problems
echo "fault-kill: OK"
