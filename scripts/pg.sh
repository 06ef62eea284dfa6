# shellcheck shell=bash
# A project-local PostgreSQL server, sourced by run.sh and test.sh.
#
#   pg_start NAME PORT   initdb (once) into .pgdata/NAME and start it on 127.0.0.1:PORT;
#                        exports PG_ADMIN_URL (the `postgres` database, superuser `postgres`)
#   pg_stop              stop the server started by pg_start (safe to call twice)
#   pg_crash             stop it at once, as a crash would (`-m immediate`: recovery on restart)
#   pg_restart           start it again after pg_crash: same data, port and options
#
# Uses the newest server binaries under /usr/lib/postgresql; installs Debian's `postgresql`
# only when there are none. As root, the server runs as the `postgres` user (it refuses root).

PG_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pg_bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_ensure_installed() {
    [[ -n "$(pg_bin_dir)" && -x "$(pg_bin_dir)/initdb" ]] && return 0
    echo "==> no PostgreSQL server binaries found; installing Debian's postgresql" >&2
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
    # Debian's package starts a cluster of its own; we never use it.
    $sudo service postgresql stop >/dev/null 2>&1 || true
    [[ -n "$(pg_bin_dir)" ]] || { echo "PostgreSQL install failed" >&2; return 1; }
}

# Runs a server binary as the user that owns the data folder.
pg_as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_start() {
    local name=$1 port=$2
    pg_ensure_installed || return 1
    local bin
    bin=$(pg_bin_dir)
    PG_DATA="$PG_REPO_ROOT/.pgdata/$name"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
        # The postgres user must reach the data folder; else keep it in a scratch folder.
        mkdir -p "$PG_REPO_ROOT/.pgdata"
        if ! runuser -u postgres -- test -x "$PG_REPO_ROOT/.pgdata"; then
            PG_DATA=$(mktemp -d /tmp/stripe-reconciler-pg.XXXXXX)/$name
            echo "==> $PG_REPO_ROOT is not reachable by the postgres user; data in $PG_DATA" >&2
            chown postgres "$(dirname "$PG_DATA")"
        else
            chown postgres "$PG_REPO_ROOT/.pgdata"
        fi
    fi
    mkdir -p "$(dirname "$PG_DATA")"
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        pg_as_owner "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
    fi
    PG_LOG="$PG_DATA/server.log"
    if pg_as_owner "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        echo "==> PostgreSQL in $PG_DATA is already running (left by an earlier run); restarting it" >&2
        pg_as_owner "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    fi
    pg_ctl_start "$bin" "$port" || return 1
    PG_STARTED_BIN=$bin
    export PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export PG_PORT=$port
    echo "==> PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $PG_DATA" >&2
}

# Starts the server on PG_DATA (logging to PG_LOG) with BIN's pg_ctl, on 127.0.0.1:PORT.
# PG_STOCK=1 keeps every server setting at its default (the apply benchmark's "as installed").
# Otherwise pg_stat_statements is loaded too (in Debian's package): a test counts how often a
# statement is planned.
# PG_SOCKET_DIR: also listen on a Unix socket there (none by default).
pg_ctl_start() {
    local bin=$1 port=$2
    local opts="-c max_connections=400 -c shared_buffers=256MB -c shared_preload_libraries=pg_stat_statements"
    [[ "${PG_STOCK:-}" == 1 ]] && opts=""
    pg_as_owner "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k '${PG_SOCKET_DIR:-}' $opts" start >/dev/null \
        || { echo "PostgreSQL did not start; see $PG_LOG" >&2; tail -n 20 "$PG_LOG" >&2; return 1; }
}

pg_crash() {
    [[ -n "${PG_STARTED_BIN:-}" ]] || { echo "pg_crash: no server started by pg_start" >&2; return 1; }
    pg_as_owner "$PG_STARTED_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null
}

pg_restart() {
    [[ -n "${PG_STARTED_BIN:-}" ]] || { echo "pg_restart: no server started by pg_start" >&2; return 1; }
    pg_ctl_start "$PG_STARTED_BIN" "$PG_PORT"
}

pg_stop() {
    [[ -n "${PG_STARTED_BIN:-}" ]] || return 0
    pg_as_owner "$PG_STARTED_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
    PG_STARTED_BIN=""
}

# Creates database NAME if it does not exist yet.
pg_create_db() {
    local name=$1
    "$PG_STARTED_BIN/psql" "$PG_ADMIN_URL" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1 \
        || "$PG_STARTED_BIN/psql" "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$name\"" >/dev/null
}
