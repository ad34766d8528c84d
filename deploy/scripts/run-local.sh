#!/usr/bin/env bash
# run-local.sh — a whole hcp system on this machine, for newcomers and for trying things out.
#
#   run-local.sh [start]   install packages, build, start PostgreSQL and every service, send
#                          a sample of traffic, and say where to look (the target of `make run`)
#   run-local.sh stop      stop the services and the project's PostgreSQL (`make stop`)
#   run-local.sh status    which services run, with their pids and log files
#   run-local.sh restart [SERVICE ...]
#                          stop the services (or only those named, e.g. ingest) and start them
#                          again (no install, no build, no sample)
#   run-local.sh sample    send the sample traffic again to the running system
#
# Everything lives in the project folder: PostgreSQL's data in .hcp/pgdata (deploy/scripts/
# pg-local.sh; a Unix socket, no TCP port), pids in .hcp/run/<service>.pid, logs in
# .hcp/log/<service>.log. Nothing is installed as a system service.
#
# Safe to run again: PostgreSQL is reused, the database is migrated (a no-op when current),
# the catalog is reloaded (idempotent), running services are stopped cleanly (SIGTERM, they
# finish their in-flight work) and started again from the fresh build.
#
# Environment:
#   HCP_STATE         state folder (default .hcp in the project)
#   HCP_CONFIG_FILE   configuration for the services (default deploy/config/hcp.yaml)
#   HCP_DB_NAME       database name (default hcp)
#   HCP_SAMPLE_SIZE   deliveries in the sample, most of them rated (default 3000; 0 = none)
#   HCP_SKIP_DEPS=1   do not run install-deps.sh (e.g. without root or network)
#   HCP_SKIP_BUILD=1  do not run make (use what is in build/bin)
#   BUILD             build folder (default build)
# As root, the services run as root and PostgreSQL as user postgres (pg-local.sh does that).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export HCP_STATE=${HCP_STATE:-$root/.hcp}
state=$HCP_STATE
run=$state/run
logs=$state/log
build=${BUILD:-build}
case $build in /*) bin=$build/bin ;; *) bin=$root/$build/bin ;; esac
config=${HCP_CONFIG_FILE:-$root/deploy/config/hcp.yaml}
dbname=${HCP_DB_NAME:-hcp}
sample_size=${HCP_SAMPLE_SIZE:-3000}

# Start order matters only for speed (every service reconnects on its own): the bus first
# so publishers and subscribers find it, the relay next, then ingest and the workers.
services=(bus relay ingest default-rater case-router deadline-watcher)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
warn() { printf 'run-local: %s\n' "$*" >&2; }

pid_of() { # prints the pid of a running service, or nothing
    local f=$run/$1.pid pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null || true)
    # The pid must still be our binary: after a reboot the number may belong to another
    # process. (A binary rebuilt since it started shows as "PATH (deleted)".)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    local exe
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    if [ "${exe% (deleted)}" = "$(readlink -f "$bin/hcp-$1")" ]; then
        echo "$pid"
    fi
}

stop_services() {
    local s pid waited any=0
    local -a pids=()
    # Stop in reverse start order, all at once: each finishes its in-flight work on SIGTERM.
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do
        s=${services[i]}
        pid=$(pid_of "$s")
        if [ -n "$pid" ]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$s:$pid")
            any=1
        fi
    done
    [ $any = 1 ] || return 0
    for entry in "${pids[@]}"; do
        s=${entry%%:*}
        pid=${entry#*:}
        waited=0
        while kill -0 "$pid" 2>/dev/null && [ $waited -lt 150 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            warn "hcp-$s (pid $pid) did not stop within 15 s of SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "  stopped hcp-$s (pid $pid)"
        rm -f "$run/$s.pid"
    done
}

# The TCP port a service listens on, from the config file (key under its section) or the
# default; empty for services that bind nothing. Only used to wait until it is up.
listen_port() {
    local section key deflt value
    case $1 in
    bus) section=bus key=publish deflt=5561 ;;
    ingest) section=ingest key=bind deflt=5560 ;;
    case-router) section=case_router key=bind deflt=5570 ;;
    *) return 0 ;;
    esac
    value=$(awk -v s="$section:" -v k="$key:" '
        /^[^ #]/ { in_s = ($1 == s) }
        in_s && $1 == k { print $2; exit }' "$config" 2>/dev/null | tr -d "\"'")
    case $value in
    tcp://*:[0-9]*) echo "${value##*:}" ;;
    "") echo "$deflt" ;;
    esac
}

port_open() { # bash's /dev/tcp: no extra tool needed on a fresh machine
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_services() {
    local s pid port waited
    local -a started=() missing=()
    mkdir -p "$run" "$logs"
    for s in "${services[@]}"; do
        if [ ! -x "$bin/hcp-$s" ]; then
            missing+=("hcp-$s")
            continue
        fi
        # setsid: the services outlive this script and a Ctrl-C in its terminal.
        setsid "$bin/hcp-$s" --config "$config" >>"$logs/$s.log" 2>&1 </dev/null &
        echo $! >"$run/$s.pid"
        started+=("$s")
    done
    # Up = still running after a moment and, for the services that bind a port, accepting
    # connections on it.
    for s in "${started[@]}"; do
        pid=$(cat "$run/$s.pid")
        port=$(listen_port "$s")
        waited=0
        while :; do
            if ! kill -0 "$pid" 2>/dev/null; then
                warn "hcp-$s exited at start; the end of $logs/$s.log:"
                tail -n 15 "$logs/$s.log" >&2
                rm -f "$run/$s.pid"
                return 1
            fi
            if [ $waited -ge 10 ] && { [ -z "$port" ] || port_open "$port"; }; then
                break
            fi
            if [ $waited -ge 300 ]; then
                warn "hcp-$s is running but not listening on port $port after 30 s; see $logs/$s.log"
                return 1
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        printf '  %-22s pid %-7s log %s\n' "hcp-$s" "$pid" "${logs#"$root"/}/$s.log"
    done
    if [ ${#missing[@]} -gt 0 ]; then
        warn "not built yet, so not started: ${missing[*]}"
    fi
}

status() {
    local s pid
    for s in "${services[@]}"; do
        pid=$(pid_of "$s")
        if [ -n "$pid" ]; then
            printf '  %-22s running, pid %-7s log %s\n' "hcp-$s" "$pid" "${logs#"$root"/}/$s.log"
        elif [ -x "$bin/hcp-$s" ]; then
            printf '  %-22s stopped\n' "hcp-$s"
        else
            printf '  %-22s not built\n' "hcp-$s"
        fi
    done
    deploy/scripts/pg-local.sh status >/dev/null 2>&1 && echo "  PostgreSQL             running (${state#"$root"/}/pgdata)" \
        || echo "  PostgreSQL             stopped"
}

pg_env() {
    eval "$(deploy/scripts/pg-local.sh env)"
    export PGDATABASE=$dbname
    # The services and hcpctl read database.conninfo, overridden here by the environment so
    # that the sample config file stays the same for every machine.
    export HCP_DATABASE_CONNINFO="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$dbname"
}

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

prepare_database() {
    say "PostgreSQL (project-local cluster in ${state#"$root"/}/pgdata)"
    deploy/scripts/pg-local.sh start
    pg_env
    # The name goes in as a psql variable, quoted by psql (:'db') and format (%I).
    if [ "$(psql_q -d postgres -tA -v db="$dbname" \
        <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")" != 1 ]; then
        echo "  creating database $dbname"
        psql_q -d postgres -v db="$dbname" <<<"SELECT format('CREATE DATABASE %I', :'db') \gexec"
    fi
    say "migrations and catalog"
    "$bin/hcpctl" --config "$config" migrate
    "$bin/hcpctl" --config "$config" catalog load deploy/config/catalog.yaml
}

send_sample() {
    [ "$sample_size" != 0 ] || return 0
    if ! "$bin/hcpctl" --help 2>/dev/null | grep -q '^ *sample '; then
        warn "hcpctl has no 'sample' command in this build: no sample traffic sent"
        return 0
    fi
    if [ -z "$(pid_of ingest)" ]; then
        warn "hcp-ingest is not running: no sample traffic sent"
        return 0
    fi
    say "sample traffic: deliveries and ratings over all seven channels"
    "$bin/hcpctl" --config "$config" sample --deliveries "$sample_size" || {
        warn "hcpctl sample reported a problem (above); the system keeps running"
        return 0
    }
    # Let the relay stamp every event and case-router open a case for every bad rating
    # before showing the counts (bounded: a stopped worker must not hang `make run`).
    local waited=0 behind
    while [ $waited -lt 150 ]; do
        behind=$(psql_q -tAc "SELECT (SELECT count(*) FROM events WHERE seq IS NULL)
                 + CASE WHEN to_regclass('cases') IS NULL THEN 0 ELSE greatest(0,
                   (SELECT count(*) FROM ratings WHERE is_bad)
                   - (SELECT count(*) FROM cases)) END" 2>/dev/null || echo 0)
        [ "$behind" = 0 ] && break
        sleep 0.2
        waited=$((waited + 1))
    done
    [ "$behind" = 0 ] || warn "the workers are still busy ($behind events or cases to go)"
}

table_exists() {
    [ "$(psql_q -tAc "SELECT to_regclass('$1') IS NOT NULL")" = t ]
}

summary() {
    say "what is in the database now"
    psql_q -P footer=off -c "
        SELECT CASE channel WHEN 1 THEN '1 hall device' WHEN 2 THEN '2 window QR'
                  WHEN 3 THEN '3 online platform' WHEN 4 THEN '4 mobile app'
                  WHEN 5 THEN '5 hotline' WHEN 6 THEN '6 suggestion box'
                  WHEN 7 THEN '7 solicitation' END AS channel,
               count(*) AS ratings,
               count(*) FILTER (WHERE is_bad) AS bad,
               count(*) FILTER (WHERE origin = 'default') AS defaulted
          FROM ratings GROUP BY ratings.channel ORDER BY ratings.channel" || true
    psql_q -P footer=off -c "
        SELECT (SELECT count(*) FROM deliveries) AS deliveries,
               (SELECT count(*) FROM ratings) AS ratings,
               (SELECT count(*) FROM rejected_submissions) AS rejected,
               (SELECT count(*) FROM events) AS events,
               (SELECT count(*) FROM events WHERE seq IS NULL) AS events_unstamped" || true
    if table_exists cases; then
        psql_q -P footer=off -c "SELECT state, count(*) AS cases FROM cases GROUP BY state
                                 ORDER BY state" || true
    fi
}

where_to_look() {
    local rel_state=${state#"$root"/} env_prefix=""
    # Someone who moved the state folder must say so to pg-local.sh too.
    [ "$state" = "$root/.hcp" ] || env_prefix="export HCP_STATE=$state${HCP_PGPORT:+ HCP_PGPORT=$HCP_PGPORT}; "
    cat <<EOF

$(say "where to look")
  Logs         ${rel_state}/log/<service>.log    e.g.  tail -f ${rel_state}/log/ingest.log
               PostgreSQL's own log: ${rel_state}/log/postgresql.log
  Status       deploy/scripts/run-local.sh status
  First, in your shell (psql and hcpctl then find the database):
               ${env_prefix}eval "\$(deploy/scripts/pg-local.sh env)"; export PGDATABASE=$dbname
  psql         psql      (\\dt lists the tables, \\d+ ratings shows a table with its comments)
    ratings per channel:
      psql -c "SELECT channel, count(*), count(*) FILTER (WHERE is_bad) AS bad,
               count(*) FILTER (WHERE origin = 'default') AS defaulted FROM ratings GROUP BY 1 ORDER BY 1"
    the latest bad ratings:
      psql -c "SELECT rating_id, channel, item_code, standardization, convenience, accuracy,
               left(comment, 40) FROM ratings WHERE is_bad ORDER BY received_at DESC LIMIT 10"
    cases opened by bad ratings:
      psql -c "SELECT state, count(*) FROM cases GROUP BY 1"
    rejected submissions and why:
      psql -c "SELECT code, field, count(*), min(reason) FROM rejected_submissions GROUP BY 1, 2 ORDER BY 3 DESC"
  Cases        $build/bin/hcpctl case list        (then: hcpctl case show NUMBER, case form NUMBER)
  Submit       $build/bin/hcpctl submit --help    (one rating, or a CSV file of paper ratings)
  Sample again deploy/scripts/run-local.sh sample
  Stop         make stop        (the services and PostgreSQL; the data stays in ${rel_state}/)
  Start over   make stop && rm -rf ${rel_state} && make run
EOF
}

cmd=${1:-start}
case $cmd in
start)
    if [ "${HCP_SKIP_DEPS:-0}" != 1 ]; then
        say "Debian packages (deploy/scripts/install-deps.sh)"
        deploy/scripts/install-deps.sh
    fi
    if [ "${HCP_SKIP_BUILD:-0}" != 1 ]; then
        say "build (make -j2)"
        make --no-print-directory -j2 BUILD="$build"
    fi
    [ -x "$bin/hcpctl" ] || {
        warn "$build/bin/hcpctl is missing: the build did not produce it"
        exit 1
    }
    prepare_database
    if [ -n "$(pid_of bus)$(pid_of relay)$(pid_of ingest)$(pid_of default-rater)$(pid_of case-router)$(pid_of deadline-watcher)" ]; then
        say "stopping the services that were running (to start the fresh build)"
        stop_services
    fi
    say "services (config ${config#"$root"/})"
    start_services
    send_sample
    summary
    where_to_look
    ;;
restart)
    # restart [SERVICE ...]: only the services named (e.g. after a kill -9 drill), or all.
    shift
    if [ $# -gt 0 ]; then
        for s in "$@"; do
            [[ " ${services[*]} " == *" $s "* ]] || {
                warn "unknown service '$s' (one of: ${services[*]})"
                exit 2
            }
        done
        services=("$@")
    fi
    deploy/scripts/pg-local.sh start
    pg_env
    stop_services
    start_services
    ;;
sample)
    pg_env
    send_sample
    summary
    ;;
stop)
    stop_services
    deploy/scripts/pg-local.sh stop
    echo "  stopped PostgreSQL (data kept in ${state#"$root"/}/pgdata)"
    ;;
status)
    status
    ;;
*)
    echo "usage: run-local.sh [start|stop|status|restart [SERVICE ...]|sample]" >&2
    exit 2
    ;;
esac
