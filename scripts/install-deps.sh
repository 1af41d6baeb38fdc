#!/usr/bin/env bash
# Install every Debian package revfs needs to build, run and be tested.
# Idempotent; needs root (or sudo).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PKGS=(build-essential pkg-config clang clang-format libclang-rt-14-dev libfuse3-dev fuse3 libleveldb-dev
      libcmocka-dev inotify-tools attr etcd-server etcd-client valgrind
      libcurl4-openssl-dev libjansson-dev vim-tiny rsync tar psmisc procps
      util-linux python3 time jq curl iproute2 mawk coreutils diffutils
      man-db)
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PKGS[@]}"
# Debian's etcd-server package may start a system etcd; revfs's tests run
# their own on other ports, so stop it to save memory (harmless if absent).
$SUDO systemctl stop etcd 2>/dev/null || $SUDO service etcd stop 2>/dev/null || true
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing (load the fuse module)" >&2; exit 1; }
