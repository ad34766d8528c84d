#!/usr/bin/env bash
# install-deps.sh — installs the Debian 12 packages hcp needs to build, test and run.
# Safe to run again: apt-get skips what is installed. Needs root (or sudo).
set -euo pipefail

packages=(
    build-essential pkg-config make git
    libczmq-dev libzmq3-dev
    libprotobuf-c-dev protobuf-c-compiler
    libpq-dev postgresql-15 postgresql-client-15
    libyaml-dev uuid-dev
    libcurl4-openssl-dev libmicrohttpd-dev
    libcmocka-dev clang-format
    libcsv-dev
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
