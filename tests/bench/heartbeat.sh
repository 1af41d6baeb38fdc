#!/bin/bash
# heartbeat.sh — the heartbeat simulation of issue 5: N lease files (default
# 10,000, as 10,000 kubelets) renewed by `touch` every PERIOD s (default 10)
# for DURATION s (default 60), through a real mount.
#
#   tests/bench/heartbeat.sh [N] [PERIOD] [DURATION] [TTL]
#                                 (QUICK=1: 1000 leases, 2 s, 20 s)
#
# Each period's touches are spread over the period in 10 slices (one touch
# process per slice, N/10 files each), as kubelets' timers would be.
# Reports the daemon's CPU over the renewal phase (utime + stime from
# /proc/PID/stat, as % of one core), the growth of the data directory (du
# before/after: renewals write nothing), the revisions taken (none), and
# that every lease is still alive at the end, and the machine's load average
# at the start and the end of the renewals (a FUSE round trip's cost grows
# with the load: quote it with the figures).  Unmounts in a trap.
# The TTL (default 120 s; kubelets use 40) does not change what a renewal
# costs; it only has to outlast the granting phase, which on a loaded
# 2-core machine takes longer than 40 s for 10,000 leases.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
REVFS=${REVFS:-$REPO/build/revfs}
if [ "${QUICK:-0}" = 1 ]; then
	N=${1:-1000} PERIOD=${2:-2} DURATION=${3:-20}
else
	N=${1:-10000} PERIOD=${2:-10} DURATION=${3:-60}
fi
T=$(mktemp -d /tmp/revfs-bench-heartbeat.XXXXXX)
MNT=$T/mnt DATA=$T/data
mkdir -p "$MNT"
PID=""
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

"$REVFS" -f -o "data=$DATA" "$MNT" 2>"$T/log" &
PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { echo "heartbeat: mount failed"; exit 1; }

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
TTL=${4:-$((PERIOD * 12))}

t0=$(date +%s.%N)
for ((i = 0; i < N; i++)); do
	echo "$TTL" >"$MNT/@leases/node-$i"
done
t1=$(date +%s.%N)
echo "granted $N leases (TTL $TTL s) in $(echo "$t1 - $t0" | bc) s"

slices=10
files=()
for ((s = 0; s < slices; s++)); do
	files[s]=$(for ((i = s; i < N; i += slices)); do
		printf '%s ' "$MNT/@leases/node-$i"
	done)
done
sync
du0=$(du -sb "$DATA" | cut -f1)
rev0=$(cat "$MNT/@revision")
load0=$(cut -d' ' -f1-3 /proc/loadavg)
c0=$(cpu_ticks)
start=$(date +%s.%N)
touches=0
for ((p = 0; p < DURATION / PERIOD; p++)); do
	for ((s = 0; s < slices; s++)); do
		slot=$(echo "$start + $p * $PERIOD + $s * $PERIOD / $slices" | bc)
		now=$(date +%s.%N)
		d=$(echo "$slot - $now" | bc)
		(($(echo "$d > 0" | bc))) && sleep "$d"
		# shellcheck disable=SC2086
		touch ${files[s]} || echo "heartbeat: a touch failed"
		touches=$((touches + N / slices))
	done
done
end=$(echo "$start + $DURATION" | bc)
d=$(echo "$end - $(date +%s.%N)" | bc)
(($(echo "$d > 0" | bc))) && sleep "$d"
c1=$(cpu_ticks)
el=$(echo "$(date +%s.%N) - $start" | bc)
load1=$(cut -d' ' -f1-3 /proc/loadavg)
sync
du1=$(du -sb "$DATA" | cut -f1)
rev1=$(cat "$MNT/@revision")
live=$(awk '$1 == "revfs_leases" { print $2 }' "$MNT/@stats")
cpu=$(echo "scale=2; 100 * ($c1 - $c0) / $HZ / $el" | bc)
echo "renewals: $touches touches in $(printf %.1f "$el") s" \
	"($(echo "$touches / $el" | bc)/s)"
echo "daemon CPU: ${cpu}% of one core ($((c1 - c0)) ticks of 1/$HZ s)"
echo "data dir: $du0 -> $du1 bytes ($((du1 - du0)) bytes growth)"
echo "revisions taken by renewals: $((rev1 - rev0))"
echo "live leases at the end: $live of $N"
echo "load average: $load0 at the start, $load1 at the end"
