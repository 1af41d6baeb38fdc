#!/bin/bash
# heartbeat.sh — node heartbeats as leases, the way kubelets use them, and a
# controller that notices a dead node.
#
#   examples/heartbeat.sh MOUNTPOINT [NODES] [RENEW] [TTL] [SECONDS] [KILL]
#
# Each of NODES "kubelets" (default 3) grants MOUNT/@leases/node-I with a
# TTL of TTL seconds (default 40), writes MOUNT/nodes/node-I attached to
# that lease (setfattr user.revfs.lease) and then renews with one `touch`
# every RENEW seconds (default 10) — a renewal takes no revision and writes
# nothing to disk.  After SECONDS/3 the kubelet of node KILL (default 0) is
# killed: it stops renewing, its lease expires after TTL and revfs deletes
# its node key in one revision.  The controller lists MOUNT/nodes every
# RENEW seconds and prints "dead: node-I" for a node whose key vanished.
# Runs SECONDS (default 120) then cleans up: revokes the leases it granted.
set -u
MNT=${1:?usage: heartbeat.sh MOUNTPOINT [NODES] [RENEW] [TTL] [SECONDS] [KILL]}
NODES=${2:-3}
RENEW=${3:-10}
TTL=${4:-40}
SECONDS_TOTAL=${5:-120}
KILL=${6:-0}

mkdir -p "$MNT/nodes"
kubelets=()
cleanup() {
	kill "${kubelets[@]}" 2>/dev/null
	wait 2>/dev/null
	for ((i = 0; i < NODES; i++)); do
		rm -f "$MNT/@leases/node-$i" 2>/dev/null
	done
}
trap cleanup EXIT

kubelet() { # node index
	local lease="$MNT/@leases/node-$1" key="$MNT/nodes/node-$1"
	echo "$TTL" >"$lease" || exit 1
	echo "Ready $(date -u +%FT%TZ)" >"$key"
	setfattr -n user.revfs.lease -v "node-$1" "$key" || exit 1
	while sleep "$RENEW"; do
		touch "$lease" || exit 1
	done
}

for ((i = 0; i < NODES; i++)); do
	kubelet "$i" &
	kubelets+=($!)
done
sleep 1
echo "started $NODES nodes (renew every $RENEW s, TTL $TTL s)"

# past F: whether the fraction F of SECONDS_TOTAL has gone by (awk: the
# times are fractional)
start=$(date +%s.%N)
past() {
	awk -v s="$start" -v n="$(date +%s.%N)" -v t="$SECONDS_TOTAL" \
		-v f="$1" 'BEGIN { exit !(n - s >= t * f) }'
}

known=$(ls "$MNT/nodes")
killed=0
while :; do
	past 1 && break
	if ((!killed)) && past 0.3333; then
		kill "${kubelets[$KILL]}"
		echo "killed the kubelet of node-$KILL at $(date -u +%T)"
		killed=1
	fi
	cur=$(ls "$MNT/nodes")
	for n in $known; do
		grep -qx "$n" <<<"$cur" || echo "dead: $n (lease expired at $(date -u +%T), revision $(cat "$MNT/@revision"))"
	done
	known=$cur
	sleep "$RENEW"
done
echo "alive: $(ls "$MNT/nodes" | tr '\n' ' ')"
