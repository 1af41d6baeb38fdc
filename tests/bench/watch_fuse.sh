#!/bin/bash
# watch_fuse.sh — watch fan-out through files (issue 5, docs/BENCHMARKS.md):
# READERS threads each block in read(2) on MNT/ns/@watch@REV while four
# writers put files in MNT/ns at RATE puts/s for SECONDS; prints the daemon's
# thread count and CPU time and the delivery latency from the start of a
# put to the reader's read(2) (bench_watch_fuse.c).
#
#   tests/bench/watch_fuse.sh [READERS [RATE [SECONDS]]]   (1000 1000 10)
#   QUICK=1: 200 readers, 500 puts/s, 5 s.
#   PERF=FILE: also record the daemon's profile (perf record -g) into FILE.
#   WATCH_POLL=K: K client threads poll(2) the descriptors and read the
#     ready ones, instead of a thread blocked in read(2) per reader.
#   REVFS=build/san/revfs: the sanitizer build; any report fails the run.
#
# The daemon runs with sync=none (this measures delivery, not fsync) on its
# own mktemp -d store; a trap always unmounts it.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
REVFS=${REVFS:-$REPO/build/revfs}
BIN=$REPO/build/bench/bench_watch_fuse
if [ "${QUICK:-0}" = 1 ]; then
	set -- "${1:-200}" "${2:-500}" "${3:-5}"
fi
READERS=${1:-1000}
RATE=${2:-1000}
SECS=${3:-10}

T=$(mktemp -d /tmp/revfs-watch-fuse.XXXXXX) || exit 1
MNT=$T/mnt
PID=""
cleanup() {
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	fi
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

make -C "$REPO" -s build/revfs build/bench/bench_watch_fuse || exit 1
mkdir "$MNT"
"$REVFS" -f -o "data=$T/data,sync=none" "$MNT" 2>"$T/log" &
PID=$!
for ((i = 0; i < 100; i++)); do
	mountpoint -q "$MNT" && break
	sleep 0.1
done
mountpoint -q "$MNT" || {
	echo "not mounted:"
	cat "$T/log"
	exit 1
}
mkdir "$MNT/ns"

echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r)"
echo "# $READERS @watch readers, $RATE puts/s, $SECS s"
cpu0=$(awk '{print $14 + $15}' /proc/$PID/stat)
# the @watch answering threads (rv-watch*): time on a CPU and waiting for one
wsched() {
	for c in /proc/$PID/task/*/comm; do
		[[ $(cat "$c" 2>/dev/null) == rv-watch* ]] &&
			cat "${c%/comm}/schedstat"
	done | awk '{r += $1; w += $2} END {printf "%.0f %.0f\n", r, w}'
}
read -r wrun0 wwait0 < <(wsched)
"$BIN" "$MNT/ns" "$READERS" "$RATE" "$SECS" &
bpid=$!
ppid=""
if [ -n "${PERF:-}" ]; then
	# the daemon's profile while the writers run (perf report -i $PERF)
	sleep 1
	perf record -q -g -o "$PERF" -p "$PID" -- sleep "$SECS" 2>/dev/null &
	ppid=$!
fi
sleep 2
echo "# daemon threads with the readers waiting: $(ls /proc/$PID/task | wc -l)"
wait $bpid
rc=$?
[ -n "$ppid" ] && wait "$ppid"
cpu1=$(awk '{print $14 + $15}' /proc/$PID/stat 2>/dev/null || echo "$cpu0")
echo "# daemon CPU: $(((cpu1 - cpu0) * 1000 / $(getconf CLK_TCK))) ms over the run"
read -r wrun1 wwait1 < <(wsched)
echo "# @watch answering threads: $(((wrun1 - wrun0) / 1000000)) ms on a CPU, $(((wwait1 - wwait0) / 1000000)) ms runnable but waiting for one"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
alive=1
kill -0 $PID 2>/dev/null || alive=0
# unmount and let the daemon exit, so a sanitizer build reports leaks too
fusermount3 -u "$MNT" 2>/dev/null && wait "$PID" 2>/dev/null && PID=""
if [ $rc != 0 ] || [ $alive = 0 ] ||
	grep -q 'Sanitizer\|runtime error' "$T/log"; then
	echo "# FAILED (status $rc); the daemon's log:"
	tail -n 60 "$T/log"
	rc=1
fi
exit $rc
