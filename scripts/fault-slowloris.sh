#!/usr/bin/env bash
# Fault test: slow-loris connections and oversized bodies do not starve real deliveries.
#
# `stripe-bench abuse` holds 500 connections that trickle a never-ending header and runs 20
# senders of 2 MiB bodies (declared Content-Length, and chunked) for 10 s; meanwhile a normal
# `stripe-bench load` offers 200 signed events/s for 8 s. The test proves:
#   - the normal load is served in full: errors = 0, rejected = 0, accepted >= 95 % of
#     rate x duration;
#   - every oversized body was refused with 413 (or the connection closed) and never read as
#     a webhook: no other status came back;
#   - the daemon is still ready afterwards (GET /readyz 200).
set -euo pipefail
# shellcheck source=scripts/fault-common.sh
source "$(dirname "$0")/fault-common.sh"

SLOW=${FAULT_SLOW:-500}
OVERSIZED=${FAULT_OVERSIZED:-20}
ABUSE_SECS=10
RATE=200
DURATION=8
run="slow$$"

daemon_start
step "abuse: $SLOW slow-loris connections, $OVERSIZED oversized senders for ${ABUSE_SECS}s"
"$BENCH" abuse --addr "$RECONCILER_LISTEN" --slow "$SLOW" --oversized "$OVERSIZED" \
    --duration "$ABUSE_SECS" --json "$FAULT_TMP/abuse.json" >"$FAULT_TMP/abuse.out" 2>&1 &
abuse=$!
track_pid "$abuse"
sleep 1

step "load: $RATE/s for ${DURATION}s while the abuse runs, run $run"
"$BENCH" load --url "$WEBHOOK_URL" --secret "$STRIPE_WEBHOOK_SECRET" --rate "$RATE" \
    --duration "$DURATION" --warmup 0 --connections 64 --run-id "$run" \
    --json "$FAULT_TMP/load.json" --label fault-slowloris --keep-going >&2 \
    || fail "stripe-bench load failed"
kill -0 "$abuse" 2>/dev/null || step "note: the abuse ended before the load did"

abuse_rc=0
wait "$abuse" || abuse_rc=$?
cat "$FAULT_TMP/abuse.out" >&2
((abuse_rc == 0)) || fail "stripe-bench abuse exited with $abuse_rc"

accepted=$(json_get "$FAULT_TMP/load.json" 'j["accepted"]')
rejected=$(json_get "$FAULT_TMP/load.json" 'j["rejected"]')
errors=$(json_get "$FAULT_TMP/load.json" 'j["errors"]')
p99=$(json_get "$FAULT_TMP/load.json" '(j.get("ack_ms") or {}).get("p99")')
expected=$((RATE * DURATION))
slow_opened=$(json_get "$FAULT_TMP/abuse.json" 'j["slow_opened"]')
slow_open=$(json_get "$FAULT_TMP/abuse.json" 'j["slow_still_open"]')
over_sent=$(json_get "$FAULT_TMP/abuse.json" 'j["oversized_sent"]')
over_413=$(json_get "$FAULT_TMP/abuse.json" 'j["oversized_status"].get("413", 0)')
over_other=$(json_get "$FAULT_TMP/abuse.json" 'sum(n for s, n in j["oversized_status"].items() if s != "413")')
over_statuses=$(json_get "$FAULT_TMP/abuse.json" 'json.dumps(j["oversized_status"], separators=(",", ":"))')
over_closed=$(json_get "$FAULT_TMP/abuse.json" 'j["oversized_closed"]')
ready_after=$(http_status readyz)

problems=()
((errors == 0)) || problems+=("$errors transport errors in the normal load")
((rejected == 0)) || problems+=("$rejected non-2xx answers in the normal load")
((accepted * 100 >= expected * 95)) || problems+=("accepted $accepted of the $expected offered (< 95 %)")
((slow_opened > 0)) || problems+=("no slow-loris connection was opened")
((over_sent > 0)) || problems+=("no oversized body was sent")
((over_413 + over_closed == over_sent)) || problems+=("oversized: sent $over_sent, 413 $over_413, closed $over_closed: some got no answer")
((over_413 > 0)) || problems+=("no oversized body got 413")
((over_other == 0)) || problems+=("oversized bodies got other statuses than 413: $over_statuses")
[[ "$ready_after" == 200 ]] || problems+=("/readyz answered $ready_after afterwards")
daemon_alive || problems+=("the daemon died")

echo "fault-slowloris: load accepted=$accepted/$expected rejected=$rejected errors=$errors ack_p99=${p99}ms; abuse slow_opened=$slow_opened slow_still_open=$slow_open oversized_sent=$over_sent oversized_status=$over_statuses oversized_closed=$over_closed; readyz_after=$ready_after"
fail_on_problems
echo "fault-slowloris: OK"
