#!/bin/bash
# etcd_revfs.sh — stands in for build/revfs so that the integration suite
# runs unchanged on the etcd backend (tests/integration/etcd_run.sh sets
# REVFS to this script).
#
# It takes revfs's arguments, finds `-o data=DIR`, and makes DIR the home of
# a private single-member etcd: started on free loopback ports the first
# time DIR is seen (data in DIR/m.etcd, log in DIR/m.log, URL in DIR/url),
# reused while it runs.  So "the same data directory" still means "the same
# store" (a remount sees what was written) and two data directories are two
# stores.  Then it execs the real daemon ($REVFS_REAL, default
# build/revfs) with `backend=etcd,endpoints=URL` added: the daemon's pid is
# the one the suite waits for.  A `quota=` option becomes the member's
# --quota-backend-bytes (the etcd backend enforces no quota of its own).  Each member's pid goes to $ETCD_PIDS_FILE,
# which the runner uses to kill them after every script.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REAL=${REVFS_REAL:-$HERE/../../build/revfs}
# shellcheck source=etcd_lib.sh
source "$HERE/etcd_lib.sh"

dir=""
quota=""
prev=""
take_opts() { # a -o value: note data= and quota=
	local p parts
	IFS=, read -ra parts <<<"$1"
	for p in "${parts[@]}"; do
		case $p in
		data=*) dir=${p#data=} ;;
		quota=*) quota=${p#quota=} ;;
		esac
	done
}
for a in "$@"; do
	[ "$prev" = "-o" ] && take_opts "$a"
	case $a in -o?*) take_opts "${a#-o}" ;; esac
	prev=$a
done
# The store's quota is the etcd server's (--quota-backend-bytes).
qbytes=""
case $quota in
"") ;;
*[kK]) qbytes=$((${quota%?} * 1024)) ;;
*[mM]) qbytes=$((${quota%?} * 1024 * 1024)) ;;
*[gG]) qbytes=$((${quota%?} * 1024 * 1024 * 1024)) ;;
*) qbytes=$quota ;;
esac
[ -n "$qbytes" ] && ETCD_EXTRA=(--quota-backend-bytes "$qbytes")
[ -n "$dir" ] || exec "$REAL" "$@"

url=""
if [ -f "$dir/url" ] && [ -f "$dir/pid" ] &&
	kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
	url=$(cat "$dir/url")
fi
# a running member is reused even if unhealthy (a NOSPACE alarm makes
# /health say false): it holds the data directory
if [ -z "$url" ]; then
	mkdir -p "$dir"
	if ! etcd_start_single "$dir"; then
		echo "etcd_revfs: etcd did not start for $dir" >&2
		exit 1
	fi
	echo "$ETCD_URL" >"$dir/url"
	echo "$ETCD_PID" >"$dir/pid"
	url=$ETCD_URL
fi
exec "$REAL" -o "backend=etcd,endpoints=$url" "$@"
