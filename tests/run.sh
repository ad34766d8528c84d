#!/usr/bin/env bash
# tests/run.sh BUILD_DIR [BUILD_DIR ...] — runs the whole suite for each build.
#
# Starts the project's own PostgreSQL (deploy/scripts/pg-local.sh) if needed, makes a
# migrated template database with the shipped catalog, then runs every test binary
# (tests/{unit,integration,fault}) and shell test (tests/integration/*.sh), each in its
# own process with a timeout. cmocka cases are counted one by one. Logs go to
# BUILD/test-logs/. The last line is "N passed, N failed"; the exit code is 1 on any
# failure. A test that exits 77 is counted as skipped.
#
# HCP_TEST_FILTER=regex runs only the tests whose name matches.
# HCP_TEST_TIMEOUT=seconds (default 600) per test binary.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -ge 1 ] || set -- build

"$root/deploy/scripts/pg-local.sh" start || {
    echo "tests: cannot start PostgreSQL"
    echo "0 passed, 1 failed"
    exit 1
}
eval "$("$root/deploy/scripts/pg-local.sh" env)"
export HCP_ROOT=$root

passed=0
failed=0
skipped=0
failed_names=()
timeout_s=${HCP_TEST_TIMEOUT:-600}

# Count cmocka cases from a log: "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)".
count_cases() {
    local log=$1 kind=$2
    grep -E "^\[  $kind  \] [0-9]+ test" "$log" | awk '{s += $4} END {print s + 0}'
}

for build in "$@"; do
    build=${build%/}
    bindir=$root/$build/bin
    logs=$root/$build/test-logs
    rm -rf "$logs"
    mkdir -p "$logs"
    export HCP_BIN_DIR=$bindir
    export HCP_BUILD_DIR=$root/$build
    label=$build
    case "$build" in *asan*) label="$build (ASan+UBSan)" ;; esac
    echo "=== suite: $label"

    # A fresh template per build: migrations from zero, catalog loaded.
    # Databases left by earlier runs (t_<name>_<pid>) go, unless their test still runs.
    for db in $(psql -X -At -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 't\_%'"); do
        pid=${db##*_}
        if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
            psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
        fi
    done
    psql -X -q -d postgres -v ON_ERROR_STOP=1 >/dev/null 2>"$logs/template.log" <<SQL || true
DROP DATABASE IF EXISTS hcp_template WITH (FORCE);
CREATE DATABASE hcp_template;
SQL
    if ! PGDATABASE=hcp_template "$bindir/hcpctl" migrate >>"$logs/template.log" 2>&1 ||
        ! PGDATABASE=hcp_template "$bindir/hcpctl" catalog load deploy/config/catalog.yaml \
            >>"$logs/template.log" 2>&1; then
        echo "FAIL template database (see $logs/template.log)"
        tail -n 20 "$logs/template.log"
        failed=$((failed + 1))
        failed_names+=("$build:template")
        continue
    fi

    tests=()
    for kind in unit integration fault; do
        for t in "$build/tests/$kind"/*; do
            [ -x "$t" ] && [ -f "$t" ] && tests+=("$t")
        done
        for t in tests/$kind/*.sh; do
            [ -f "$t" ] && tests+=("$t")
        done
    done

    for t in "${tests[@]}"; do
        name=${t#"$build/tests/"}
        name=${name#tests/}
        name=${name%.sh}
        if [ -n "${HCP_TEST_FILTER:-}" ] && ! [[ $name =~ $HCP_TEST_FILTER ]]; then
            continue
        fi
        log=$logs/${name//\//_}.log
        start=$(date +%s.%N)
        case "$t" in
        *.sh) timeout -k 10 "$timeout_s" bash "$t" >"$log" 2>&1 ;;
        *) timeout -k 10 "$timeout_s" "$t" >"$log" 2>&1 ;;
        esac
        rc=$?
        secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
        ok=$(count_cases "$log" PASSED)
        bad=$(count_cases "$log" FAILED)
        if [ $rc = 77 ] && [ "$ok" = 0 ] && [ "$bad" = 0 ]; then
            # Exit 77 (the automake convention): the test chose not to run here.
            skipped=$((skipped + 1))
            printf 'SKIP %-45s %s\n' "$name" "$(tail -n 1 "$log")"
            continue
        fi
        if [ "$ok" = 0 ] && [ "$bad" = 0 ]; then
            # Not cmocka (a shell test): the exit code is the verdict.
            if [ $rc = 0 ]; then ok=1; else bad=1; fi
        elif [ $rc != 0 ] && [ "$bad" = 0 ]; then
            bad=1 # crashed or timed out after its cases passed (a leak, a hang in teardown)
        fi
        passed=$((passed + ok))
        failed=$((failed + bad))
        if [ "$bad" = 0 ]; then
            printf 'PASS %-45s %3d case(s) %6ss\n' "$name" "$ok" "$secs"
        else
            [ $rc = 124 ] && note=" (timed out after ${timeout_s}s)" || note=""
            printf 'FAIL %-45s %3d passed, %d failed %6ss%s  log: %s\n' "$name" "$ok" "$bad" \
                "$secs" "$note" "$log"
            tail -n 30 "$log" | sed 's/^/    | /'
            failed_names+=("$build:$name")
        fi
    done
done

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
