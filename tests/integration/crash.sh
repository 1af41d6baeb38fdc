#!/bin/bash
# crash.sh — kill -9 of the daemon under 8 concurrent writers (SPEC §2
# "Reading and writing": close returning 0 means committed; docs/reference.md
# §3: durable with sync=always).  Each writer (rvt writer) records a key only
# after its close() returned 0.  After a remount every recorded key must be
# there with its content, and the revisions must be consistent: one distinct
# revision per put, increasing in each writer's order, none above the store's
# revision, and new writes above all of them.
. "$(dirname "$0")/lib.sh"

W=8
rv_start crash || exit 1
C=$MNT/c
mkdir "$C"
for ((i = 1; i <= W; i++)); do
	rv_bg "$RVT" writer "$C" "$i" "$T/rec$i" 2>"$T/writer$i.err"
done
sleep 3
kill -9 "$RV_PID"
if rv_wait_exit "$RV_PID" 10; then
	ok "kill -9 ends the daemon under writers"
else
	# a daemon thread waits in the kernel for a request on its own mount
	# that no thread is left to answer: only an abort ends it
	notok "kill -9 ends the daemon under writers" \
		"the process stays, its threads wait in the kernel:" \
		"$(rv_stuck "$RV_PID")"
	rv_abort "$MNT"
	rv_wait_exit "$RV_PID" 10
fi
# the writers end at their first failure (ENOTCONN once the daemon is gone)
for p in "${RV_BG[@]}"; do
	for ((j = 0; j < 100; j++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
rv_is_mounted "$MNT" &&
	{ fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"; }

total=0
for ((i = 1; i <= W; i++)); do
	touch "$T/rec$i"
	total=$((total + $(wc -l <"$T/rec$i")))
done
assert_true "the 8 writers committed something before the kill ($total)" \
	test "$total" -ge 80

rv_start crash || exit 1
C=$MNT/c
missing=""
wrong=""
for ((i = 1; i <= W; i++)); do
	while read -r n; do
		f=$C/w$i-$n
		if [ ! -e "$f" ]; then
			missing="$missing w$i-$n"
		else
			# the value has no newline: read fails at EOF but sets got
			IFS= read -r got <"$f"
			[ "$got" = "c$i-$n" ] || wrong="$wrong w$i-$n"
		fi
	done <"$T/rec$i"
done
assert_eq "every acknowledged write is there after kill -9" "" \
	"$(head -c 400 <<<"$missing")"
assert_eq "every acknowledged write has its content" "" \
	"$(head -c 400 <<<"$wrong")"

# An unacknowledged put may or may not have landed, but a writer is
# sequential: at most the one after its last recorded key.
extra=""
for ((i = 1; i <= W; i++)); do
	last=$(tail -n1 "$T/rec$i")
	for f in "$C"/w$i-*; do
		[ -e "$f" ] || continue
		n=${f##*-}
		[ "$n" -le $((${last:-0} + 1)) ] || extra="$extra ${f##*/}"
	done
done
assert_eq "no key beyond each writer's last acknowledged one + 1" "" "$extra"

# Revisions: "FILE CREATE MOD VERSION" for every key, in one getfattr run.
(cd "$C" && getfattr --absolute-names -d -m '^user\.revfs\.' -- w* 2>&1) |
	awk '/^# file: / { f = $3 }
	     /^user.revfs.create_revision=/ { split($0, a, "\""); c[f] = a[2] }
	     /^user.revfs.mod_revision=/ { split($0, a, "\""); m[f] = a[2] }
	     /^user.revfs.version=/ { split($0, a, "\""); v[f] = a[2] }
	     END { for (f in m) print f, c[f], m[f], v[f] }' |
	sort >"$T/meta"
nkeys=$(ls "$C" | wc -l)
assert_eq "getfattr read the revisions of every key" "$nkeys" \
	"$(wc -l <"$T/meta")"
assert_eq "every key is at version 1 with create = mod revision" "" \
	"$(awk '$2 != $3 || $4 != 1' "$T/meta" | head -n 5)"
assert_eq "no two puts share a revision" "" \
	"$(awk '{ print $3 }' "$T/meta" | sort | uniq -d | head -n 5)"
bad=""
for ((i = 1; i <= W; i++)); do
	# in writer order (by n), mod revisions must increase
	if ! sed -n "s/^w$i-\([0-9]*\) [0-9]* \([0-9]*\) .*/\1 \2/p" "$T/meta" |
		sort -n | awk 'NR > 1 && $2 <= prev { exit 1 } { prev = $2 }'; then
		bad="$bad w$i"
	fi
done
assert_eq "each writer's puts have increasing revisions" "" "$bad"
max=$(awk '{ print $3 }' "$T/meta" | sort -n | tail -n1)
if have_rev; then
	assert_true "@revision ($(rev_now)) is at least the newest put ($max)" \
		test "$(rev_now)" -ge "$max"
fi
echo after >"$C/after"
assert_true "a new write after the restart gets a revision above all" \
	test "$(modrev "$C/after")" -gt "$max"
assert_true "the daemon's store was not corrupted (new write reads back)" \
	grep -qx after "$C/after"

# ------------------------------------------------ SIGTERM under writers
# The same with a clean stop: SIGTERM while 8 writers run.  The daemon
# must exit 0 on its own, and every acknowledged write must be there.
C2=$MNT/c2
mkdir "$C2"
RV_BG=()
for ((i = 1; i <= W; i++)); do
	rv_bg "$RVT" writer "$C2" "$i" "$T/term$i" 2>"$T/twriter$i.err"
done
sleep 2
kill -TERM "$RV_PID"
if rv_wait_exit "$RV_PID" 20; then
	ok "SIGTERM under 8 writers: the daemon exits"
	assert_eq "... with status 0" 0 "$RV_STATUS"
else
	notok "SIGTERM under 8 writers: the daemon exits" "$(rv_stuck "$RV_PID")"
	kill -9 "$RV_PID"
	rv_wait_exit "$RV_PID" 5 || {
		rv_abort "$MNT"
		rv_wait_exit "$RV_PID" 10
	}
fi
for p in "${RV_BG[@]}"; do
	for ((j = 0; j < 100; j++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
rv_is_mounted "$MNT" && { fusermount3 -u "$MNT" || fusermount3 -uz "$MNT"; }
rv_start crash || exit 1
total=0
missing=""
for ((i = 1; i <= W; i++)); do
	touch "$T/term$i"
	total=$((total + $(wc -l <"$T/term$i")))
	while read -r n; do
		IFS= read -r got <"$MNT/c2/w$i-$n"
		[ "$got" = "c$i-$n" ] || missing="$missing w$i-$n"
	done <"$T/term$i"
done
assert_true "the writers committed something before SIGTERM ($total)" \
	test "$total" -ge 40
assert_eq "after SIGTERM every acknowledged write is there" "" \
	"$(head -c 400 <<<"$missing")"
