#!/bin/bash
# etcd_cluster.sh — two revfs mounts over one three-member etcd cluster on
# loopback ports (docs/etcd-backend.md, "Failure behaviour"):
#
#  1. a write through mount A is readable through mount B within 1 s, and
#     `inotifywait -m -r` on B reports it within 1 s (fs/fs_replay.c
#     replays remote changes through the mount; without it the check is a
#     visible TODO failure, never a silent pass);
#  2. kill -9 one member: both mounts keep reading and writing (requests
#     fail over), and B's watch resumes on another member;
#  3. SIGSTOP every member: a write fails ETIMEDOUT or EIO within the
#     documented bound (etcd_timeout=2s here); SIGCONT: it works again;
#  4. kill -9 every member: a write fails EIO within the bound (refused
#     connects are retried for etcd_timeout); restart them (same data):
#     both mounts recover by themselves, B sees A's writes again.
#
# Uses lib.sh (own mktemp -d, trap that always unmounts) and etcd_lib.sh;
# every etcd member is killed by the trap.
set -u
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=etcd_lib.sh
source "$(dirname "$0")/etcd_lib.sh"
ETCD_PIDS_FILE=$T/etcd.pids
: >"$ETCD_PIDS_FILE"
rv_atexit etcd_kill_all
rv_build_helper
TMO_MS=2000

CL=$T/cluster
if ! etcd_start_cluster "$CL" 3; then
	notok "a three-member etcd cluster starts" "$(tail -n 5 "$CL"/m*.log)"
	exit 1
fi
ok "a three-member etcd cluster starts (${ETCD_URLS[*]})"
U0=${ETCD_URLS[0]}
U1=${ETCD_URLS[1]}
U2=${ETCD_URLS[2]}

common="backend=etcd,progress=200ms,etcd_timeout=2s,attr_timeout=60"
rv_start a -o "$common,endpoints=$U0|$U1|$U2" || exit 1
A=$MNT
A_PID=$RV_PID
rv_start b -o "$common,endpoints=$U1|$U2|$U0" || exit 1
B=$MNT
B_PID=$RV_PID

# wait_for WHAT MS CMD...: CMD succeeds within MS; prints the time taken.
wait_for() {
	local what=$1 ms=$2 t0 t
	shift 2
	t0=$(date +%s%N)
	while :; do
		if "$@" >/dev/null 2>&1; then
			t=$((($(date +%s%N) - t0) / 1000000))
			ok "$what (${t} ms)"
			return 0
		fi
		t=$((($(date +%s%N) - t0) / 1000000))
		if [ "$t" -ge "$ms" ]; then
			notok "$what" "not within $ms ms"
			return 1
		fi
		sleep 0.02
	done
}

content_is() { # PATH EXPECTED
	[ "$(cat "$1" 2>/dev/null)" = "$2" ]
}

# ------------------------------------------------ 1. coherence A -> B
mkdir "$A/ns"
echo one >"$A/ns/k"
wait_for "B reads what A wrote" 1000 content_is "$B/ns/k" one
# B has the page and the attributes cached now: a change must reach them
# only the events a write makes: B's own reads (OPEN, ACCESS) do not count
inotifywait -m -r --format '%e %w%f' -e create -e modify -e close_write \
	-e moved_to -e delete -e attrib "$B/ns" >"$T/inotify.out" \
	2>"$T/inotify.err" &
INOTIFY_PID=$!
RV_BG+=($INOTIFY_PID)
for i in $(seq 1 50); do
	grep -q 'Watches established' "$T/inotify.err" 2>/dev/null && break
	sleep 0.1
done
sleep 0.3
echo two >"$A/ns/k"
echo new >"$A/ns/fresh"
seen_inotify() { grep -q "ns/fresh" "$T/inotify.out"; }
t0=$(date +%s%N)
while ! seen_inotify && [ $((($(date +%s%N) - t0) / 1000000)) -lt 1000 ]; do
	sleep 0.05
done
wait_for "B reads A's overwrite of a key it has cached" 1000 \
	content_is "$B/ns/k" two
wait_for "B reads a key A created" 1000 content_is "$B/ns/fresh" new
if seen_inotify; then
	ok "inotifywait on B reports A's write ($(grep -m1 ns/fresh "$T/inotify.out"))"
else
	todo "inotifywait on B reports A's write within 1 s" \
		"fs/ does not replay remote changes through the mount yet (issue 5); B's caches are invalidated, but the kernel raises no inotify event for that"
fi
# B writes, A reads
echo fromb >"$B/ns/b"
wait_for "A reads what B wrote" 1000 content_is "$A/ns/b" fromb

# ------------------------------------------------ 2. one member dies
kill -9 "${ETCD_MPIDS[1]}" # B's first endpoint
sleep 0.5
echo three >"$A/ns/k"
assert_file_content "A reads its write with a member dead" "$A/ns/k" $'three\n'
wait_for "B reads A's write with its first member dead" 6000 \
	content_is "$B/ns/k" three
echo fromb2 >"$B/ns/b2" 2>"$T/err" &&
	ok "B writes with its first member dead" ||
	notok "B writes with its first member dead" "$(cat "$T/err")"
wait_for "A reads B's write with a member dead" 2000 content_is "$A/ns/b2" fromb2
assert_eq "ls through both mounts agrees" "$(ls "$A/ns")" "$(ls "$B/ns")"
etcd_restart_member "$CL" 1
wait_for "the dead member rejoins" 15000 etcd_healthy "$U1"

# ------------------------------------------------ 3. every member hangs
for p in "${ETCD_MPIDS[@]}"; do kill -STOP "$p"; done
t0=$(date +%s%N)
# a write must reach etcd (a lookup may be answered from a cache)
got=$(timeout 60 "$RVT" try put "$A/ns/hung" data 2>&1)
t=$((($(date +%s%N) - t0) / 1000000))
case $got in
*ETIMEDOUT* | *EIO*)
	ok "with every member hung a write fails clearly ($got, $t ms)" ;;
*) notok "with every member hung a write fails clearly" "got: $got after $t ms" ;;
esac
# bound: one request (etcd_timeout) per engine call; a create makes up to 3
if [ "$t" -le $((TMO_MS * 3 + 1000)) ]; then
	ok "... within the bound ($t ms <= 3 x etcd_timeout + 1 s)"
else
	notok "... within the bound" "$t ms > $((TMO_MS * 3 + 1000)) ms"
fi
for p in "${ETCD_MPIDS[@]}"; do kill -CONT "$p"; done
wait_for "after SIGCONT, A works again" 15000 \
	sh -c "echo four >'$A/ns/k' && [ \"\$(cat '$B/ns/k')\" = four ]"

# ------------------------------------------------ 4. every member dies
for p in "${ETCD_MPIDS[@]}"; do kill -9 "$p"; done
sleep 0.3
t0=$(date +%s%N)
got=$(timeout 60 "$RVT" try put "$B/ns/dead" data 2>&1)
t=$((($(date +%s%N) - t0) / 1000000))
case $got in
*EIO* | *ETIMEDOUT*)
	ok "with every member dead a write fails clearly ($got, $t ms)" ;;
*) notok "with every member dead a write fails clearly" "got: $got after $t ms" ;;
esac
# bound: refused connects are retried for etcd_timeout, then fail
if [ "$t" -le $((TMO_MS * 3 + 1000)) ]; then
	ok "... within the bound ($t ms <= 3 x etcd_timeout + 1 s)"
else
	notok "... within the bound" "$t ms > $((TMO_MS * 3 + 1000)) ms"
fi
got=$(timeout 60 "$RVT" try stat "$A/ns/never-seen" 2>&1)
case $got in
*EIO* | *ETIMEDOUT* | *ENOENT*) ok "with every member dead a lookup answers ($got)" ;;
*) notok "with every member dead a lookup answers" "got: $got" ;;
esac
for i in 0 1 2; do etcd_restart_member "$CL" "$i"; done
wait_for "the cluster comes back" 20000 etcd_healthy "$U0"
wait_for "A writes again by itself" 15000 sh -c "echo five >'$A/ns/k'"
wait_for "B sees A's write again (its watch resumed)" 15000 \
	content_is "$B/ns/k" five
echo six >"$B/ns/k" && wait_for "A sees B's write again" 15000 \
	content_is "$A/ns/k" six

kill "$INOTIFY_PID" 2>/dev/null
wait "$INOTIFY_PID" 2>/dev/null
MNT=$A RV_PID=$A_PID RV_LOG=$T/a.log assert_stop "unmount A"
MNT=$B RV_PID=$B_PID RV_LOG=$T/b.log assert_stop "unmount B"
