#!/bin/bash
# postgres-entrypoint.sh — starts PostgreSQL 15 for hcp in a container; on the first start
# (an empty data volume) it creates the cluster, the hcp database and the login roles.
#
# Environment (read on the first start only; later starts use what the volume holds):
#   POSTGRES_PASSWORD        password of the superuser postgres (required; it runs the
#                            migrations). POSTGRES_HOST_AUTH_METHOD=trust instead allows any
#                            connection without a password (only for throw-away test setups).
#   POSTGRES_DB              database to create (default hcp)
#   HCP_APP_PASSWORD         creates login role hcp_app, member of hcp_service: what the
#                            services connect as (default: no such role)
#   HCP_AUDITOR_PASSWORD     creates login role auditor, member of hcp_auditor (read-only, no
#                            personal data) (default: no such role)
#   POSTGRES_INITDB_ARGS     extra initdb arguments
# Files in /docker-entrypoint-initdb.d/ (*.sql run by psql, *.sh sourced) run once, after that.
#
# The roles hcp_service, hcp_pii, hcp_auditor and hcp_public are created here ahead of the
# migrations (001 creates them only if missing) so that the login roles can be members from
# the start and inherit whatever each migration grants.
#
# Arguments: `postgres [-c name=value ...]` runs the server (the default command); anything
# else is executed as given (e.g. `bash`, `psql`).
set -euo pipefail

PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA

if [ "${1:-postgres}" != postgres ]; then
    exec "$@"
fi
shift || true

# Root only prepares the folders, then the same script runs again as postgres.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /run/postgresql
    chown postgres:postgres "$PGDATA" /run/postgresql
    chmod 700 "$PGDATA"
    # setpriv execs (runuser and su fork and stay as PID 1, and do not pass on SIGINT, the
    # fast-shutdown signal): postgres itself must be PID 1 to get Docker's stop signal.
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

log() { echo "postgres-entrypoint: $*" >&2; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
        log "the data folder is empty and POSTGRES_PASSWORD is not set: set it (the password"
        log "of the superuser postgres) or POSTGRES_HOST_AUTH_METHOD=trust for a test setup"
        exit 1
    fi
    log "creating the cluster in $PGDATA"
    pwfile=$(mktemp)
    trap 'rm -f "$pwfile"' EXIT
    printf '%s\n' "${POSTGRES_PASSWORD:-unused}" >"$pwfile"
    # shellcheck disable=SC2086
    initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=peer \
        --auth-host="$auth" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    cat >>"$PGDATA/postgresql.conf" <<'CONF'

# --- hcp container defaults (override with `command: postgres -c name=value`) ---
listen_addresses = '*'
unix_socket_directories = '/run/postgresql'
max_connections = 300
shared_buffers = 512MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 15min
log_line_prefix = '%m [%p] %q%u@%d %a '
log_min_messages = warning
CONF
    # Inside the container, root may connect as postgres over the socket (root owns the data
    # files anyway): `docker-compose exec postgres psql -d hcp` just works. Everyone else
    # keeps peer authentication as their own name.
    sed -i 's/^\(local[[:space:]]\+all[[:space:]]\+all[[:space:]]\+\)peer$/\1peer map=container/' \
        "$PGDATA/pg_hba.conf"
    cat >>"$PGDATA/pg_ident.conf" <<'IDENT'
container    root        postgres
container    /^(.*)$     \1
IDENT
    cat >>"$PGDATA/pg_hba.conf" <<HBA

# hcp: clients on the container network, with a password
host    all    all    0.0.0.0/0    $auth
host    all    all    ::/0         $auth
HBA

    # A private server on the socket only while we set things up: the healthcheck
    # (pg_isready on TCP) stays red until the real server is up.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null
    db=${POSTGRES_DB:-hcp}
    psql=(psql -X -q -v ON_ERROR_STOP=1 -U postgres)
    "${psql[@]}" -d postgres -v db="$db" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') \gexec
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['hcp_service', 'hcp_pii', 'hcp_auditor', 'hcp_public'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;
SQL
    if [ -n "${HCP_APP_PASSWORD:-}" ]; then
        log "creating login role hcp_app (member of hcp_service)"
        "${psql[@]}" -d postgres -v pw="$HCP_APP_PASSWORD" -v db="$db" <<'SQL'
SELECT format('CREATE ROLE hcp_app LOGIN PASSWORD %L IN ROLE hcp_service', :'pw') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO hcp_service', :'db') \gexec
SQL
    fi
    if [ -n "${HCP_AUDITOR_PASSWORD:-}" ]; then
        log "creating login role auditor (member of hcp_auditor)"
        "${psql[@]}" -d postgres -v pw="$HCP_AUDITOR_PASSWORD" -v db="$db" <<'SQL'
SELECT format('CREATE ROLE auditor LOGIN PASSWORD %L IN ROLE hcp_auditor', :'pw') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO hcp_auditor', :'db') \gexec
SQL
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case $f in
        *.sql) log "running $f"; "${psql[@]}" -d "$db" -f "$f" ;;
        *.sh) log "running $f"; . "$f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    log "cluster ready"
fi

exec postgres -D "$PGDATA" "$@"
