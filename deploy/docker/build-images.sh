#!/usr/bin/env bash
# build-images.sh — builds the container images docker-compose.yml runs (the target of
# `make images`):
#
#   hcp-base:bookworm    Debian 12 minbase, made here with debootstrap (build-base.sh)
#   hcp:VERSION, hcp:latest        every hcp binary, the migrations, catalog and calendar
#   hcp-postgres:15      PostgreSQL 15 from Debian's postgresql-15 package
#
#   deploy/docker/build-images.sh [--force-base] [hcp|postgres ...]   (default: both)
#
# The build context is a tar of only what the images need (Makefile, common, proto, services,
# deploy): never the build/ folder or the local PostgreSQL data in .hcp/, which can be large.
# The classic builder (DOCKER_BUILDKIT=0) is used because it needs nothing beyond the engine.
# Environment: HCP_BASE_IMAGE, HCP_IMAGE (default hcp), HCP_PG_IMAGE (default hcp-postgres:15),
# JOBS (parallel compile jobs inside the build, default 2).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
base=${HCP_BASE_IMAGE:-hcp-base:bookworm}
image=${HCP_IMAGE:-hcp}
pg_image=${HCP_PG_IMAGE:-hcp-postgres:15}
jobs=${JOBS:-2}
export DOCKER_BUILDKIT=0

force_base=()
targets=()
for arg in "$@"; do
    case $arg in
    --force-base) force_base=(--force) ;;
    hcp | postgres) targets+=("$arg") ;;
    *)
        echo "usage: build-images.sh [--force-base] [hcp|postgres ...]" >&2
        exit 2
        ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(hcp postgres)

log() { echo "build-images: $*" >&2; }
elapsed() { echo $(($(date +%s) - $1)); }

mkdir -p "${HCP_STATE:-$root/.hcp}"
t0=$(date +%s)
HCP_BASE_IMAGE=$base deploy/docker/build-base.sh "${force_base[@]}"
log "base image ready ($(elapsed "$t0") s)"

version=$(sed -n 's/^#define HCP_VERSION "\(.*\)"/\1/p' common/hcp_service.h)
version=${version:-dev}
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

context() { # the sources, as a tar on stdout
    tar -C "$root" --exclude='*.o' --exclude='*.d' -c Makefile common proto services deploy
}

for target in "${targets[@]}"; do
    t=$(date +%s)
    case $target in
    hcp)
        log "building $image:$version (compiles every service; a few minutes)"
        # The build stage first, tagged, so that it stays the cache of the next build and the
        # older build stages (untagged, ~600 MB each) can be pruned below.
        { context | docker build --force-rm --build-arg BASE_IMAGE="$base" --build-arg JOBS="$jobs" \
            --target build -t hcp-build:latest -f deploy/docker/hcp.Dockerfile - &&
          context | docker build --force-rm --build-arg BASE_IMAGE="$base" --build-arg JOBS="$jobs" \
            --label hcp.image=hcp \
            --label org.opencontainers.image.version="$version" \
            --label org.opencontainers.image.revision="$revision" \
            -t "$image:$version" -t "$image:latest" -f deploy/docker/hcp.Dockerfile -; } \
            >"${HCP_STATE:-$root/.hcp}/docker-build-hcp.log" 2>&1 || {
            log "the hcp image did not build; the end of .hcp/docker-build-hcp.log:"
            tail -n 40 "${HCP_STATE:-$root/.hcp}/docker-build-hcp.log" >&2
            exit 1
        }
        log "$image:$version built in $(elapsed "$t") s"
        # Older builds of ours that nothing names any more (never other images).
        docker image prune -f --filter label=hcp.stage=build >/dev/null 2>&1 || true
        docker image prune -f --filter label=hcp.image=hcp >/dev/null 2>&1 || true
        ;;
    postgres)
        log "building $pg_image"
        context | docker build --force-rm --build-arg BASE_IMAGE="$base" -t "$pg_image" \
            -f deploy/docker/postgres.Dockerfile - \
            >"${HCP_STATE:-$root/.hcp}/docker-build-postgres.log" 2>&1 || {
            log "the PostgreSQL image did not build; the end of .hcp/docker-build-postgres.log:"
            tail -n 40 "${HCP_STATE:-$root/.hcp}/docker-build-postgres.log" >&2
            exit 1
        }
        log "$pg_image built in $(elapsed "$t") s"
        ;;
    esac
done
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' \
    | grep -E "^($image|${pg_image%%:*}|${base%%:*}):" | sed 's/^/  /' || true
log "all done in $(elapsed "$t0") s; start with: docker-compose up -d"
