#!/usr/bin/env bash
# tests/bench/run.sh [BUILD_DIR] — `make bench`: runs every benchmark binary in
# BUILD_DIR/bench (default build/bench) and prints their tables.
#
# Starts the project's own PostgreSQL (deploy/scripts/pg-local.sh) if needed and makes a
# migrated template database with the shipped catalog, named hcp_bench_template so a test
# suite running at the same time keeps its own template. Each benchmark makes a fresh
# database per run from it (HCP_TEST_TEMPLATE; hcp_test_db_create or its own CREATE DATABASE) and
# drops it afterwards. Benchmarks print tables; they are not timed tests: the exit code
# is 1 only if a benchmark failed to run (crashed, timed out, or found wrong counts).
#
# HCP_BENCH_FILTER=regex runs only the matching benchmarks; HCP_BENCH_TIMEOUT=seconds
# (default 600) bounds each one.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${1:-build}
build=${build%/}

"$root/deploy/scripts/pg-local.sh" start || {
    echo "bench: cannot start PostgreSQL"
    exit 1
}
eval "$("$root/deploy/scripts/pg-local.sh" env)"
export HCP_ROOT=$root
export HCP_BIN_DIR=$root/$build/bin
export HCP_BUILD_DIR=$root/$build
export HCP_TEST_TEMPLATE=hcp_bench_template
logs=$root/$build/bench-logs
mkdir -p "$logs"

psql -X -q -d postgres -v ON_ERROR_STOP=1 >/dev/null 2>"$logs/template.log" <<SQL || true
DROP DATABASE IF EXISTS hcp_bench_template WITH (FORCE);
CREATE DATABASE hcp_bench_template;
SQL
if ! PGDATABASE=hcp_bench_template "$HCP_BIN_DIR/hcpctl" migrate >>"$logs/template.log" 2>&1 ||
    ! PGDATABASE=hcp_bench_template "$HCP_BIN_DIR/hcpctl" catalog load \
        deploy/config/catalog.yaml >>"$logs/template.log" 2>&1; then
    echo "bench: cannot make the template database (see $logs/template.log)"
    tail -n 20 "$logs/template.log"
    exit 1
fi

failed=()
ran=0
for b in "$build"/bench/*; do
    [ -x "$b" ] && [ -f "$b" ] || continue
    name=$(basename "$b")
    if [ -n "${HCP_BENCH_FILTER:-}" ] && ! [[ $name =~ $HCP_BENCH_FILTER ]]; then
        continue
    fi
    echo "=== $name"
    start=$(date +%s)
    timeout -k 10 "${HCP_BENCH_TIMEOUT:-600}" "$b" 2>"$logs/$name.stderr"
    rc=$?
    ran=$((ran + 1))
    if [ $rc != 0 ]; then
        failed+=("$name")
        echo "($name exited with $rc; stderr in $logs/$name.stderr)"
        tail -n 10 "$logs/$name.stderr" | sed 's/^/    | /'
    fi
    echo "($name took $(($(date +%s) - start)) s)"
    echo
done

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS hcp_bench_template WITH (FORCE)" \
    >/dev/null 2>&1 || true
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench: failed: ${failed[*]}"
    exit 1
fi
echo "bench: $ran benchmark(s) ran"
