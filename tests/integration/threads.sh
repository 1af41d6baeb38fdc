#!/bin/bash
# threads.sh — the daemon's FUSE worker pool (docs/BENCHMARKS.md, fs_write;
# daemon/main.c): workers are kept, not started per request, and there are
# enough of them for many writers whose closes wait for a group commit
# while others create files.
#
# A libfuse ABI mix-up once gave every request a new thread and a new
# /dev/fuse clone (the worker exited after one reply) and capped the pool
# at 10 threads.  So: after a burst of requests every thread that existed
# before it still exists, and 16 concurrent writers (more than 10) all
# finish, with every file whole.  And a close's worker is not parked while
# the group commit's fsync runs (issue 4): with a single worker (-s),
# concurrent closes still share fsyncs.
. "$(dirname "$0")/lib.sh"

tids() {
	ls "/proc/$RV_PID/task" | sort -n
}

rv_start threads || exit 1
mkdir "$MNT/t"
echo x >"$MNT/t/warm"
before=$(tids)
# 300 negative lookups: 300 requests, each served by some worker
for ((i = 0; i < 300; i++)); do
	stat "$MNT/t/none$i" 2>/dev/null
done
after=$(tids)
gone=$(comm -23 <(echo "$before") <(echo "$after") | tr '\n' ' ')
assert_eq "no daemon thread exits after serving a request" "" "$gone"
new=$(comm -13 <(echo "$before") <(echo "$after") | wc -l)
assert_true "300 sequential requests start at most a few threads ($new)" \
	test "$new" -le 4

# writers DIR P N WHAT: 16 concurrent writers each write N files DIR/P<w>-<i>
# (content: their name), then every file is checked.
writers() {
	local dir=$1 pfx=$2 n=$3 what=$4 w i p failed=0 bad="" got
	for ((w = 0; w < 16; w++)); do
		rv_bg bash -c '
			for ((i = 0; i < '$n'; i++)); do
				printf "%s" "'$pfx$w'-$i" >"$0/'$pfx$w'-$i" || exit 1
			done' "$dir"
	done
	for p in "${RV_BG[@]}"; do
		wait "$p" || failed=$((failed + 1))
	done
	RV_BG=()
	assert_eq "$what: 16 concurrent writers all succeed" 0 "$failed"
	for ((w = 0; w < 16; w++)); do
		for ((i = 0; i < n; i++)); do
			IFS= read -r got <"$dir/$pfx$w-$i"
			[ "$got" = "$pfx$w-$i" ] || bad="$bad $pfx$w-$i"
		done
	done
	assert_eq "$what: every file has its content" "" \
		"$(head -c 400 <<<"$bad")"
}

# 16 writers, 40 files each: closes wait for group commits meanwhile
writers "$MNT/t" w 40 "64 workers"
n=$(tids | wc -l)
assert_true "the pool stays bounded ($n threads, at most 64 workers)" \
	test "$n" -le 80
gone=$(comm -23 <(echo "$after") <(tids) | tr '\n' ' ')
assert_eq "no thread exits after the writers are done" "" "$gone"
# A close's commit is answered asynchronously (issue 4): a rename of the
# file while that commit is queued must not leave it under the old name.
mkdir "$MNT/cr"
assert_succeeds "40 files renamed while their close commits" \
	closerename "$MNT/cr" 40
names=$(ls "$MNT/cr")
assert_eq "every renamed file is under its new name only" \
	"0 40" "$(grep -c '^c' <<<"$names") $(grep -c '^r' <<<"$names")"
bad=""
for ((i = 0; i < 40; i++)); do
	got=$(cat "$MNT/cr/r$i" 2>/dev/null)
	[ "$got" = "$MNT/cr/r$i" ] || bad="$bad r$i"
done
assert_eq "every renamed file has its content" "" "$(head -c 400 <<<"$bad")"

assert_stop "clean unmount"

# A close does not park its worker through the group commit's fsync: the
# commit is queued and the engine's completion answers the FLUSH.  Proof:
# with ONE worker (-s), concurrent writers' closes still share fsyncs.  Were
# the worker to wait for each commit, every fsync would carry exactly one
# file.
rv_start single -o sync=always -s || exit 1
mkdir "$MNT/s"
r0=$(cat "$MNT/@revision")
f0=$(awk '$1 == "revfs_fsyncs_total" {print $2}' "$MNT/@stats")
writers "$MNT/s" s 25 "single worker"
f1=$(awk '$1 == "revfs_fsyncs_total" {print $2}' "$MNT/@stats")
revs=$(($(cat "$MNT/@revision") - r0))
fsyncs=$((f1 - f0))
assert_eq "single worker: 400 files, one revision each" 400 "$revs"
assert_true "single worker: closes share fsyncs ($revs revisions in $fsyncs fsyncs)" \
	test $((fsyncs * 5)) -le $((revs * 4))
assert_stop "single worker: clean unmount"
