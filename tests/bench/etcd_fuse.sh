#!/bin/bash
# etcd_fuse.sh — FUSE-over-etcd throughput against etcdctl doing the same
# work, in the same run, on the same etcd cluster (docs/BENCHMARKS.md,
# "etcd_fuse").
#
#   tests/bench/etcd_fuse.sh [--keys N] [--members M] [--writers P]
#
# Starts an M-member etcd cluster (default 3) on loopback ports in a mktemp
# -d directory and mounts build/revfs over it (backend=etcd, every
# endpoint).  Then, each measured as wall time for the same keys:
#   write:  N keys written one per `echo v > MNT/w/kI` (sequential, then P
#           writers in parallel) vs one `etcdctl put` per key (the shell
#           user's equivalent; each one is a process start and a gRPC
#           connection, so a baseline of `etcdctl version` per key is also
#           reported);
#   list:   `ls -f` of a directory of N keys, and of a directory with 100
#           subdirectories of N/100 keys each (the delimiter emulation:
#           the listing costs its 100 children), vs `etcdctl get --prefix
#           --keys-only` of the same prefixes (etcdctl has no delimiter:
#           it returns the whole subtree).
# Prints one line per measurement; the trap unmounts and kills etcd.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
N=2000
M=3
P=4
while [ $# -gt 0 ]; do
	case $1 in
	--keys) N=$2; shift 2 ;;
	--members) M=$2; shift 2 ;;
	--writers) P=$2; shift 2 ;;
	*) echo "usage: $0 [--keys N] [--members M] [--writers P]" >&2; exit 2 ;;
	esac
done
REVFS=${REVFS:-$ROOT/build/revfs}
W=$(mktemp -d /tmp/revfs-bench-etcd.XXXXXX)
export ETCD_PIDS_FILE=$W/etcd.pids
: >"$ETCD_PIDS_FILE"
# shellcheck source=../integration/etcd_lib.sh
source tests/integration/etcd_lib.sh
MNT=$W/mnt
mkdir -p "$MNT"
cleanup() {
	cd /
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	fi
	[ -n "${DPID:-}" ] && wait "$DPID" 2>/dev/null
	etcd_kill_all
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

etcd_start_cluster "$W/etcd" "$M" || { echo "etcd did not start" >&2; exit 1; }
EPS=$(IFS='|'; echo "${ETCD_URLS[*]}")
CTL=(env ETCDCTL_API=3 etcdctl --endpoints="$(IFS=,; echo "${ETCD_URLS[*]}")")
"$REVFS" -f -o "backend=etcd,endpoints=$EPS" "$MNT" 2>"$W/revfs.log" &
DPID=$!
for i in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { cat "$W/revfs.log" >&2; exit 1; }

ms() { echo $((($(date +%s%N) - T0) / 1000000)); }
report() { # WHAT OPS MS
	local rate
	rate=$(awk -v n="$2" -v ms="$3" 'BEGIN { printf "%.0f", ms ? n * 1000 / ms : 0 }')
	printf '%-58s %6d ops %7d ms %8s ops/s\n' "$1" "$2" "$3" "$rate"
}

echo "# etcd_fuse: $M member(s) on loopback, $N keys, $P writers, etcd $(etcd --version | head -n1 | sed 's/.*: //'), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

# ------------------------------------------------------------- writes
mkdir "$MNT/w" "$MNT/p"
T0=$(date +%s%N)
for ((i = 0; i < N; i++)); do echo "v$i" >"$MNT/w/k$i"; done
report "write: revfs over etcd, echo > file, 1 writer" "$N" "$(ms)"

T0=$(date +%s%N)
for ((i = 0; i < N; i++)); do "${CTL[@]}" put "e/w/k$i" "v$i" >/dev/null; done
report "write: etcdctl put, 1 writer" "$N" "$(ms)"

T0=$(date +%s%N)
for ((i = 0; i < N; i++)); do "${CTL[@]}" version >/dev/null; done
report "  (baseline: etcdctl version, a process start each)" "$N" "$(ms)"

T0=$(date +%s%N)
for ((j = 0; j < P; j++)); do
	(for ((i = j; i < N; i += P)); do echo "v$i" >"$MNT/p/k$i"; done) &
done
wait $(jobs -p | grep -v "^$DPID$") 2>/dev/null
report "write: revfs over etcd, echo > file, $P writers" "$N" "$(ms)"

T0=$(date +%s%N)
for ((j = 0; j < P; j++)); do
	(for ((i = j; i < N; i += P)); do
		"${CTL[@]}" put "e/p/k$i" "v$i" >/dev/null
	done) &
done
wait $(jobs -p | grep -v "^$DPID$") 2>/dev/null
report "write: etcdctl put, $P writers" "$N" "$(ms)"

# check: both sides hold the same keys
a=$(ls -f "$MNT/w" | grep -c '^k')
b=$("${CTL[@]}" get --prefix e/w/ --keys-only | grep -c .)
[ "$a" = "$N" ] && [ "$b" = "$N" ] || echo "# MISMATCH: revfs $a keys, etcdctl $b keys (want $N)"

# -------------------------------------------------------------- lists
R=20
T0=$(date +%s%N)
for ((r = 0; r < R; r++)); do ls -f "$MNT/w" >/dev/null; done
report "list: ls -f of $N keys, x$R (entries)" $((N * R)) "$(ms)"
T0=$(date +%s%N)
for ((r = 0; r < R; r++)); do "${CTL[@]}" get --prefix e/w/ --keys-only >/dev/null; done
report "list: etcdctl get --prefix --keys-only of $N keys, x$R" $((N * R)) "$(ms)"

# a directory of 100 subdirectories, N/100 keys each
S=100
K=$((N / S))
mkdir "$MNT/tree"
for ((s = 0; s < S; s++)); do
	mkdir "$MNT/tree/d$s"
	for ((i = 0; i < K; i++)); do echo x >"$MNT/tree/d$s/k$i"; done
done
T0=$(date +%s%N)
for ((r = 0; r < R; r++)); do ls -f "$MNT/tree" >/dev/null; done
report "list: ls -f of $S subdirectories ($N keys below), x$R" $((S * R)) "$(ms)"
T0=$(date +%s%N)
for ((r = 0; r < R; r++)); do "${CTL[@]}" get --prefix tree/ --keys-only >/dev/null; done
report "list: etcdctl get --prefix --keys-only tree/ ($N keys), x$R" $((S * R)) "$(ms)"
