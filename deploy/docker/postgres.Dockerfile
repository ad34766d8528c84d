# postgres.Dockerfile — PostgreSQL 15 from Debian's own postgresql-15 package, for hcp.
#
# Debian's packaging creates a cluster at install time and manages it with pg_ctlcluster; in a
# container we want neither: the cluster lives in a volume and is created on first start by
# postgres-entrypoint.sh (initdb, the hcp database and its roles), then `postgres` runs in the
# foreground as PID 1's child-less main process and stops cleanly on SIGTERM (fast shutdown on
# SIGINT).
#
# Build with deploy/docker/build-images.sh (or `make images`).
ARG BASE_IMAGE=hcp-base:bookworm
FROM ${BASE_IMAGE}
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/hcp.conf \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /run/postgresql /docker-entrypoint-initdb.d \
 && chown -R postgres:postgres /var/lib/postgresql /run/postgresql \
 && chmod 700 /var/lib/postgresql/data
COPY deploy/docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGUSER=postgres \
    PGDATABASE=hcp \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=5 \
    CMD pg_isready -h 127.0.0.1 -U postgres -d "${POSTGRES_DB:-hcp}" -q || exit 1
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
