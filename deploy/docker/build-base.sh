#!/usr/bin/env bash
# build-base.sh — builds the Debian 12 (bookworm) base image that every hcp image starts FROM.
#
#   deploy/docker/build-base.sh            build hcp-base:bookworm unless it exists
#   deploy/docker/build-base.sh --force    build it again (e.g. to pick up security updates)
#
# Why not `FROM debian:bookworm`? The machines hcp is built on may reach no container
# registry at all, only a Debian package mirror. So we make the base ourselves: debootstrap a
# minimal bookworm into a folder and `docker import` it. The result is the same thing the
# official image is (a minbase debootstrap), built from the mirror this machine already
# trusts, with the archive keyring checking every package.
#
# The mirror is the one apt uses on this machine (read from /etc/apt/sources.list and
# /etc/apt/sources.list.d/), so the script follows whatever mirror or proxy the site has set.
# Override with HCP_DEBIAN_MIRROR=URL (and HCP_DEBIAN_SECURITY_MIRROR=URL).
#
# Environment: HCP_BASE_IMAGE (default hcp-base:bookworm), HCP_STATE (default .hcp in the
# project; the rootfs is built in $HCP_STATE/docker/ and removed afterwards).
# Needs root (debootstrap, chroot) and a running Docker daemon.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
state=${HCP_STATE:-$root/.hcp}
image=${HCP_BASE_IMAGE:-hcp-base:bookworm}
suite=bookworm
force=0
[ "${1:-}" = "--force" ] && force=1

log() { echo "build-base: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "needs root (debootstrap builds a root file system); run it with sudo"
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    log "cannot talk to the Docker daemon (is it running? are you in the docker group?)"
    exit 1
fi
if [ $force = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    log "$image exists (use --force to rebuild it)"
    exit 0
fi

# --- which mirror ---------------------------------------------------------------------------
# Prints "URI SUITE" for every Debian entry apt knows, from both the one-line format
# (sources.list, *.list) and the deb822 format (*.sources). Only Types: deb entries.
apt_entries() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # Stanzas separated by blank lines; keep URIs x Suites of "Types: deb" stanzas.
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no")
                    for (u in uris) for (s in suites) print uris[u], suites[s]
                delete uris; delete suites; types = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:"   { types = ""; for (i = 2; i <= NF; i++) types = types " " $i; types = types " " }
            tolower($1) == "uris:"    { for (i = 2; i <= NF; i++) uris[i] = $i }
            tolower($1) == "suites:"  { for (i = 2; i <= NF; i++) suites[i] = $i }
            tolower($1) == "enabled:" { enabled = tolower($2) }
            END { flush() }
        ' "$f"
    done
}

mirror=${HCP_DEBIAN_MIRROR:-$(apt_entries | awk -v s="$suite" '$2 == s { print $1; exit }')}
security=${HCP_DEBIAN_SECURITY_MIRROR:-$(apt_entries | awk -v s="$suite-security" '$2 == s { print $1; exit }')}
if [ -z "$mirror" ]; then
    log "no '$suite' entry in /etc/apt/sources.list{,.d/*}; set HCP_DEBIAN_MIRROR=URL"
    exit 1
fi
mirror=${mirror%/}
security=${security%/}
log "mirror $mirror${security:+, security $security}"

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap \
        >/dev/null || {
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
    }
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
keyring_opt=()
[ -f "$keyring" ] && keyring_opt=(--keyring="$keyring")

# --- debootstrap ----------------------------------------------------------------------------
work=$state/docker
rootfs=$work/rootfs-$suite
mkdir -p "$work"
cleanup() {
    # Never leave /proc or /dev mounted inside the project folder.
    local m
    for m in $(awk -v r="$rootfs" '$2 ~ "^"r { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$rootfs"
}
trap cleanup EXIT
cleanup

started=$(date +%s)
log "debootstrap --variant=minbase $suite into $rootfs (a few minutes)"
# tzdata: the zone files (business deadlines end at 24:00 Asia/Shanghai; the system
# clock itself stays UTC, hcp never depends on TZ); ca-certificates: https mirrors and libcurl.
debootstrap --variant=minbase --include=tzdata,ca-certificates "${keyring_opt[@]}" \
    "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    log "debootstrap failed; the end of $work/debootstrap.log:"
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}

# --- make it a container base ---------------------------------------------------------------
# apt sources: the same mirrors as this machine, so `apt-get install` in Dockerfiles works.
rm -f "$rootfs/etc/apt/sources.list"
{
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
        "$mirror" "$suite" "$suite"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [ -n "$security" ]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' \
            "$security" "$suite"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
} >"$rootfs/etc/apt/sources.list.d/debian.sources"

# What the official Debian images do, for the same reasons: no daemons started by package
# scripts during a build, no recommends, no man pages or docs, no apt caches in layers.
cat >"$rootfs/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
# Containers start their own processes: package scripts must not start daemons.
exit 101
EOF
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
cat >"$rootfs/etc/apt/apt.conf.d/90hcp-container" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90hcp-container" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
EOF
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/*/changelog* \
    "$rootfs"/usr/share/man/* "$rootfs"/tmp/* "$rootfs"/var/log/*.log

# --- import ---------------------------------------------------------------------------------
log "importing as $image"
tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap $suite minbase from $mirror" - "$image" >/dev/null
log "$image built in $(($(date +%s) - started)) s ($(docker image inspect -f '{{.Size}}' "$image" \
    | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
