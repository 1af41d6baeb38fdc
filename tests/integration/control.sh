#!/bin/bash
# control.sh — the control files of the mount root (SPEC §2 "Control",
# issue 5): @revision follows the writes; @compact reads the compaction
# revision and compacts at a written N (too new: EINVAL; at or below the
# compaction revision: ENODATA; garbage: EINVAL); @stats is Prometheus text
# with every metric of the issue, right after known operations; @snapshot,
# copied while writers run, restores (revfsctl snapshot restore) to a store
# with the same content at the snapshot's revision; where the control
# names resolve (only @watch outside the root) and the errors of writing
# them (docs/reference.md §8).
. "$(dirname "$0")/lib.sh"
trap rv_cleanup EXIT INT TERM HUP

REVFSCTL=${REVFSCTL:-$RV_REPO/build/revfsctl}

stat_of() { # the value of one @stats sample (name with labels, exact)
	awk -v m="$1" '$1 == m { print $2 }' "$MNT/@stats"
}

# write_ctl FILE TEXT: write through dd, which reports a failed close
# (a control file takes its write at close; the shell ignores close errors)
write_ctl() {
	printf '%s\n' "$2" | dd of="$1" status=none 2>&1
}

rv_start a || exit 1

# ---- @revision
r0=$(rev_now)
assert_eq "@revision of a new store" 1 "$r0"
for i in 1 2 3 4 5; do echo "v$i" >"$MNT/k$i"; done
assert_eq "@revision: one per write" "$((r0 + 5))" "$(rev_now)"
echo again >"$MNT/k1"
rm "$MNT/k2"
assert_eq "@revision: a put and a delete" "$((r0 + 7))" "$(rev_now)"
assert_false "@revision is read-only" write_ctl "$MNT/@revision" 3

# ---- @compact
assert_eq "@compact of a new store" 0 "$(cat "$MNT/@compact")"
assert_true "compact at 3" write_ctl "$MNT/@compact" 3
assert_eq "@compact reads the new compaction revision" 3 \
	"$(cat "$MNT/@compact")"
assert_eq "compaction takes no revision" "$((r0 + 7))" "$(rev_now)"
out=$(write_ctl "$MNT/@compact" 2)
assert_true "compact below it: ENODATA" grep -q 'No data available' <<<"$out"
out=$(write_ctl "$MNT/@compact" 3)
assert_true "compact at it again: ENODATA" grep -q 'No data available' \
	<<<"$out"
out=$(write_ctl "$MNT/@compact" 1000)
assert_true "compact past the revision: EINVAL" grep -q 'Invalid argument' \
	<<<"$out"
out=$(write_ctl "$MNT/@compact" soon)
assert_true "compact at garbage: EINVAL" grep -q 'Invalid argument' <<<"$out"
assert_eq "refused compactions change nothing" 3 "$(cat "$MNT/@compact")"
assert_false "a compacted revision is gone" cat "$MNT/k1@2"
assert_eq "a retained revision reads" v1 "$(cat "$MNT/k1@4" 2>&1)"

# ---- @stats
s=$(cat "$MNT/@stats")
for m in revfs_revision revfs_compact_revision revfs_keys revfs_db_bytes \
	revfs_quota_bytes revfs_alarm revfs_leases revfs_watchers \
	revfs_commits_total revfs_fsyncs_total revfs_op_duration_seconds \
	revfs_op_errors_total; do
	assert_true "@stats: # TYPE of $m" grep -q "^# TYPE $m " <<<"$s"
done
bad=$(grep -v '^#' <<<"$s" |
	grep -Ev '^[a-z_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? [-+0-9.eE]+$')
assert_eq "@stats: every sample line is NAME{LABELS} VALUE" "" "$bad"
assert_eq "@stats: revision" "$(rev_now)" "$(stat_of revfs_revision)"
assert_eq "@stats: compaction revision" 3 "$(stat_of revfs_compact_revision)"
assert_eq "@stats: keys" 4 "$(stat_of revfs_keys)"
assert_eq "@stats: NOSPACE alarm" 0 "$(stat_of 'revfs_alarm{type="NOSPACE"}')"
assert_eq "@stats: leases" 0 "$(stat_of revfs_leases)"
db=$(stat_of revfs_db_bytes)
assert_true "@stats: db bytes > 0" test "${db%.*}" -gt 0
c0=$(stat_of 'revfs_op_duration_seconds_count{op="txn"}')
for i in 1 2 3 4 5 6 7 8 9 10; do echo "x$i" >"$MNT/s$i"; done
echo 30 >"$MNT/@leases/stat-lease"
c1=$(stat_of 'revfs_op_duration_seconds_count{op="txn"}')
assert_eq "@stats: 10 puts are 10 more txns" "$((c0 + 10))" "$c1"
assert_eq "@stats: keys after 10 puts" 14 "$(stat_of revfs_keys)"
assert_eq "@stats: a granted lease" 1 "$(stat_of revfs_leases)"
inf=$(stat_of 'revfs_op_duration_seconds_bucket{op="txn",le="+Inf"}')
assert_eq "@stats: the +Inf bucket is the count" "$c1" "$inf"
mono=$(grep '^revfs_op_duration_seconds_bucket{op="txn"' <<<"$(cat "$MNT/@stats")" |
	awk '{ if ($2 < last) bad = 1; last = $2 } END { print bad ? "no" : "yes" }')
assert_eq "@stats: histogram buckets are cumulative" yes "$mono"
cm=$(stat_of revfs_commits_total)
assert_true "@stats: commits counted" test "${cm%.*}" -gt 0

# ---- where the control names resolve, and their errors (reference.md §2,
# §8, §10): @watch in every directory, the others in the root only
mkdir -p "$MNT/sub"
assert_succeeds "@watch resolves in a subdirectory" stat "$MNT/sub/@watch"
for c in @revision @compact @stats @snapshot @leases; do
	assert_fails_with "$c outside the root: ENOENT" ENOENT stat \
		"$MNT/sub/$c"
done
for c in @revision @stats @snapshot; do
	assert_fails_with "$c cannot be opened for writing (EROFS)" \
		EROFS open "$MNT/$c" w
done
assert_fails_with "KEY@ifrev=REV cannot be opened for reading (EACCES)" \
	EACCES open "$MNT/k1@ifrev=100" r
assert_eq "@snapshot is readable by the mounting user only (0400)" 400 \
	"$(stat -c %a "$MNT/@snapshot")"
assert_fails_with "@watch is read-only (EROFS)" EROFS open "$MNT/@watch" w
assert_true "mkfifo: only regular files (EPERM)" sh -c \
	"mkfifo '$MNT/fifo' 2>&1 | grep -q 'Operation not permitted'"

# ---- @snapshot while writers run
mkdir -p "$MNT/w"
(
	i=0
	while :; do
		echo "$i" >"$MNT/w/$((i % 50))" || exit
		i=$((i + 1))
	done
) &
writer=$!
RV_BG+=("$writer")
sleep 0.5
cp "$MNT/@snapshot" "$T/backup.revfs"
st=$?
sleep 0.3
kill "$writer"
wait "$writer" 2>/dev/null
assert_eq "cp @snapshot while a writer runs" 0 "$st"
info=$("$REVFSCTL" snapshot status "$T/backup.revfs" 2>&1)
assert_true "the snapshot verifies" grep -q '^revision:' <<<"$info"
srev=$(awk '/^revision:/ { print $2 }' <<<"$info")
assert_true "the snapshot's revision is one the store had" \
	test "$srev" -gt 7 -a "$srev" -le "$(rev_now)"
# the content at the snapshot's revision, read through the mount
expect=$(cd "$MNT/@$srev" && find . -type f | sort |
	while read -r f; do printf '%s %s\n' "$f" "$(cat "$f")"; done)
assert_stop "unmount"
assert_true "revfsctl snapshot restore" \
	"$REVFSCTL" snapshot restore "$T/backup.revfs" "$T/restored.data"
mkdir -p "$T/restored.mnt"
rv_start restored || exit 1
got=$(cd "$MNT" && find . -type f | sort |
	while read -r f; do printf '%s %s\n' "$f" "$(cat "$f")"; done)
assert_eq "the restored store equals the store at the snapshot's revision" \
	"$expect" "$got"
assert_eq "the restored store's revision" "$srev" "$(rev_now)"
assert_eq "the restored store's compaction revision" 3 \
	"$(cat "$MNT/@compact")"
assert_stop "unmount the restored store"
