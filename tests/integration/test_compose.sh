#!/usr/bin/env bash
# test_compose.sh — the container deployment end to end: builds the images, starts
# docker-compose.yml under a project name of its own, and checks that
#   1. migrate finishes and every service stays up;
#   2. a rating submitted from inside the project network is accepted, and a sample of
#      deliveries and ratings gives one case per bad rating with every event stamped;
#   3. with --scale default-rater=2 --scale case-router=2 there is still one case per bad rating;
#   4. after `docker-compose restart postgres` a submission is accepted again;
#   5. after a kill -9 of ingest, Docker restarts it and a submission is accepted.
# Then it removes its containers, network and volume.
#
# Opt-in, because it needs a Docker daemon and builds images (about 4 minutes the first time,
# mostly compiling): HCP_TEST_COMPOSE=1 tests/run.sh build  (with HCP_TEST_FILTER=compose for
# it alone). Without HCP_TEST_COMPOSE=1, or in the sanitizer build, it says so and exits 0.
# It never touches another compose project: its name is hcptest<pid>, ingest is published on
# a random loopback port, the passwords are random.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

if [ "${HCP_TEST_COMPOSE:-0}" != 1 ]; then
    echo "test_compose: skipped (set HCP_TEST_COMPOSE=1 to build the images and run it)"
    exit 77
fi
case ${HCP_BUILD_DIR:-} in *asan*)
    echo "test_compose: skipped in the sanitizer build (the images are built from source)"
    exit 77
    ;;
esac

passed=0
failed=0
check() { # check NAME COMMAND... : one verdict line per check
    local name=$1
    shift
    if "$@"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}

if ! docker info >/dev/null 2>&1 || ! command -v docker-compose >/dev/null; then
    echo "test_compose: no Docker daemon or no docker-compose here"
    echo "0 passed, 1 failed"
    exit 1
fi

project=hcptest$$
export HCP_PG_PASSWORD=pg-$RANDOM$RANDOM HCP_APP_PASSWORD=app-$RANDOM$RANDOM \
    HCP_AUDITOR_PASSWORD=aud-$RANDOM$RANDOM HCP_INGEST_PUBLISH=127.0.0.1:   # → 127.0.0.1::5560, any free port
dc() { docker-compose -p "$project" "$@"; }
cleanup() {
    dc logs --no-color >"${HCP_BUILD_DIR:-$root/build}/test-logs/compose-services.log" 2>&1 || true
    dc --profile tools down -v --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT

sql() { dc exec -T postgres psql -X -At -c "$1" 2>/dev/null | tr -d '\r'; }

# Polls a shell condition every second for up to $1 seconds.
wait_for() {
    local limit=$1
    shift
    local i
    for ((i = 0; i < limit; i++)); do
        if eval "$*"; then return 0; fi
        sleep 1
    done
    return 1
}

running_count() { # how many containers of a service are running
    local n=0 id
    for id in $(dc ps -q "$1" 2>/dev/null); do
        [ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" = true ] && n=$((n + 1))
    done
    echo $n
}

all_up() {
    local s
    for s in postgres bus relay ingest default-rater case-router deadline-watcher; do
        [ "$(running_count "$s")" -ge 1 ] || return 1
    done
}

submit_bad() { # a bad rating through hcpctl on the project network; prints its answer
    dc run --rm -T hcpctl submit rating --item 000119001000 --channel hall-device \
        --stage completion --rater-type natural-person --standardization 5 --accuracy 4 \
        --comment "$1" --timeout 2000 --attempts 15 2>&1 | tr -d '\r'
}

one_case_per_bad_rating() {
    [ "$(sql "SELECT (SELECT count(*) FROM ratings WHERE is_bad) = (SELECT count(*) FROM cases)
                 AND (SELECT count(DISTINCT rating_id) FROM cases) = (SELECT count(*) FROM cases)
                 AND (SELECT count(*) FROM events WHERE seq IS NULL) = 0
                 AND (SELECT count(*) FROM ratings WHERE is_bad) > 0")" = t ]
}

started=$(date +%s)
echo "--- building the images (deploy/docker/build-images.sh)"
if ! deploy/docker/build-images.sh; then
    echo "FAIL images"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "images ready after $(($(date +%s) - started)) s"

echo "--- docker-compose up (project $project)"
dc up -d >/dev/null 2>&1
check "migrate finished with exit code 0" wait_for 180 \
    '[ "$(docker inspect -f "{{.State.Status}} {{.State.ExitCode}}" "$(dc ps -q migrate)" 2>/dev/null)" = "exited 0" ]'
check "every service is running" wait_for 60 all_up
sleep 5
check "every service still running 5 s later" all_up

answer=$(submit_bad "compose test: first rating")
echo "$answer"
check "a rating from inside the network is accepted" grep -q '^accepted ' <<<"$answer"
check "its case is opened" wait_for 30 '[ "$(sql "SELECT count(*) FROM cases")" = 1 ]'

dc run --rm -T hcpctl sample --deliveries 300 --seed 7 >/dev/null 2>&1
check "hcpctl sample: one case per bad rating, every event stamped" \
    wait_for 60 one_case_per_bad_rating

echo "--- scaled: default-rater=2 case-router=2"
dc up -d --scale default-rater=2 --scale case-router=2 >/dev/null 2>&1
check "two default-raters and two case-routers running" wait_for 60 \
    '[ "$(running_count default-rater)" = 2 ] && [ "$(running_count case-router)" = 2 ]'
dc run --rm -T hcpctl sample --deliveries 300 --seed 8 >/dev/null 2>&1
check "scaled: still one case per bad rating" wait_for 60 one_case_per_bad_rating

echo "--- PostgreSQL restart"
dc restart postgres >/dev/null 2>&1
answer=$(submit_bad "compose test: after the PostgreSQL restart")
echo "$answer"
check "accepted after a PostgreSQL restart" grep -q '^accepted ' <<<"$answer"
check "its case is opened" wait_for 60 one_case_per_bad_rating

echo "--- kill -9 of ingest"
ingest=$(dc ps -q ingest)
kill -9 "$(docker inspect -f '{{.State.Pid}}' "$ingest")"
check "Docker restarted ingest" wait_for 30 \
    '[ "$(docker inspect -f "{{.RestartCount}} {{.State.Running}}" "$ingest")" = "1 true" ]'
answer=$(submit_bad "compose test: after kill -9 of ingest")
echo "$answer"
check "accepted after ingest was killed" grep -q '^accepted ' <<<"$answer"
check "all services up at the end" all_up

echo "compose test took $(($(date +%s) - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
