# shellcheck shell=bash
# Shared by the fault tests (scripts/fault-*.sh), which source it: a scratch PostgreSQL and
# the daemon under test, both gone when the test exits, so a fault test proves its point
# against a real process and a real server, never against a mock.
#
# On source it
#   - builds the binaries if they are missing: BIN (default target/$FAULT_PROFILE/stripe-reconciler)
#     and BENCH (target/$FAULT_PROFILE/stripe-bench); FAULT_PROFILE is debug (default) or release;
#   - starts PostgreSQL `fault-$$` on a free port (pg.sh) and creates the database `fault`;
#   - exports DATABASE_URL, STRIPE_WEBHOOK_SECRET, RECONCILER_API_TOKEN, RECONCILER_LISTEN
#     (a free port), and sets FAULT_TMP (a scratch folder), WEBHOOK_URL, API_URL.
#
#   daemon_start             `$BIN serve` in the background (DAEMON_PID), logging to DAEMON_LOG;
#                            waits for GET /readyz 200 (DAEMON_READY_SECS, 30), else prints the log
#                            tail and fails
#   daemon_kill9             SIGKILL the daemon and reap it
#   daemon_alive             true while DAEMON_PID runs
#   wait_ready SECS          until GET /readyz answers 200 (false on timeout or a dead daemon)
#   http_status PATH         status of GET http://$RECONCILER_LISTEN/PATH (000: no answer)
#   psql_q SQL               one statement on DATABASE_URL, unaligned tuples only
#   json_get FILE EXPR       Python EXPR over the last JSON line of FILE, bound as `j` (and `json`)
#   like_run PREFIX RUN      a LIKE pattern (escaped) for ids PREFIX_RUN_*, e.g. evt_bench, in_bench
#   wait_drained PATTERN SECS  until no pending job's key matches PATTERN (false on timeout)
#   load_acked FILE...       (re)fills table fault_acked with the ids in FILE..., one a line
#   track_pid PID            kill PID (if still running) when the test exits
#   fail MSG                 print MSG and exit 1
#   step MSG                 print a timestamped progress line

FAULT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$FAULT_ROOT" || exit 1
# shellcheck source=scripts/pg.sh
source scripts/pg.sh

FAULT_SCRIPT=$(basename "$0" .sh)
FAULT_PROFILE=${FAULT_PROFILE:-debug}
BIN=${BIN:-target/$FAULT_PROFILE/stripe-reconciler}
BENCH=${BENCH:-target/$FAULT_PROFILE/stripe-bench}
FAULT_NAME="fault-$$"
FAULT_TMP=$(mktemp -d "/tmp/stripe-reconciler-$FAULT_NAME.XXXXXX")
DAEMON_LOG="$FAULT_TMP/daemon.log"
DAEMON_PID=""
FAULT_PIDS=()

step() {
    echo "[$FAULT_SCRIPT $(date +%T)] $*" >&2
}

fail() {
    echo "[$FAULT_SCRIPT] FAIL: $*" >&2
    exit 1
}

track_pid() {
    FAULT_PIDS+=("$1")
}

daemon_alive() {
    [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null
}

fault_cleanup() {
    local status=$?
    local pid
    for pid in "${FAULT_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    if daemon_alive; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            daemon_alive || break
            sleep 0.1
        done
        daemon_alive && kill -9 "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -s "$DAEMON_LOG" ]]; then
        echo "[$FAULT_SCRIPT] daemon log (last 30 lines):" >&2
        tail -n 30 "$DAEMON_LOG" >&2
    fi
    pg_stop
    rm -rf ".pgdata/$FAULT_NAME" "${PG_DATA:-/nonexistent}" "$FAULT_TMP"
    exit "$status"
}
trap fault_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ! -x "$BIN" || ! -x "$BENCH" ]]; then
    build=(cargo build --bins)
    [[ "$FAULT_PROFILE" == release ]] && build+=(--release)
    step "$BIN or $BENCH missing: ${build[*]}"
    "${build[@]}"
    [[ -x "$BIN" && -x "$BENCH" ]] || fail "$BIN or $BENCH still missing after ${build[*]}"
fi

pg_start "$FAULT_NAME" "$(pg_free_port)"
pg_create_db fault
export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/fault"
export STRIPE_WEBHOOK_SECRET=whsec_fault
export RECONCILER_API_TOKEN=fault-token
RECONCILER_LISTEN="127.0.0.1:$(pg_free_port)"
export RECONCILER_LISTEN
# shellcheck disable=SC2034 # used by the scripts that source this file
WEBHOOK_URL="http://$RECONCILER_LISTEN/webhooks/stripe"
# shellcheck disable=SC2034
API_URL="http://$RECONCILER_LISTEN"
export RUST_LOG=${RUST_LOG:-info,sqlx=warn,hyper=warn}

http_status() {
    local url="http://$RECONCILER_LISTEN/$1"
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true
    else
        python3 - "$url" <<'PY'
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
    fi
}

wait_ready() {
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        daemon_alive || return 1
        [[ "$(http_status readyz)" == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

daemon_start() {
    local timeout=${DAEMON_READY_SECS:-30}
    echo "=== $FAULT_SCRIPT: serve started at $(date +%T.%N)" >>"$DAEMON_LOG"
    "$BIN" serve >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    if ! wait_ready "$timeout"; then
        echo "[$FAULT_SCRIPT] the daemon (pid $DAEMON_PID) was not ready within ${timeout}s; log tail:" >&2
        tail -n 30 "$DAEMON_LOG" >&2
        : >"$DAEMON_LOG"
        fail "daemon did not become ready"
    fi
}

daemon_kill9() {
    kill -9 "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
}

psql_q() {
    PGOPTIONS="-c client_min_messages=warning" \
        "$PG_STARTED_BIN/psql" "$DATABASE_URL" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"
}

json_get() {
    python3 - "$1" "$2" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
j = json.loads(lines[-1])
print(eval(sys.argv[2], {"j": j, "json": json}))
PY
}

like_run() {
    local prefix=$1 run=$2
    local escaped="${prefix}_${run}_"
    printf '%s%%' "${escaped//_/\\_}"
}

wait_drained() {
    local pattern=$1 deadline=$((SECONDS + $2)) pending
    while ((SECONDS < deadline)); do
        pending=$(psql_q "SELECT count(*) FROM jobs WHERE job_key LIKE '$pattern' AND state = 'pending'") || pending=unknown
        [[ "$pending" == 0 ]] && return 0
        sleep 0.5
    done
    step "still $pending pending jobs matching $pattern after $2 s"
    return 1
}

load_acked() {
    psql_q "DROP TABLE IF EXISTS fault_acked; CREATE TABLE fault_acked (id text NOT NULL)"
    local file
    for file in "$@"; do
        [[ -f "$file" ]] || fail "acked file $file is missing"
        psql_q "\\copy fault_acked (id) FROM '$file'"
    done
}

sleep_ms() {
    sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"
}

# Fails with every entry of the `problems` array, if it has any.
fail_on_problems() {
    ((${#problems[@]} == 0)) && return 0
    printf '  - %s\n' "${problems[@]}" >&2
    fail "${#problems[@]} assertion(s) failed"
}

# check_effects EVENTS_WHERE INVOICES_WHERE APPLIED_WHERE
# With the acked ids loaded (load_acked): every acked id is stored (never a 2xx for an event
# not stored), every stored event of the run matches APPLIED_WHERE, and each has exactly one
# invoice. Invoices are upserts and cannot double, so the effect that WOULD double is checked
# too: each stored event has exactly one timeline entry (`activity` row whose source is the
# event id; an `invoice.paid` writes one). Sets n_acked, stored, applied, invoices, timeline;
# adds failures to `problems`.
check_effects() {
    local events=$1 invoices_where=$2 applied_where=$3 missing doubled without
    n_acked=$(psql_q "SELECT count(DISTINCT id) FROM fault_acked")
    missing=$(psql_q "SELECT count(*) FROM fault_acked a WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = a.id)")
    stored=$(psql_q "SELECT count(*) FROM events WHERE $events")
    applied=$(psql_q "SELECT count(*) FROM events WHERE $events AND $applied_where")
    invoices=$(psql_q "SELECT count(*) FROM invoices WHERE $invoices_where")
    ((n_acked > 0)) || problems+=("nothing was acknowledged")
    ((missing == 0)) || problems+=("$missing acknowledged events are not stored (a 2xx for an event not stored), e.g. $(psql_q "SELECT string_agg(id, ' ') FROM (SELECT id FROM fault_acked a WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = a.id) LIMIT 5) m")")
    ((applied == stored)) || problems+=("$((stored - applied)) of $stored stored events are not $applied_where: $(psql_q "SELECT string_agg(id || ' ' || state || ' attempts=' || attempts || coalesce(' (' || last_error || ')', ''), '; ') FROM (SELECT * FROM events WHERE $events AND NOT ($applied_where) ORDER BY id LIMIT 5) b")")
    ((invoices == stored)) || problems+=("$invoices invoices for $stored stored events")
    timeline=$(psql_q "SELECT count(*) FROM activity WHERE source IN (SELECT id FROM events WHERE $events)")
    doubled=$(psql_q "SELECT count(*) FROM (SELECT source FROM activity WHERE source IN (SELECT id FROM events WHERE $events) GROUP BY source HAVING count(*) > 1) d")
    without=$(psql_q "SELECT count(*) FROM events e WHERE $events AND NOT EXISTS (SELECT 1 FROM activity a WHERE a.source = e.id)")
    ((doubled == 0)) || problems+=("$doubled events have more than one timeline entry (applied twice?), e.g. $(psql_q "SELECT string_agg(source || ' x' || n, ' ') FROM (SELECT source, count(*) n FROM activity WHERE source IN (SELECT id FROM events WHERE $events) GROUP BY source HAVING count(*) > 1 ORDER BY source LIMIT 5) d")")
    ((without == 0)) || problems+=("$without stored events have no timeline entry (never applied?)")
    ((timeline == stored)) || problems+=("$timeline timeline entries for $stored stored events")
}
