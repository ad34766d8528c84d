#!/usr/bin/env bash
# pg-local.sh — the project's own PostgreSQL cluster, inside the project folder.
#
#   pg-local.sh start    create (first time) and start the cluster; idempotent
#   pg-local.sh stop     stop it
#   pg-local.sh status   say whether it runs
#   pg-local.sh env      print the settings to `eval` (PGHOST, PGPORT, PGUSER)
#
# Data in $HCP_STATE/pgdata (default .hcp/ in the project), Unix socket only (no TCP
# port is opened), in $HCP_STATE/run. As root the server runs as user postgres.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
state=${HCP_STATE:-$root/.hcp}
data=$state/pgdata
run=$state/run
port=${HCP_PGPORT:-5439}
bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ]; then
    echo "pg-local: PostgreSQL server binaries not found; run deploy/scripts/install-deps.sh" >&2
    exit 1
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cmd=${1:-start}
case "$cmd" in
start)
    mkdir -p "$state" "$run" "$state/log"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$run" "$state/log"
        chmod 755 "$state"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$data"
        [ "$(id -u)" = 0 ] && chown postgres: "$data"
        echo "pg-local: creating a cluster in $data"
        as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 >"$state/initdb.log" 2>&1 || {
            cat "$state/initdb.log" >&2
            exit 1
        }
        cat >>"$data/postgresql.conf" <<CONF
# hcp local cluster
listen_addresses = ''
unix_socket_directories = '$run'
port = $port
max_connections = 300
shared_buffers = 512MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 15min
log_min_messages = warning
log_line_prefix = '%m [%p] %a '
CONF
    fi
    if as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        exit 0
    fi
    as_owner "$bindir/pg_ctl" -D "$data" -l "$state/log/postgresql.log" -w -t 60 start >/dev/null || {
        echo "pg-local: PostgreSQL did not start; see $state/log/postgresql.log" >&2
        tail -n 20 "$state/log/postgresql.log" >&2 || true
        exit 1
    }
    ;;
stop)
    if [ -f "$data/PG_VERSION" ]; then
        as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
status)
    as_owner "$bindir/pg_ctl" -D "$data" status
    ;;
env)
    echo "export PGHOST='$run' PGPORT='$port' PGUSER=postgres"
    ;;
*)
    echo "usage: pg-local.sh start|stop|status|env" >&2
    exit 2
    ;;
esac
