#!/bin/bash
# inotify.sh — `inotifywait -m -r` on a namespace sees every change (SPEC §2
# "inotify"): create, modify, delete and mv made through the mount (the
# kernel reports them), a key deleted by a lease expiring (revfs replays it
# through its own mount), and, with the etcd backend, puts and deletes made
# by another etcd client (replayed as IN_CREATE, IN_MODIFY, IN_DELETE).  A
# replay takes no revision.  docs/inotify-replay.md explains the mechanism.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/etcd_lib.sh"

EV=$T/events

# iw_start DIR: inotifywait -m -r on DIR into $EV, once its watches are set.
iw_start() {
	: >"$EV"
	inotifywait -m -r -q --format '%e %w%f' "$1" >"$EV" \
		2>"$T/iw.err" &
	IW=$!
	RV_BG+=($IW)
	sleep 0.5 # -q hides "Watches established"; give it the moment
}

# iw_expect WHAT EVENT PATH: the event (e.g. CREATE) for PATH within 5 s.
iw_expect() {
	local what=$1 ev=$2 path=$3 i
	for ((i = 0; i < 50; i++)); do
		if grep -Eq "^([A-Z_]+,)*$ev(,[A-Z_]+)* $path\$" "$EV"; then
			ok "$what: $ev $(basename "$path")"
			return 0
		fi
		sleep 0.1
	done
	notok "$what: $ev $(basename "$path")" "events:" "$(cat "$EV")"
}

iw_stop() {
	kill "$IW" 2>/dev/null
	wait "$IW" 2>/dev/null
}

# -------------------------------------------------- through the mount
rv_start loc || exit 1
N=$MNT/ns
mkdir "$N"
echo 1 >"$N/a"
ls -l "$N" >/dev/null
iw_start "$N"
echo c >"$N/c"
iw_expect "create through the mount" CREATE "$N/c"
echo more >>"$N/c"
iw_expect "modify through the mount" MODIFY "$N/c"
mv "$N/a" "$N/b"
iw_expect "mv through the mount" MOVED_FROM "$N/a"
iw_expect "mv through the mount" MOVED_TO "$N/b"
rm "$N/c"
iw_expect "delete through the mount" DELETE "$N/c"

# ------------------------------------------------ a lease expiring
if echo 1 >"$MNT/@leases/hb" 2>/dev/null; then
	echo x >"$N/leased"
	echo y >"$N/kept"
	setfattr -n user.revfs.lease -v hb "$N/leased"
	r0=$(rev_now)
	iw_expect "a leased key" CREATE "$N/leased"
	for ((i = 0; i < 50; i++)); do
		[ -e "$N/leased" ] || break
		sleep 0.1
	done
	iw_expect "the lease expired (no operation through the mount)" \
		DELETE "$N/leased"
	r1=$(rev_now)
	sleep 0.5
	assert_eq "the expiry took one revision, the replay none" \
		$((r0 + 1)) "$(rev_now)"
	assert_eq "the key is gone, its neighbour stays" "kept" \
		"$(ls "$N" | grep -v '^b$' | tr '\n' ' ' | sed 's/ $//')"
	if grep -q "DELETE $N/kept" "$EV"; then
		notok "no event for the neighbour" "$(cat "$EV")"
	else
		ok "no event for the neighbour"
	fi
	: "$r1"
else
	todo "a key deleted by a lease expiring: IN_DELETE" \
		"no @leases/ in this build (lease files not landed)"
fi
iw_stop
rv_stop

# ------------------------------- another client's writes (etcd backend)
if [ ! -x "$ETCD_BIN" ] || ! command -v etcdctl >/dev/null; then
	todo "other clients' changes (etcd backend)" "etcd is not installed"
	exit
fi
ETCD_PIDS_FILE=$T/etcd.pids
: >"$ETCD_PIDS_FILE"
rv_atexit etcd_kill_all
if ! etcd_start_single "$T/etcd"; then
	notok "a private etcd starts" "$(tail -n 20 "$T/etcd/m.log")"
	exit 1
fi
ec() { ETCDCTL_API=3 etcdctl --endpoints="$ETCD_URL" "$@"; }
erev() { ec get x -w json | sed 's/.*"revision":\([0-9]*\).*/\1/'; }
rv_start etc -o "backend=etcd,endpoints=$ETCD_URL,progress=200ms" || exit 1
N=$MNT/ns
mkdir "$N"
echo 1 >"$N/local"
ls -l "$N" >/dev/null
iw_start "$N"
ec put ns/remote v1 >/dev/null
iw_expect "another client's put of a new key" CREATE "$N/remote"
iw_expect "another client's put of a new key" MODIFY "$N/remote"
assert_eq "the new key reads its value" v1 "$(cat "$N/remote")"
: >"$EV"
ec put ns/remote v2 >/dev/null
iw_expect "another client's overwrite" MODIFY "$N/remote"
for ((i = 0; i < 20; i++)); do
	[ "$(cat "$N/remote")" = v2 ] && break
	sleep 0.1
done
assert_eq "the overwritten key reads the new value" v2 "$(cat "$N/remote")"
if grep -q "^CREATE" "$EV"; then
	notok "an overwrite is not a create" "$(cat "$EV")"
else
	ok "an overwrite is not a create"
fi
r0=$(erev)
ec del ns/remote >/dev/null
iw_expect "another client's delete" DELETE "$N/remote"
sleep 0.5
assert_eq "the replays took no revision (etcd's counter)" $((r0 + 1)) "$(erev)"
assert_missing "the deleted key is gone" "$N/remote"
iw_stop
rv_stop
