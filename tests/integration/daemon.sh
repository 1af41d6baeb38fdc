#!/bin/bash
# daemon.sh — the daemon's behaviour (SPEC §3, docs/reference.md §1):
# --help and --version, the data directory created 0700, a clean unmount with
# nothing lost on fusermount3 -u, SIGTERM and SIGINT, a second daemon refused
# on a locked store, the mount private to its user unless allow_other, the
# background mode, `mount -t fuse.revfs` through the helper and an fstab line
# with `mount -a -T FILE`.
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------- help, version
out=$("$REVFS" --help 2>&1)
assert_eq "revfs --help exits 0" 0 $?
assert_true "--help shows the usage line" grep -q 'MOUNTPOINT' <<<"$out"
for o in data= prefix= quota= max_value= sync= auto_compact= progress=; do
	assert_true "--help documents -o $o" grep -q -- "$o" <<<"$out"
done
out=$("$REVFS" --version 2>&1)
assert_eq "revfs --version exits 0" 0 $?
assert_true "--version prints a version number" \
	grep -Eq '[0-9]+\.[0-9]+' <<<"$out"
mkdir "$T/bogus.mnt"
RV_MOUNTS+=("$T/bogus.mnt")
timeout 10 "$REVFS" -f -o "bogus_option=1,data=$T/bogus.data" \
	"$T/bogus.mnt" >"$T/bogus.out" 2>&1
st=$?
assert_true "an unknown -o option is refused (status $st)" \
	test "$st" -ne 0 -a "$st" -ne 124
assert_true "... naming the option" grep -q bogus_option "$T/bogus.out"

# ------------------------------------------------------- data dir, modes
MNT=$T/m1.mnt
DATA=$T/deep/er/data
RV_LOG=$T/m1.log
mkdir -p "$MNT"
env --default-signal=INT,QUIT "$REVFS" -f -o "data=$DATA" "$MNT" \
	>>"$RV_LOG" 2>&1 &
RV_PID=$!
RV_PIDS+=("$RV_PID")
RV_MOUNTS+=("$MNT")
for ((i = 0; i < 150; i++)); do
	mountpoint -q "$MNT" && break
	sleep 0.1
done
assert_true "revfs -f -o data=DIR MOUNTPOINT mounts" mountpoint -q "$MNT"
assert_eq "the data directory is created 0700" 700 "$(stat -c %a "$DATA")"
assert_eq "its missing parents are created 0700" "700 700" \
	"$(stat -c %a "$T/deep" "$T/deep/er" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "the mount is of type fuse.revfs" fuse.revfs \
	"$(findmnt -n -o FSTYPE "$MNT")"
if have_rev; then
	ok "MNT/@revision exists ($(rev_now))"
else
	todo "MNT/@revision shows the current revision" "absent"
fi

# a second daemon on the same store is refused with a reason
mkdir -p "$T/m2.mnt"
timeout 10 "$REVFS" -f -o "data=$DATA" "$T/m2.mnt" >"$T/second.out" 2>&1
st=$?
assert_true "a second daemon on a locked store exits non-zero" \
	test "$st" -ne 0 -a "$st" -ne 124
assert_true "... saying the store is locked" \
	grep -Eqi 'lock|in use|another process' "$T/second.out"
assert_false "... and does not mount" mountpoint -q "$T/m2.mnt"
ln -s deep/er/data "$T/m1.data" # the store every later mount uses

# ---------------------------------------------------------------- private
mkdir "$MNT/p"
echo secret >"$MNT/p/k"
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}
assert_eq "another uid cannot stat the mount (EACCES)" EACCES \
	"$(as_nobody "$RVT" try stat "$MNT/p/k")"
assert_eq "another uid cannot list the mount (EACCES)" opendir:EACCES \
	"$(as_nobody "$RVT" try list "$MNT")"
assert_eq "another uid cannot read a key (EACCES)" open:EACCES \
	"$(as_nobody "$RVT" try read "$MNT/p/k")"

# ------------------------------------------ nothing lost on each unmount
# write_batch TAG: 40 keys through the mount, each durable on close.
write_batch() {
	local i
	mkdir -p "$MNT/$1"
	for ((i = 0; i < 40; i++)); do
		"$RVT" try put "$MNT/$1/k$i" "$1 $i" >/dev/null
	done
}
# check_batch TAG WHAT: the 40 keys read back.
check_batch() {
	local i bad=""
	for ((i = 0; i < 40; i++)); do
		[ "$(cat "$MNT/$1/k$i" 2>&1)" = "$1 $i" ] || bad="$bad k$i"
	done
	assert_eq "$2" "" "$bad"
}
write_batch fu
fusermount3 -u "$MNT"
assert_eq "fusermount3 -u unmounts (status 0)" 0 $?
assert_exits "... and the daemon exits" "$RV_PID" 20
assert_eq "... with status 0" 0 "$RV_STATUS"
assert_false "... and the mountpoint is free" mountpoint -q "$MNT"

for sig in TERM INT; do
	rv_start m1 || exit 1
	MNT=$T/m1.mnt
	check_batch fu "after a remount the keys written before are there"
	write_batch "$sig"
	kill -"$sig" "$RV_PID"
	assert_exits "SIG$sig: the daemon exits" "$RV_PID" 20
	assert_eq "SIG$sig: exit status 0" 0 "$RV_STATUS"
	assert_false "SIG$sig: the mount is gone" mountpoint -q "$MNT"
	rv_start m1 || exit 1
	check_batch "$sig" "SIG$sig: nothing lost"
	rv_stop
done

# --------------------------------------------------------- allow_other
rv_start m1 -o allow_other || exit 1
assert_eq "with allow_other another uid can read a key" secret \
	"$(as_nobody cat "$MNT/p/k" 2>&1)"
assert_eq "with allow_other another uid can list" "p" \
	"$(as_nobody ls "$MNT" 2>&1 | grep -x p)"
rv_stop

# ------------------------------------------------------- background mode
"$REVFS" -o "data=$T/m1.data" "$T/m1.mnt" >"$T/bg.out" 2>&1
st=$?
assert_eq "without -f revfs returns 0 once mounted" 0 "$st"
assert_true "... and the mount is up when it returns" mountpoint -q \
	"$T/m1.mnt"
# find the detached daemon by its unique mount path, to wait for its exit
rv_pid_of_mount() {
	local d c args
	for d in /proc/[0-9]*; do
		# comm first: reading the cmdline of a process stuck in a page
		# fault on some FUSE mount can block; comm never does
		read -r c 2>/dev/null <"$d/comm" || continue
		[ "$c" = revfs ] || continue
		args=$(tr '\0' '\n' 2>/dev/null <"$d/cmdline") || continue
		grep -qxF -- "$1" <<<"$args" && echo "${d#/proc/}"
	done | head -n1
}
bgpid=$(rv_pid_of_mount "$T/m1.mnt")
[ -n "$bgpid" ] && RV_PIDS+=("$bgpid")
MNT=$T/m1.mnt
check_batch fu "the background daemon serves the store"
fusermount3 -u "$MNT"
if [ -n "$bgpid" ]; then
	assert_exits "the background daemon exits on fusermount3 -u" \
		 "$bgpid" 20
fi

# ------------------------------------------ mount -t fuse.revfs and fstab
HELPER=$RV_REPO/daemon/mount.fuse.revfs
if [ ! -x "$HELPER" ]; then
	todo "mount -t fuse.revfs" "no daemon/mount.fuse.revfs"
	todo "an fstab line with mount -a -T FILE" "no mount helper"
	exit
fi
# mount(8) only looks in /sbin: install the helper there for the test
# unless one is installed already (then that one is tested).
if [ ! -e /sbin/mount.fuse.revfs ]; then
	ln -s "$HELPER" /sbin/mount.fuse.revfs &&
		rv_atexit 'rm -f /sbin/mount.fuse.revfs'
fi
# the helper runs `revfs` from PATH: this build's
mkdir -p "$T/bin"
ln -s "$REVFS" "$T/bin/revfs"
export PATH=$T/bin:$PATH

mount -t fuse.revfs "$T/m1.data" "$T/m1.mnt" 2>"$T/mount.err"
assert_eq "mount -t fuse.revfs DATADIR MNT exits 0" 0 $?
assert_true "... mounts" mountpoint -q "$T/m1.mnt"
bgpid=$(rv_pid_of_mount "$T/m1.mnt")
[ -n "$bgpid" ] && RV_PIDS+=("$bgpid")
check_batch TERM "mount -t fuse.revfs serves the store"
umount "$T/m1.mnt" 2>>"$T/mount.err"
assert_eq "umount unmounts it" 0 $?
[ -n "$bgpid" ] && rv_wait_exit "$bgpid" 20

mount -t fuse.revfs revfs "$T/m1.mnt" -o "data=$T/m1.data,ro" \
	2>>"$T/mount.err"
assert_eq "mount -t fuse.revfs revfs MNT -o data=DIR,ro exits 0" 0 $?
bgpid=$(rv_pid_of_mount "$T/m1.mnt")
[ -n "$bgpid" ] && RV_PIDS+=("$bgpid")
check_batch INT "... serves the store"
assert_eq "... read-only as asked" EROFS \
	"$("$RVT" try put "$MNT/INT/k0" x | sed 's/^.*://')"
umount "$T/m1.mnt"
[ -n "$bgpid" ] && rv_wait_exit "$bgpid" 20

printf '%s %s fuse.revfs defaults,prefix=fu/ 0 0\n' "$T/m1.data" \
	"$T/m1.mnt" >"$T/fstab"
mount -a -T "$T/fstab" 2>>"$T/mount.err"
assert_eq "mount -a -T FSTAB exits 0" 0 $?
assert_true "... mounts the fstab line" mountpoint -q "$T/m1.mnt"
bgpid=$(rv_pid_of_mount "$T/m1.mnt")
[ -n "$bgpid" ] && RV_PIDS+=("$bgpid")
assert_file_content "... with its options (prefix=fu/)" "$T/m1.mnt/k3" "fu 3"
umount "$T/m1.mnt"
[ -n "$bgpid" ] && rv_wait_exit "$bgpid" 20
assert_false "umount of the fstab mount" mountpoint -q "$T/m1.mnt"
