#!/bin/bash
# run.sh — run every example against a temporary mount, in a test mode
# (short periods, small sizes), and check what each prints.  What `make
# test`'s "examples" suite runs.  Output: "ok - ..." / "not ok - ..." lines
# and a final "examples: N passed, N failed".  Each mount is a fresh store
# in its own mktemp -d directory and is unmounted by the trap of
# tests/integration/lib.sh even when a check fails.
if [ -z "${EX_INNER:-}" ]; then
	# lib.sh ends with "# examples: N passed, N failed"; the suite runner
	# reads the line without the "# "
	EX_INNER=1 "$0" "$@" 2>&1 |
		sed -u 's/^# run: \([0-9]* passed, [0-9]* failed\)$/examples: \1/'
	exit "${PIPESTATUS[0]}"
fi
EX=$(cd "$(dirname "$0")" && pwd)

. "$EX/../tests/integration/lib.sh"
trap rv_cleanup EXIT INT TERM HUP

# tree_of DIR: "path content" per file, sorted
tree_of() {
	(cd "$1" && find . -type f | sort | while read -r f; do
		printf '%s %s\n' "$f" "$(cat "$f")"
	done)
}

rv_start ex || exit 1

# ---- heartbeat: 3 nodes, renew 0.5 s, TTL 2 s, 8 s, node-0's kubelet dies
out=$(timeout 60 "$EX/heartbeat.sh" "$MNT" 3 0.5 2 8 0 2>&1)
assert_true "heartbeat: the controller sees node-0 die" \
	grep -q '^dead: node-0 ' <<<"$out"
assert_false "heartbeat: no live node reported dead" \
	grep -q '^dead: node-[12] ' <<<"$out"
assert_eq "heartbeat: the live nodes" "alive: node-1 node-2 " \
	"$(grep '^alive:' <<<"$out")"

# ---- cas: 4 concurrent incrementers, 15 each: no increment lost
cas=()
for i in 1 2 3 4; do
	"$EX/cas.sh" "$MNT" counter 15 >"$T/cas.$i" 2>&1 &
	cas+=($!)
done
wait "${cas[@]}" # not a bare wait: the daemon is this shell's child too
assert_eq "cas: 4 x 15 concurrent increments" 60 "$(cat "$MNT/counter")"
retries=$(cat "$T"/cas.* | awk '{ s += substr($3, 2) } END { print s }')
echo "# cas: $retries retries on conflict"

# ---- timetravel
mkdir -p "$MNT/tt"
echo 1 >"$MNT/tt/a"
echo 1 >"$MNT/tt/b"
echo 1 >"$MNT/tt/c"
r=$(rev_now)
echo 2 >"$MNT/tt/a"
rm "$MNT/tt/b"
echo 1 >"$MNT/tt/d"
out=$("$EX/timetravel.sh" "$MNT" tt "$r" | grep -v '^#' | sort)
assert_eq "timetravel: the changes since $r" \
	$'added tt/d\nchanged tt/a\ndeleted tt/b' "$out"

# ---- paginate: 250 keys, pages of 100, while a writer adds more
mkdir -p "$MNT/pg"
for ((i = 0; i < 250; i++)); do echo "$i" >"$MNT/pg/k$i"; done
(for ((i = 0; i < 200; i++)); do echo x >"$MNT/pg/new$i"; done) &
w=$!
out=$("$EX/paginate.sh" "$MNT" pg 100)
wait "$w"
pr=$(sed -n 's/^total [0-9]* entries at revision //p' <<<"$out")
pn=$(sed -n 's/^total \([0-9]*\) entries.*/\1/p' <<<"$out")
assert_eq "paginate: every entry of its revision once" \
	"$(ls "$MNT/pg@$pr" | wc -l)" "$pn"
assert_true "paginate: 3 pages or more" test "$(grep -c '^page ' <<<"$out")" -ge 3

# ---- backup while a writer runs
(for ((i = 0; i < 300; i++)); do echo "$i" >"$MNT/pg/k$((i % 50))"; done) &
w=$!
out=$("$EX/backup.sh" "$MNT" "$T/backup.revfs" 2>&1)
wait "$w"
assert_true "backup: restored store equals the store at its revision" \
	grep -q '^backup ok: revision' <<<"$out"

# ---- informer: list, watch, resume, relist after compaction
mkdir -p "$MNT/inf"
for i in 1 2 3; do echo "v$i" >"$MNT/inf/k$i"; done
"$EX/informer.sh" "$MNT" inf "$T/cache" 6 >"$T/inf1" 2>&1 &
inf=$!
sleep 2
echo changed >"$MNT/inf/k1"
rm "$MNT/inf/k2"
mkdir -p "$MNT/inf/sub"
echo deep >"$MNT/inf/sub/x"
wait "$inf"
assert_true "informer: listed" grep -q '^listed at' "$T/inf1"
assert_eq "informer: its cache equals the namespace" \
	"$(tree_of "$MNT/inf")" "$(tree_of "$T/cache")"
echo later >"$MNT/inf/k4"
rm "$MNT/inf/k3"
"$EX/informer.sh" "$MNT" inf "$T/cache" 4 >"$T/inf2" 2>&1
assert_true "informer: resumed without a relist" grep -q '^resumed from' \
	"$T/inf2"
assert_false "informer: (no relist)" grep -q '^listed at' "$T/inf2"
assert_eq "informer: caught up after the resume" \
	"$(tree_of "$MNT/inf")" "$(tree_of "$T/cache")"
echo after-compact >"$MNT/inf/k5"
for i in 1 2 3; do echo "x$i" >"$MNT/other$i"; done
printf '%s\n' "$(rev_now)" | dd of="$MNT/@compact" status=none
"$EX/informer.sh" "$MNT" inf "$T/cache" 4 >"$T/inf3" 2>&1
assert_true "informer: a compacted resume relists" \
	grep -q '^relist: compacted' "$T/inf3"
assert_eq "informer: in sync after the relist" \
	"$(tree_of "$MNT/inf")" "$(tree_of "$T/cache")"

# ---- inotify: changes through the mount, and a lease expiry
mkdir -p "$MNT/ino"
"$EX/inotify.sh" "$MNT" ino 10 >"$T/ino" 2>&1 &
ino=$!
# Its watches take a moment to set (longer under load): touch a probe
# until its CREATE shows.
for i in $(seq 50); do
	touch "$MNT/ino/probe"
	grep -qF "CREATE $MNT/ino/probe" "$T/ino" 2>/dev/null && break
	sleep 0.1
done
rm -f "$MNT/ino/probe"
echo a >"$MNT/ino/a"
echo b >>"$MNT/ino/a"
mv "$MNT/ino/a" "$MNT/ino/b"
rm "$MNT/ino/b"
echo 1 >"$MNT/@leases/ino-lease"
echo v >"$MNT/ino/leased"
setfattr -n user.revfs.lease -v ino-lease "$MNT/ino/leased"
wait "$ino"
for ev in "CREATE $MNT/ino/a" "MODIFY $MNT/ino/a" "MOVED_FROM $MNT/ino/a" \
	"MOVED_TO $MNT/ino/b" "DELETE $MNT/ino/b"; do
	assert_true "inotify: $ev" grep -qF "$ev" "$T/ino"
done
assert_true "inotify: DELETE of a key removed by its lease's expiry" \
	grep -qF "DELETE $MNT/ino/leased" "$T/ino"

assert_stop "unmount"

# ---- demo: the README's first command mounts its own store and leaves it
DM=$T/demo.mnt
RV_MOUNTS+=("$DM") # the trap unmounts it if a check below fails
out=$(REVFS=$REVFS timeout 60 "$EX/demo.sh" "$DM" 2>&1)
assert_eq "demo: exits 0" 0 $?
assert_true "demo: says where it mounted" \
	grep -qF "revfs is mounted at $DM" <<<"$out"
ddata=$(sed -n 's/.*(store: \(.*\))\.$/\1/p' <<<"$out")
[ -n "$ddata" ] && rv_atexit "rm -rf '$ddata'"
assert_file_content "demo: the current value" "$DM/registry/pods/web-1" \
	$'image: nginx:1.27\n'
assert_eq "demo: two versions in web-1@history" 2 \
	"$(wc -l <"$DM/registry/pods/web-1@history")"
r1=$(sed -n 's|.*cat config/app@\([0-9]*\) .*|\1|p' <<<"$out")
assert_file_content "demo: the tour's config/app@$r1 is the old value" \
	"$DM/config/app@$r1" $'debug=false\n'
assert_true "demo: fusermount3 -u, as it says, unmounts it" \
	fusermount3 -u "$DM"
