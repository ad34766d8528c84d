# hcp.Dockerfile — one image with every hcp binary (hcp-bus, hcp-relay, hcp-ingest,
# hcp-default-rater, hcp-case-router, hcp-deadline-watcher, hcpctl, ...); docker-compose.yml
# picks the binary with `command:`.
#
# Build it with deploy/docker/build-images.sh (or `make images`), which builds the base image
# first and sends only the sources as the build context. By hand, from the project root:
#   tar -c Makefile common proto services deploy | DOCKER_BUILDKIT=0 \
#       docker build -t hcp:latest -f deploy/docker/hcp.Dockerfile -
#
# Two stages: `build` has the compiler and the -dev packages and runs `make`; the runtime stage
# has only the shared libraries the binaries link (found with ldd + dpkg -S, so a new library
# in the Makefile needs no change here), the migrations, the catalog and calendar, and the
# sample configuration.
ARG BASE_IMAGE=hcp-base:bookworm

# ---- build ----------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
# build-images.sh tags this stage hcp-build:latest (it is the layer cache of the next build)
# and prunes the untagged older ones by this label.
LABEL hcp.stage=build
# The build packages are those of deploy/scripts/install-deps.sh (one list for the project),
# less what only developers need there: the PostgreSQL server, clang-format, git, cmocka.
COPY deploy/scripts/install-deps.sh /tmp/install-deps.sh
RUN pkgs=$(sed -n '/^packages=(/,/^)/p' /tmp/install-deps.sh | sed '1d;$d' | sed 's/#.*//' \
        | tr -s ' \t' '\n' \
        | grep -vE '^(postgresql-[0-9]+|postgresql-client-[0-9]+|clang-format|git|libcmocka-dev|)$') \
 && echo "build packages:" $pkgs \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs \
 && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh
WORKDIR /src
COPY Makefile ./
COPY proto proto
COPY common common
COPY services services
ARG JOBS=2
RUN make -j"${JOBS}" BUILD=/build all
# The Debian packages that hold the libraries the binaries need at run time.
RUN set -e; \
    for b in /build/bin/*; do ldd "$b"; done | awk '$3 ~ /^\// { print $3 }' | sort -u \
    | while read -r lib; do \
          real=$(readlink -f "$lib"); \
          for p in "$lib" "$real" "/usr$lib" "${lib#/usr}" "/usr$real" "${real#/usr}"; do \
              dpkg -S "$p" 2>/dev/null && break; \
          done || { echo "no Debian package holds $lib" >&2; exit 1; }; \
      done | cut -d: -f1 | sort -u >/build/runtime-packages; \
    echo "runtime packages:"; cat /build/runtime-packages

# ---- runtime --------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
COPY --from=build /build/runtime-packages /tmp/runtime-packages
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages apt-get install -y -q \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages \
 && useradd --system --user-group --home-dir /var/lib/hcp --create-home \
        --shell /usr/sbin/nologin hcp
COPY --from=build /build/bin/ /usr/bin/
# hcpctl migrate finds /usr/share/hcp/sql; the calendar module /usr/share/hcp/calendar-cn.yaml.
COPY deploy/sql/ /usr/share/hcp/sql/
COPY deploy/config/ /usr/share/hcp/
COPY deploy/config/hcp.yaml /etc/hcp/hcp.yaml
ENV HCP_CONFIG=/etc/hcp/hcp.yaml
# Not root: nothing here needs it, and a compromised service then owns nothing of the host's.
USER hcp
WORKDIR /var/lib/hcp
# ingest (adapters), bus publish (XSUB) and subscribe (XPUB), case-router commands.
EXPOSE 5560 5561 5562 5570
CMD ["hcpctl", "--help"]
