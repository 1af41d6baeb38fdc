#!/bin/bash
# informer.sh — a shell informer over revfs (SPEC §2 "Watch streams"): list
# a namespace at a revision, follow ns/@watch@REV+1, lose the follower,
# resume from the last PROGRESS revision, and end with exactly the state
# that `ls` + `cat` show; the same across a daemon restart; a resume from a
# compacted revision fails clearly (COMPACTED, then ENODATA) and the
# informer relists.
. "$(dirname "$0")/lib.sh"

ST=$T/state # the informer's cache: one file per key, '/' as '%'
LAST=$T/last

# relist: the namespace as of one revision (ns@REV is that snapshot).
relist() {
	local rev f
	rev=$(rev_now)
	rm -rf "$ST"
	mkdir -p "$ST"
	for f in "$MNT/ns@$rev"/*; do
		[ -f "$f" ] && cat "$f" >"$ST/$(basename "$f")"
	done
	echo "$rev" >"$LAST"
}

# apply: events on stdin into the cache; PROGRESS records the revision.
apply() {
	local rev typ path
	while read -r rev typ path; do
		case $typ in
		PUT)
			case $path in */) continue ;; esac
			cat "$MNT/$path@$rev" >"$ST/${path#ns/}.tmp" 2>/dev/null &&
				mv "$ST/${path#ns/}.tmp" "$ST/${path#ns/}"
			;;
		DELETE) rm -f "$ST/${path#ns/}" ;;
		PROGRESS) echo "$rev" >"$LAST" ;;
		COMPACTED) echo "$rev" >"$T/compacted" ;;
		esac
	done
}

# catch_up: follow from the last revision seen until caught up; 0 or the
# stream's failure (ENODATA when the revision was compacted).
catch_up() {
	local from=$(($(cat "$LAST") + 1))
	timeout 20 cat "$MNT/ns/@watch@$from" 2>"$T/cat.err" |
		sed '/PROGRESS/q' | apply
	local rc=${PIPESTATUS[0]}
	# 141: cat's next write after sed quit (SIGPIPE), a success
	[ "$rc" = 0 ] || [ "$rc" = 141 ]
}

# the namespace as ls + cat see it, against the cache
same_state() {
	local f want got
	want=$(cd "$MNT/ns" && for f in *; do
		[ -f "$f" ] && printf '%s=%s\n' "$f" "$(cat "$f")"
	done)
	got=$(cd "$ST" && for f in *; do
		[ -f "$f" ] && printf '%s=%s\n' "$f" "$(cat "$f")"
	done)
	assert_eq "$1" "$want" "$got"
}

writes() { # writes TAG N: puts, overwrites and deletes
	local i
	for ((i = 0; i < $2; i++)); do
		echo "$1-$i" >"$MNT/ns/k$((i % 7))"
		[ $((i % 5)) = 4 ] && rm -f "$MNT/ns/k$((i % 3))"
	done
	return 0
}

rv_start inf -o progress=200ms || exit 1
mkdir "$MNT/ns"
writes a 20
relist
assert_eq "relist at a revision" "$(ls "$MNT/ns" | wc -l)" "$(ls "$ST" | wc -l)"

# follow live, then lose the follower mid-stream
(cat "$MNT/ns/@watch@$(($(cat "$LAST") + 1))" | apply) &
fpid=$!
writes b 30
sleep 0.6
pkill -P $fpid cat 2>/dev/null
kill $fpid 2>/dev/null
wait $fpid 2>/dev/null
seen=$(cat "$LAST")
writes c 30 # missed by the follower
if [ "$seen" -lt "$(rev_now)" ]; then
	ok "the follower stopped at PROGRESS $seen; the store moved on to $(rev_now)"
else
	notok "the follower stopped before the last writes" "$seen"
fi
if catch_up; then
	ok "resumed from PROGRESS $seen + 1"
else
	notok "resumed from PROGRESS $seen + 1" "$(cat "$T/cat.err")"
fi
same_state "the rebuilt state equals ls + cat of the namespace"

# across a daemon restart, while the revision is retained
rv_stop
writes_offline=$(cat "$LAST")
rv_start inf -o progress=200ms || exit 1
writes d 25
if catch_up; then
	ok "after a restart: resumed from PROGRESS $writes_offline + 1"
else
	notok "after a restart: resumed" "$(cat "$T/cat.err")"
fi
same_state "after a restart: the rebuilt state equals ls + cat"

# a resume from a compacted revision fails clearly: relist
rv_stop
rv_start inf -o progress=200ms,auto_compact=40r || exit 1
writes e 60
# auto_compact runs in the background: wait until it passed our revision
for ((i = 0; i < 100; i++)); do
	crev=$(timeout 5 cat "$MNT/ns/@watch@1" 2>/dev/null | grep COMPACTED)
	[ "${crev%% *}" -gt $(($(cat "$LAST") + 1)) ] 2>/dev/null && break
	sleep 0.1
done
rm -f "$T/compacted"
if catch_up; then
	notok "a resume from a compacted revision fails"
else
	if [ -s "$T/compacted" ] && grep -q "No data available" "$T/cat.err"; then
		ok "a resume from a compacted revision: COMPACTED $(cat "$T/compacted"), then ENODATA"
	else
		notok "a resume from a compacted revision: COMPACTED, ENODATA" \
			"$(cat "$T/cat.err")"
	fi
	relist
	writes f 10
	catch_up && ok "relisted at $(($(cat "$LAST"))) and followed again" ||
		notok "relisted and followed again" "$(cat "$T/cat.err")"
fi
same_state "after the relist: the rebuilt state equals ls + cat"
rv_stop
