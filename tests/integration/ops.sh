#!/bin/bash
# ops.sh — day-two operations (docs/operations.md, revfsctl(1)):
# a snapshot taken while writers run (cp MOUNT/@snapshot) restored offline
# and compared, key by key with revisions and leases, with the tree at the
# snapshot's revision; revfsctl status/check/defrag/snapshot on a real
# store, its exit codes (4: in use, 3: damaged file) and its quiet/progress
# output; the documented fstab line with `mount -a -T FILE`; make install
# and make uninstall into a DESTDIR.
. "$(dirname "$0")/lib.sh"

CTL=${REVFSCTL:-$RV_REPO/build/revfsctl}
if [ ! -x "$CTL" ]; then
	todo "revfsctl" "$CTL does not exist (make)"
	exit 1
fi

# json FIELD: a number from revfsctl's -w json output on stdin.
json() { jq -r ".$1"; }

# dump_tree DIR: every file under DIR, sorted: path, revisions, version,
# lease and a checksum of the value.  The same line format for a live
# tree, a DIR@REV tree and a restored store.
dump_tree() {
	(cd "$1" && find . -type f | LC_ALL=C sort | while read -r f; do
		printf '%s c=%s m=%s v=%s l=%s %s\n' "$f" \
			"$(xa "$f" create_revision)" "$(xa "$f" mod_revision)" \
			"$(xa "$f" version)" "$(xa "$f" lease)" \
			"$(sha1sum <"$f" | cut -c1-16)"
	done)
}

rv_start main || exit 1
MAIN_MNT=$MNT
MAIN_DATA=$DATA
MAIN_PID=$RV_PID
MAIN_LOG=$RV_LOG
mkdir -p "$MNT/app/nodes" "$MNT/w"
for i in $(seq 1 40); do
	echo "config $i" >"$MNT/app/c$((i % 9))"
done
rm "$MNT/app/c3"
printf 'a\0b' >"$MNT/app/binary"
echo 'x' >"$MNT/app/odd%40name"
if { echo 40 >"$MNT/@leases/node-1"; } 2>/dev/null; then
	echo up >"$MNT/app/nodes/node-1"
	setfattr -n user.revfs.lease -v node-1 "$MNT/app/nodes/node-1"
	ok "a lease with an attached key for the backup"
else
	todo "a lease in the backup" "no MOUNT/@leases in this build (fs layer)"
fi

# -------------------------------------------- revfsctl on a mounted store
"$CTL" status "$MAIN_DATA" >"$T/st.out" 2>"$T/st.err"
assert_eq "revfsctl status of a mounted store exits 4 (in use)" 4 $?
assert_true "... and says the store is in use" grep -q "in use" "$T/st.err"

# ------------------------------------------- live snapshot under writers
writer() {
	local i=0
	while :; do
		echo "w $i" >"$MAIN_MNT/w/k$((i % 37))" 2>/dev/null
		[ $((i % 11)) -eq 0 ] && rm -f "$MAIN_MNT/w/k$(((i + 5) % 37))"
		i=$((i + 1))
	done
}
SNAP=""
if [ -e "$MAIN_MNT/@snapshot" ]; then
	rv_bg writer
	W1=${RV_BG[-1]}
	rv_bg writer
	W2=${RV_BG[-1]}
	sleep 1
	r0=$(cat "$MAIN_MNT/@revision")
	cp "$MAIN_MNT/@snapshot" "$T/live.revfs"
	assert_eq "cp MOUNT/@snapshot while two writers run exits 0" 0 $?
	sleep 0.5
	kill "$W1" "$W2" 2>/dev/null
	wait "$W1" "$W2" 2>/dev/null
	R=$("$CTL" -w json snapshot status "$T/live.revfs" | json revision)
	r1=$(cat "$MAIN_MNT/@revision")
	if [ -n "$R" ] && [ "$R" -ge "$r0" ] && [ "$R" -lt "$r1" ]; then
		ok "the snapshot is at one revision between the writes ($r0 <= $R < $r1)"
	else
		notok "the snapshot is at one revision between the writes" \
			"r0=$r0 snapshot=$R r1=$r1"
	fi
	dump_tree "$MAIN_MNT/@$R" >"$T/orig.txt"
	SNAP=$T/live.revfs
else
	todo "cp MOUNT/@snapshot while writers run" \
		"no MOUNT/@snapshot in this build (fs layer); the offline save is tested below"
fi
LIVE_REV=$(cat "$MAIN_MNT/@revision")
MNT=$MAIN_MNT RV_PID=$MAIN_PID RV_LOG=$MAIN_LOG
assert_stop "unmount the store"

# --------------------------------------------------- offline: the tool
"$CTL" -w json status "$MAIN_DATA" >"$T/st.json" 2>"$T/st.err"
assert_eq "revfsctl -w json status exits 0" 0 $?
assert_eq "... reports the store's revision" "$LIVE_REV" \
	"$(json revision <"$T/st.json")"
"$CTL" status "$MAIN_DATA" >"$T/st.txt"
assert_true "revfsctl status shows the revision" \
	grep -Eq "^revision: +$LIVE_REV\$" "$T/st.txt"
"$CTL" check "$MAIN_DATA" >"$T/check.out" 2>&1
assert_eq "revfsctl check of a healthy store exits 0" 0 $?
assert_true "... and says it is consistent" grep -q consistent "$T/check.out"
"$CTL" -w json defrag "$MAIN_DATA" >"$T/defrag.json" 2>"$T/defrag.err"
assert_eq "revfsctl defrag exits 0" 0 $?
b=$(json before_bytes <"$T/defrag.json")
a=$(json after_bytes <"$T/defrag.json")
if [ "${b:-0}" -gt 0 ] && [ "${a:-0}" -gt 0 ]; then
	ok "defrag reports the size before ($b) and after ($a)"
else
	notok "defrag reports the size before and after" "$(cat "$T/defrag.json")"
fi
assert_eq "... and writes no progress line when stderr is not a terminal" \
	"" "$(cat "$T/defrag.err")"
"$CTL" -q check "$MAIN_DATA" >/dev/null
assert_eq "the store still checks after defrag" 0 $?
"$CTL" -q snapshot save "$MAIN_DATA" "$T/off.revfs"
assert_eq "revfsctl snapshot save of the stopped store exits 0" 0 $?
assert_missing "... and leaves no .part file" "$T/off.revfs.part"
assert_eq "the offline snapshot is at the store's revision" "$LIVE_REV" \
	"$("$CTL" -w json snapshot status "$T/off.revfs" | json revision)"
if [ -z "$SNAP" ]; then
	# No live snapshot: compare the offline one with the stopped store.
	R=$LIVE_REV
	SNAP=$T/off.revfs
	ln -s "$MAIN_DATA" "$T/orig.data"
	rv_start orig -o ro || exit 1
	dump_tree "$MNT" >"$T/orig.txt"
	rv_stop
fi

# ------------------------------------------------------------ restore
"$CTL" snapshot status "$SNAP" >"$T/ss.out"
assert_eq "revfsctl snapshot status of a good file exits 0" 0 $?
if script -qec "$CTL snapshot status $SNAP" /dev/null >"$T/tty.out" 2>&1 &&
	grep -q '100%' "$T/tty.out"; then
	ok "on a terminal, snapshot status draws a progress bar"
else
	notok "on a terminal, snapshot status draws a progress bar" \
		"$(tail -c 300 "$T/tty.out")"
fi
RESTORED=$T/restored.data
"$CTL" snapshot restore "$SNAP" "$RESTORED" >"$T/restore.out" 2>"$T/restore.err"
assert_eq "revfsctl snapshot restore into a new directory exits 0" 0 $?
assert_eq "... and is quiet on stderr off a terminal" "" "$(cat "$T/restore.err")"
"$CTL" snapshot restore "$SNAP" "$RESTORED" >/dev/null 2>"$T/again.err"
assert_eq "restoring into a non-empty directory exits 1" 1 $?
assert_true "... and says why" grep -q "not empty" "$T/again.err"
"$CTL" -w json status "$RESTORED" >"$T/rst.json"
assert_eq "the restored store is at the snapshot's revision" "$R" \
	"$(json revision <"$T/rst.json")"
assert_eq "... with the same leases" \
	"$(jq -c '[.leases[] | [.id, .name, .ttl]]' "$T/st.json")" \
	"$(jq -c '[.leases[] | [.id, .name, .ttl]]' "$T/rst.json")"
assert_eq "... and the same compaction revision" \
	"$(json compact_revision <"$T/st.json")" \
	"$(json compact_revision <"$T/rst.json")"
rv_start restored -o ro || exit 1
dump_tree "$MNT" >"$T/restored.txt"
if cmp -s "$T/orig.txt" "$T/restored.txt" && [ -s "$T/orig.txt" ]; then
	ok "every key, revision, version, lease and value equals the tree at $R ($(wc -l <"$T/orig.txt") keys)"
else
	notok "the restored tree equals the tree at the snapshot revision" \
		"$(diff "$T/orig.txt" "$T/restored.txt" | head -n 20)"
fi
if [ -e "$MNT/app/c1@history" ]; then
	assert_eq "... history included: c1@history has its versions" \
		"$(wc -l <"$MNT/app/c1@history")" "5"
fi
assert_stop "unmount the restored store"

# --------------------------------------------------- damaged snapshots
cp "$SNAP" "$T/bad.revfs"
size=$(stat -c %s "$T/bad.revfs")
printf '\x5a' | dd of="$T/bad.revfs" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
"$CTL" snapshot status "$T/bad.revfs" >/dev/null 2>"$T/bad.err"
assert_eq "a snapshot with a changed byte: snapshot status exits 3" 3 $?
"$CTL" snapshot restore "$T/bad.revfs" "$T/bad.data" >/dev/null 2>>"$T/bad.err"
assert_eq "... restore exits 3" 3 $?
assert_missing "... and leaves no directory behind" "$T/bad.data"
head -c $((size - 7)) "$SNAP" >"$T/short.revfs"
"$CTL" snapshot restore "$T/short.revfs" "$T/short.data" >/dev/null 2>"$T/short.err"
assert_eq "a truncated snapshot: restore exits 3" 3 $?
assert_true "... saying it is truncated" grep -q truncated "$T/short.err"
assert_missing "... and leaves no directory behind" "$T/short.data"

# ------------------------------------------------ make install/uninstall
INST=$T/inst
if make -s -C "$RV_REPO" install DESTDIR="$INST" PREFIX=/usr >"$T/install.log" 2>&1; then
	ok "make install DESTDIR=... PREFIX=/usr"
	for f in usr/bin/revfs usr/bin/revfsctl usr/sbin/mount.fuse.revfs \
		usr/share/man/man1/revfs.1 usr/share/man/man1/revfsctl.1; do
		assert_true "... installs $f" test -f "$INST/$f"
	done
	assert_true "... the installed revfsctl runs" "$INST/usr/bin/revfsctl" --version
	MANWIDTH=80 man -l "$INST/usr/share/man/man1/revfs.1" >"$T/man.txt" 2>&1
	assert_true "... revfs(1) renders" grep -q "EXIT STATUS" "$T/man.txt"
	MANWIDTH=80 man -l "$INST/usr/share/man/man1/revfsctl.1" >"$T/man.txt" 2>&1
	assert_true "... revfsctl(1) renders" grep -q "EXIT STATUS" "$T/man.txt"

	# ---------------------------------- the documented fstab line
	# mount(8) finds helpers only in /sbin: link the installed one there
	# for the test unless one is installed already.
	LINKED=""
	if [ ! -e /sbin/mount.fuse.revfs ] &&
		ln -s "$INST/usr/sbin/mount.fuse.revfs" /sbin/mount.fuse.revfs 2>/dev/null; then
		LINKED=1
		rv_atexit '[ "$(readlink /sbin/mount.fuse.revfs)" = "$INST/usr/sbin/mount.fuse.revfs" ] && rm -f /sbin/mount.fuse.revfs'
	fi
	FMNT=$T/fstab.mnt
	mkdir -p "$FMNT"
	RV_MOUNTS+=("$FMNT")
	line=$(grep -E '^ */var/lib/revfs/main +/mnt/kv +fuse.revfs' \
		"$RV_REPO/docs/operations.md" | head -n 1 | sed 's/^ *//')
	if [ -z "$line" ]; then
		notok "docs/operations.md has an fstab line"
	else
		echo "$line" | sed "s|/var/lib/revfs/main|$RESTORED|; s|/mnt/kv|$FMNT|" >"$T/fstab"
		REVFS=$REVFS mount -a -T "$T/fstab" 2>"$T/fstab.err"
		assert_eq "mount -a -T FILE with the documented fstab line exits 0" 0 $?
		assert_true "... and mounts the store" mountpoint -q "$FMNT"
		assert_eq "... which serves the restored keys" "config 37" \
			"$(cat "$FMNT/app/c1" 2>&1)"
		umount "$FMNT" 2>>"$T/fstab.err"
		for i in $(seq 1 50); do
			"$CTL" -q status "$RESTORED" >/dev/null 2>&1 && break
			sleep 0.1
		done
		assert_false "umount ends the fstab mount" mountpoint -q "$FMNT"
	fi

	make -s -C "$RV_REPO" uninstall DESTDIR="$INST" PREFIX=/usr >>"$T/install.log" 2>&1
	assert_eq "make uninstall exits 0" 0 $?
	assert_eq "... and leaves no file behind" "" "$(find "$INST" -type f)"
else
	notok "make install DESTDIR=... PREFIX=/usr" "$(tail -n 20 "$T/install.log")"
fi
