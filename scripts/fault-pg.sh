#!/usr/bin/env bash
# Fault test: a PostgreSQL crash under load costs availability, never correctness, and the
# daemon recovers by itself.
#
# While `stripe-bench load` offers signed invoice.paid events at ~200/s (customers created
# first, so they apply), PostgreSQL is stopped with `pg_ctl stop -m immediate` (a crash: no
# checkpoint, crash recovery on restart) for ~3 s and then started again on the same data,
# port and options. The daemon is not touched. The test proves:
#   - during the outage the daemon answered 503 (some "503" in the load's statuses, /readyz 503
#     while down) and dropped no connection (no transport errors);
#   - never a 2xx for an event that is not stored: every acknowledged id is in `events`;
#   - it recovers by itself: /readyz is 200 again, a second short load gets only 2xx
#     (accepted > 0, rejected = 0, errors = 0), and the daemon is the same process (PID);
#   - every stored event of both runs ends 'applied', with its invoice.
set -euo pipefail
# shellcheck source=scripts/fault-common.sh
source "$(dirname "$0")/fault-common.sh"

RATE=${FAULT_PG_RATE:-200}
DURATION=${FAULT_PG_DURATION:-10}
OUTAGE_MS=${FAULT_PG_OUTAGE_MS:-3000}
CUSTOMERS=200
run="pg$$"
run2="pgafter$$"
bench_common=(--url "$WEBHOOK_URL" --secret "$STRIPE_WEBHOOK_SECRET" --warmup 0 --connections 64
    --customers "$CUSTOMERS" --api "$API_URL" --token "$RECONCILER_API_TOKEN" --keep-going)

daemon_start
pid0=$DAEMON_PID
step "load: $RATE/s for ${DURATION}s, run $run"
"$BENCH" load "${bench_common[@]}" --rate "$RATE" --duration "$DURATION" --run-id "$run" \
    --acked-out "$FAULT_TMP/acked1" --json "$FAULT_TMP/load1.json" --label fault-pg-outage \
    >"$FAULT_TMP/bench1.out" 2>&1 &
bench=$!
track_pid "$bench"

evt_like=$(like_run evt_bench "$run")
deadline=$((SECONDS + 60))
until [[ "$(psql_q "SELECT count(*) FROM events WHERE id LIKE '$evt_like'")" -gt 0 ]]; do
    kill -0 "$bench" 2>/dev/null || { cat "$FAULT_TMP/bench1.out" >&2; fail "stripe-bench exited before any event was stored"; }
    ((SECONDS < deadline)) || fail "no event of the run stored within 60 s"
    sleep 0.2
done
sleep 2

step "PostgreSQL: stop -m immediate"
t0=$(date +%s%3N)
pg_crash
sleep_ms $((OUTAGE_MS / 2))
ready_while_down=$(http_status readyz)
remaining_ms=$((OUTAGE_MS - ($(date +%s%3N) - t0)))
((remaining_ms > 0)) && sleep_ms "$remaining_ms"
kill -0 "$bench" 2>/dev/null || fail "the load ended during the outage (make it longer)"
pg_restart
outage_ms=$(($(date +%s%3N) - t0))
step "PostgreSQL back after ${outage_ms} ms (/readyz answered $ready_while_down while down)"

bench_rc=0
wait "$bench" || bench_rc=$?
cat "$FAULT_TMP/bench1.out" >&2
((bench_rc == 0)) || fail "stripe-bench load exited with $bench_rc"

problems=()
recovered_s="-"
t_rec=$SECONDS
if wait_ready 30; then
    recovered_s=$((SECONDS - t_rec))
else
    problems+=("/readyz did not answer 200 within 30 s of the load's end")
fi

step "second load after recovery: 100/s for 3 s, run $run2"
"$BENCH" load "${bench_common[@]}" --rate 100 --duration 3 --run-id "$run2" \
    --acked-out "$FAULT_TMP/acked2" --json "$FAULT_TMP/load2.json" --label fault-pg-after >&2 \
    || fail "second stripe-bench load failed"

s503=$(json_get "$FAULT_TMP/load1.json" 'j["statuses"].get("503", 0)')
errors1=$(json_get "$FAULT_TMP/load1.json" 'j["errors"]')
statuses1=$(json_get "$FAULT_TMP/load1.json" 'json.dumps(j["statuses"], separators=(",", ":"))')
accepted2=$(json_get "$FAULT_TMP/load2.json" 'j["accepted"]')
rejected2=$(json_get "$FAULT_TMP/load2.json" 'j["rejected"]')
errors2=$(json_get "$FAULT_TMP/load2.json" 'j["errors"]')

((s503 > 0)) || problems+=("no 503 during the outage (statuses $statuses1)")
[[ "$ready_while_down" == 503 ]] || problems+=("/readyz answered $ready_while_down while PostgreSQL was down, not 503")
((errors1 == 0)) || problems+=("$errors1 transport errors during the first load: the daemon dropped connections")
((accepted2 > 0)) || problems+=("nothing accepted after recovery")
((rejected2 == 0 && errors2 == 0)) || problems+=("after recovery: $rejected2 rejected, $errors2 transport errors")
if ! daemon_alive; then
    problems+=("the daemon died")
elif [[ "$DAEMON_PID" != "$pid0" ]]; then
    problems+=("the daemon is not the same process")
fi

step "waiting for the queue to drain"
for r in "$run" "$run2"; do
    wait_drained "$(like_run evt_bench "$r")" 120 || problems+=("run $r's jobs did not drain within 120 s")
done

load_acked "$FAULT_TMP/acked1" "$FAULT_TMP/acked2"
both="(id LIKE '$(like_run evt_bench "$run")' OR id LIKE '$(like_run evt_bench "$run2")')"
inv_both="(stripe_id LIKE '$(like_run in_bench "$run")' OR stripe_id LIKE '$(like_run in_bench "$run2")')"
# An outage costs no attempt: an apply that meets it fails inside the claim transaction,
# which cannot commit (nor can its failure record), so the claim rolls back and the event is
# claimed again later. Every event is therefore applied with attempts = 1; `retried` (events
# whose attempts say a failure was recorded) must be 0, and each is applied exactly once
# (one timeline entry, check_effects).
retried=$(psql_q "SELECT count(*) FROM events WHERE $both AND attempts > 1")
((retried == 0)) || problems+=("$retried events were retried (attempts > 1), e.g. $(psql_q "SELECT string_agg(id || ' attempts=' || attempts, ' ') FROM (SELECT id, attempts FROM events WHERE $both AND attempts > 1 ORDER BY id LIMIT 5) r")")
check_effects "$both" "$inv_both" "state = 'applied'"

echo "fault-pg: outage=${outage_ms}ms 503s=$s503 readyz_down=$ready_while_down statuses=$statuses1 errors=$errors1 recovered_in=${recovered_s}s after: accepted=$accepted2 rejected=$rejected2 errors=$errors2 same_pid=$([[ "$DAEMON_PID" == "$pid0" ]] && echo yes || echo no) acked=$n_acked stored=$stored applied=$applied retried=$retried invoices=$invoices timeline=$timeline"
fail_on_problems
echo "fault-pg: OK"
