#!/bin/bash
# leases.sh — MOUNT/@leases/ (SPEC §2 "Leases", issue 5): grant by writing a
# TTL, renew by touch (no revision), cat, rm (revoke: keys gone in one
# revision), ls; 1,000 leases with a key each, half expired while the other
# half is kept alive by touch — every key of an expired lease gone, one
# revision per lease, @stats right; a restart keeps the live leases; a lease
# held by an open descriptor lives while its holder does and expires after
# its TTL once the holder is killed -9.  The kernel caches a lease file's
# name (a renewing touch sends no LOOKUP; counted in a -d mount's request
# log), never past the lease's deadline: stat of a touched lease fails
# ENOENT as soon as it expires, also after a shorter TTL was written.
. "$(dirname "$0")/lib.sh"
trap rv_cleanup EXIT INT TERM HUP

N=${LEASES_N:-1000}
L=/dev/null

stat_of() { # the value of one @stats metric line
	awk -v m="$1" '$1 == m { print $2 }' "$MNT/@stats"
}

rv_start a || exit 1
L=$MNT/@leases

# ---- grant, cat, ls, attach, renew, set TTL, revoke
echo 40 >"$L/node-1"
assert_true "ls @leases shows a granted lease" grep -qx node-1 <(ls "$L")
assert_eq "cat: ttl" "ttl 40" "$(grep '^ttl ' "$L/node-1")"
rem=$(awk '$1 == "remaining" { print int($2) }' "$L/node-1")
assert_true "cat: remaining in (38, 40]" test "$rem" -ge 38 -a "$rem" -le 40
mkdir -p "$MNT/nodes"
echo up >"$MNT/nodes/n1"
echo up >"$MNT/nodes/n2"
setfattr -n user.revfs.lease -v node-1 "$MNT/nodes/n1"
setfattr -n user.revfs.lease -v node-1 "$MNT/nodes/n2"
assert_eq "getfattr shows the lease name" node-1 "$(xa "$MNT/nodes/n1" lease)"
assert_eq "cat: attached keys, as paths" $'nodes/n1\nnodes/n2' \
	"$(sed -n '/^keys /,$p' "$L/node-1" | tail -n +2)"
r0=$(rev_now)
touch "$L/node-1"
assert_eq "touch renews without a revision" "$r0" "$(rev_now)"
echo 100 >"$L/node-1"
assert_eq "writing a TTL again sets it" "ttl 100" "$(grep '^ttl ' "$L/node-1")"
assert_eq "setting a TTL takes no revision" "$r0" "$(rev_now)"
echo 2 >"$L/short"
for i in 1 2 3; do sleep 1; touch "$L/short"; done
assert_true "touch keeps a 2 s lease alive for 3 s" test -e "$L/short"
sleep 3.5
assert_false "an untouched 2 s lease is gone after 3.5 s" test -e "$L/short"
assert_false "the expired lease is not listed" grep -qx short <(ls "$L")

# ms_until_gone FILE T0_NS: poll stat FILE (up to 5 s) until it fails; the
# milliseconds from T0_NS (date +%s%N) until then
ms_until_gone() {
	local i
	for ((i = 0; i < 250; i++)); do
		stat "$1" >/dev/null 2>&1 || break
		sleep 0.02
	done
	echo $((($(date +%s%N) - $2) / 1000000))
}

# ---- a cached name never outlives the lease: stat fails at its expiry
# (the name's entry timeout is the remaining TTL at the lookup and the
# attributes are never cached, so stat asks the engine; the bound checked is
# TTL + 1 s for a loaded machine, the figure printed is what was seen)
echo 3 >"$L/brief"
for i in 1 2 3; do sleep 0.3; touch "$L/brief"; done
tr=$(date +%s%N)
sleep 1.5
assert_true "a touched lease lives on within its TTL" stat "$L/brief"
gone_ms=$(ms_until_gone "$L/brief" "$tr")
echo "# stat of the touched 3 s lease failed ${gone_ms} ms after its last renewal"
assert_true "stat fails within TTL + 1 s of the last renewal" \
	test "$gone_ms" -le 4000
assert_true "... with ENOENT" \
	grep -q 'No such file' <(stat "$L/brief" 2>&1)
assert_false "... and it is not listed" grep -qx brief <(ls "$L")
assert_false "touch does not revive an expired lease" touch "$L/brief"
sleep 0.2 # the kernel releases touch's descriptor (its hold) after close
assert_false "... nor makes it visible" test -e "$L/brief"
echo 100 >"$L/shrink"
touch "$L/shrink"
touch "$L/shrink"
echo 1 >"$L/shrink"
gone_ms=$(ms_until_gone "$L/shrink" "$(date +%s%N)")
echo "# a 100 s lease set to 1 s: stat failed ${gone_ms} ms after the write"
assert_true "a shortened TTL: stat fails within it + 1 s" \
	test "$gone_ms" -le 2000
echo 5 >"$L/shrink"
assert_eq "the expired name can be granted again" "ttl 5" \
	"$(grep '^ttl ' "$L/shrink")"
rm "$L/shrink"

rm "$L/node-1"
assert_eq "rm revokes: its keys go in one revision" "$((r0 + 1))" "$(rev_now)"
assert_false "rm revokes: key 1 gone" test -e "$MNT/nodes/n1"
assert_false "rm revokes: key 2 gone" test -e "$MNT/nodes/n2"
assert_false "rm revokes: the lease is gone" test -e "$L/node-1"
assert_false "rm of a missing lease fails" rm "$L/node-1"
assert_false "a TTL that is not a number is refused" \
	dd of="$L/bad" status=none <<<"soon"
assert_false "a refused grant leaves no lease" test -e "$L/bad"
assert_false "echo of a bad TTL fails in the shell itself (at write)" \
	sh -c "echo soon >'$L/bad2'" 2>/dev/null
assert_false "... and leaves no lease" test -e "$L/bad2"
assert_false "names starting with % are reserved" \
	dd of="$L/%x" status=none <<<"10"

# ---- 1,000 leases with a key each; half expire, half kept by touch
mkdir -p "$MNT/k"
k0=$(stat_of revfs_keys)
t0=$(date +%s.%N)
for ((i = 0; i < N; i++)); do
	echo 30 >"$L/l$i"
	echo "v$i" >"$MNT/k/k$i"
done
(cd "$MNT/k" && for ((i = 0; i < N; i++)); do
	setfattr -n user.revfs.lease -v "l$i" "k$i" || exit 1
done)
t1=$(date +%s.%N)
echo "# $N leases with a key each in $(echo "$t1 - $t0" | bc) s"
assert_eq "ls @leases lists $N leases" "$N" "$(ls "$L" | grep -c '^l[0-9]')"
assert_eq "@stats revfs_leases" "$N" "$(stat_of revfs_leases)"
even=() odd=()
for ((i = 0; i < N; i++)); do
	if ((i % 2)); then odd+=("$L/l$i"); else even+=("$L/l$i"); fi
done
r0=$(rev_now)
# the odd half gets a 3 s TTL and no renewal; the even half 30 s and a
# touch every half second (30 s: margin for a heavily loaded machine)
for f in "${even[@]}"; do echo 30 >"$f"; done
for f in "${odd[@]}"; do echo 3 >"$f"; done
for ((s = 0; s < 40; s++)); do
	touch "${even[@]}"
	[ "$(stat_of revfs_leases)" -le $((N / 2)) ] && break
	sleep 0.5
done
touch "${even[@]}"
assert_eq "the odd half expired, the touched half lives" "$((N / 2))" \
	"$(stat_of revfs_leases)"
assert_eq "one revision per expired lease" "$((r0 + N / 2))" "$(rev_now)"
gone=0 kept=0
for ((i = 0; i < N; i++)); do
	if [ -e "$MNT/k/k$i" ]; then
		((i % 2)) || kept=$((kept + 1))
	else
		((i % 2)) && gone=$((gone + 1))
	fi
done
assert_eq "every key of an expired lease is gone" "$((N / 2))" "$gone"
assert_eq "every key of a live lease is there" "$((N / 2))" "$kept"
assert_eq "@stats revfs_keys" "$((k0 + N / 2))" "$(stat_of revfs_keys)"
hist=$(cat "$MNT/k/k1@history" 2>/dev/null | tail -n 1)
assert_true "the expired key's history ends with its delete" \
	grep -qi delete <<<"$hist"

# ---- a restart keeps the live leases (with their keys)
for f in "${even[@]}"; do echo 60 >"$f"; done
assert_stop "unmount"
rv_start a || exit 1
assert_eq "after a restart: the live leases" "$((N / 2))" \
	"$(ls "$L" | grep -c '^l[0-9]')"
assert_eq "after a restart: their keys" "$((N / 2))" "$(ls "$MNT/k" | wc -l)"
assert_eq "after a restart: a lease keeps its TTL" "ttl 60" \
	"$(grep '^ttl ' "$L/l0")"

# ---- a lease held by an open descriptor
echo 2 >"$L/lock"
echo held >"$MNT/lockkey"
setfattr -n user.revfs.lease -v lock "$MNT/lockkey"
bash -c 'exec 3>"$1"; exec sleep 600' holder "$L/lock" &
holder=$!
RV_BG+=("$holder")
sleep 5
assert_true "held by an open fd: alive after 2.5 TTLs" test -e "$L/lock"
assert_true "held by an open fd: O_TRUNC did not reset it" \
	grep -qx 'ttl 2' "$L/lock"
assert_true "held: its key is there" test -e "$MNT/lockkey"
kill -9 "$holder"
wait "$holder" 2>/dev/null
tk=$(date +%s%N)
sleep 1
assert_true "holder killed -9: the lease outlives it by up to its TTL" \
	test -e "$L/lock"
for ((i = 0; i < 100; i++)); do
	[ -e "$L/lock" ] || break
	sleep 0.1
done
gone_ms=$((($(date +%s%N) - tk) / 1000000))
echo "# the killed holder's lease went ${gone_ms} ms after the kill (TTL 2 s)"
assert_true "holder killed -9: the lease is gone within TTL + 1 s" \
	test "$gone_ms" -le 3000
assert_false "holder killed -9: its key is gone" test -e "$MNT/lockkey"
assert_stop "unmount"

# ---- what a renewal costs in requests (-d logs every request)
rv_start d -d || exit 1
L=$MNT/@leases
echo 100 >"$L/hb"
touch "$L/hb"
n0=$(wc -l <"$RV_LOG")
for i in $(seq 20); do touch "$L/hb"; done
sleep 0.2
req=$(tail -n +"$((n0 + 1))" "$RV_LOG" | grep -o 'opcode: [A-Z_]*' |
	sort | uniq -c | awk '{ printf "%s %s, ", $1, $3 }')
echo "# 20 touches of a lease file: $req"
assert_eq "20 touches of a cached lease file: no LOOKUP" 0 \
	"$(tail -n +"$((n0 + 1))" "$RV_LOG" | grep -c 'opcode: LOOKUP')"
assert_eq "... and 20 SETATTRs (the keepalives)" 20 \
	"$(tail -n +"$((n0 + 1))" "$RV_LOG" | grep -c 'opcode: SETATTR')"
assert_eq "... and no FLUSH (the TTL is applied at write)" 0 \
	"$(tail -n +"$((n0 + 1))" "$RV_LOG" | grep -c 'opcode: FLUSH')"
echo 1 >"$L/hb"
n0=$(wc -l <"$RV_LOG")
sleep 0.3 # the notifier thread's invalidation
stat "$L/hb" >/dev/null
assert_true "a TTL written drops the cached name (the next stat looks up)" \
	grep -q 'opcode: LOOKUP' <(tail -n +"$((n0 + 1))" "$RV_LOG")
assert_stop "unmount"
