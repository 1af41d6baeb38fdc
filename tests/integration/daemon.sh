#!/bin/bash
# daemon.sh — the daemon's behaviour (SPEC §3, docs/reference.md §1):
# --help and --version, the data directory created 0700, a clean unmount with
# nothing lost on fusermount3 -u, SIGTERM and SIGINT, a second daemon refused
# on a locked store, the mount private to its user unless allow_other, the
# background mode, `mount -t fuse.revfs` through the helper and an fstab line
# with `mount -a -T FILE`; the log (issue 6): one timestamped line per
# message, each refusal with its reason (value too large, invalid name,
# compacted revision, a compacted @watch start), the level filter, and
# syslog once detached (this machine runs no syslog daemon: the check runs
# in a private mount namespace with a listener on its own /dev/log); the
# example systemd unit docs/revfs.service (its ExecStart run as systemd
# would, stopped with its KillSignal; `systemd-analyze verify` where
# systemd is installed); and docs/reference.md against the code: every -o
# option of daemon/rv_opts.c, xattr of fs/fs_xattr.c, control name of
# fs/fs_special.c and errno that fs/ can answer is documented there.
. "$(dirname "$0")/lib.sh"

# ------------------------------------------------ reference.md vs the code
REF=$RV_REPO/docs/reference.md
missing=""
for o in $(grep -o 'IS("[a-z_]*")' "$RV_REPO/daemon/rv_opts.c" |
	sed 's/IS("\(.*\)")/\1/' | sort -u); do
	grep -q "\`$o=" "$REF" || missing="$missing $o="
done
assert_eq "reference.md documents every -o option of rv_opts.c" "" "$missing"
missing=""
for x in $(sed -n 's/^ *X_PREFIX "\([a-z_]*\)",$/\1/p' \
	"$RV_REPO/fs/fs_xattr.c"); do
	grep -q "user\.revfs\.$x" "$REF" || missing="$missing $x"
done
assert_eq "reference.md documents every xattr of fs_xattr.c" "" "$missing"
missing=""
for n in $(sed -n 's/^ *{"\(@[a-z]*\)",.*/\1/p' \
	"$RV_REPO/fs/fs_special.c" | sort -u); do
	grep -q "\`$n" "$REF" || missing="$missing $n"
done
assert_eq "reference.md documents every control name of fs_special.c" "" \
	"$missing"
# Every errno name in fs/ (the errno headers say which words are errnos),
# but EBADF: fs_file.c refuses a WRITE on a handle not open for writing,
# which the kernel never sends.
errnos=$(cat /usr/include/asm-generic/errno-base.h \
	/usr/include/asm-generic/errno.h |
	sed -n 's/^#define[[:space:]]\{1,\}\(E[A-Z0-9]*\)[[:space:]].*/\1/p')
missing=""
for e in $(grep -ohE '\bE[A-Z0-9]{2,}\b' "$RV_REPO"/fs/*.c | sort -u); do
	grep -qx "$e" <<<"$errnos" || continue
	[ "$e" = EBADF ] && continue
	grep -qE "^\| [^|]*\b$e\b" "$REF" || missing="$missing $e"
done
assert_eq "reference.md's errno table has every errno fs/ can answer" "" \
	"$missing"

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
assert_true "... in one log line (libfuse writes it in pieces)" \
	grep -Eq 'Z ERROR fuse: unknown option.*bogus_option' "$T/bogus.out"

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

# The helper as `make install` lays it out (PREFIX/sbin beside PREFIX/bin),
# run as mount(8) runs it, without $REVFS and with a bare PATH: it must run
# the revfs installed beside it.
mkdir -p "$T/inst/sbin" "$T/inst/bin"
cp "$HELPER" "$T/inst/sbin/mount.fuse.revfs"
cp "$REVFS" "$T/inst/bin/revfs"
env -u REVFS PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	"$T/inst/sbin/mount.fuse.revfs" "$T/m1.data" "$T/m1.mnt" -o ro \
	2>>"$T/mount.err"
assert_eq "the installed helper, run as mount(8) runs it, exits 0" 0 $?
bgpid=$(rv_pid_of_mount "$T/m1.mnt")
[ -n "$bgpid" ] && RV_PIDS+=("$bgpid")
assert_eq "... and runs the revfs installed beside it" "$T/inst/bin/revfs" \
	"$(readlink "/proc/$bgpid/exe" 2>&1)"
check_batch INT "... which serves the store"
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

# ------------------------------------------------------------- the log
# In the foreground: one line per message, "UTC-TIME LEVEL message", and
# every refusal with its reason at info.
rv_start log -o max_value=100 || exit 1
ts_re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z (ERROR|WARN|INFO|DEBUG) '
assert_fails_with "a value over max_value fails EFBIG" write:EFBIG \
	putn "$MNT/big" 200
assert_fails_with "mkdir of a non-canonical name fails EINVAL" EINVAL \
	mkdir "$MNT/bad%zz"
echo 1 >"$MNT/k"
r1=$(rev_now)
echo 2 >"$MNT/k"
printf '%s\n' "$(rev_now)" | dd of="$MNT/@compact" status=none
assert_fails_with "a read below the compaction revision fails ENODATA" \
	ENODATA read "$MNT/k@$r1"
out=$(timeout 10 cat "$MNT/@watch@$r1" 2>&1)
assert_true "a @watch start below it ends with COMPACTED" \
	grep -q ' COMPACTED$' <<<"$out"
sleep 0.2
logl=$(grep -v '^=== ' "$RV_LOG")
assert_eq "every log line is 'UTC-TIME LEVEL message'" "" \
	"$(grep -Ev "$ts_re" <<<"$logl")"
assert_eq "... with today's UTC date" "$(date -u +%F)" \
	"$(head -n 1 <<<"$logl" | cut -c1-10)"
assert_true "the log says the value was too large, at info" \
	grep -Eq 'Z INFO write refused: File too large \(.*big' <<<"$logl"
assert_true "the log says the name was invalid, at info" \
	grep -Eq 'Z INFO mkdir refused: Invalid argument \(.*bad%zz' <<<"$logl"
assert_true "the log says the revision was compacted, at info" \
	grep -Eq "Z INFO lookup refused: No data available \\('k@$r1': below the compaction revision\\)" <<<"$logl"
assert_true "the log says the @watch start was compacted, at info" \
	grep -Eq 'Z INFO @watch refused: .*below the compaction revision' \
	<<<"$logl"
assert_false "a missing name is not logged at info" \
	grep -q 'No such file' <<<"$logl"
rv_stop

# loglevel=err drops the refusals; loglevel=debug adds the lookups
rv_start log -o max_value=100,loglevel=err || exit 1
mark=$(wc -l <"$RV_LOG")
"$RVT" try putn "$MNT/big" 200 >/dev/null
cat "$MNT/nothing" 2>/dev/null
rv_stop
assert_eq "loglevel=err: no info line" "" \
	"$(tail -n +$((mark + 1)) "$RV_LOG" | grep -E ' (INFO|DEBUG|WARN) ')"
rv_start log -o max_value=100,loglevel=debug || exit 1
mark=$(wc -l <"$RV_LOG")
cat "$MNT/nothing" 2>/dev/null
"$RVT" try putn "$MNT/big" 200 >/dev/null
rv_stop
assert_true "loglevel=debug: a missing name is logged at debug" \
	grep -Eq "Z DEBUG lookup refused: No such file or directory \\('nothing'\\)" \
	<(tail -n +$((mark + 1)) "$RV_LOG")
assert_true "loglevel=debug: the refusals are still there" \
	grep -q 'Z INFO write refused: File too large' \
	<(tail -n +$((mark + 1)) "$RV_LOG")

# Detached, the log goes to syslog (facility daemon, ident revfs).  No
# syslog daemon runs here, so the check runs in a private mount namespace
# whose /dev is a tmpfs holding the devices the daemon needs and a
# listener on /dev/log that writes each datagram to a file.
cat >"$T/syslog.sh" <<'EOS'
set -u
T=$1 REVFS=$2
mkdir -p "$T/realdev" "$T/sl.mnt"
mount --rbind /dev "$T/realdev" &&
	mount -t tmpfs -o mode=0755 devtmp /dev || exit 2
for n in null zero full fuse random urandom tty; do
	touch "/dev/$n" && mount --bind "$T/realdev/$n" "/dev/$n" || exit 2
done
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[1], "ab", 0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$T/syslog.txt" &
lpid=$!
for _ in $(seq 50); do [ -e "$T/syslog.txt.ready" ] && break; sleep 0.1; done
"$REVFS" -o "data=$T/sl.data,max_value=100" "$T/sl.mnt" >"$T/sl.out" 2>&1
echo "mount $?" >"$T/sl.status"
head -c 200 /dev/zero >"$T/sl.mnt/big" 2>/dev/null
echo "write $?" >>"$T/sl.status"
pid=$(pgrep -f "^$REVFS -o data=$T/sl.data")
echo "$pid" >"$T/sl.pid"
fusermount3 -u "$T/sl.mnt" || umount "$T/sl.mnt"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
sleep 0.2
kill "$lpid"
EOS
timeout -k 5 60 unshare -m --propagation private bash "$T/syslog.sh" "$T" "$REVFS"
assert_eq "detached in a namespace with a /dev/log: mounted, write refused" \
	$'mount 0\nwrite 1' "$(cat "$T/sl.status" 2>&1)"
slpid=$(cat "$T/sl.pid" 2>/dev/null)
[ -n "$slpid" ] && RV_PIDS+=("$slpid")
assert_true "detached, the refusal goes to syslog as daemon.info from revfs[PID]" \
	grep -Eq "^<30>.* revfs\\[$slpid\\]: write refused: File too large" \
	"$T/syslog.txt"
assert_true "... as do the daemon's other messages" \
	grep -Eq "^<30>.* revfs\\[$slpid\\]: .*unmounting" "$T/syslog.txt"
assert_eq "... and none of it goes to the caller's stderr" "" \
	"$(cat "$T/sl.out")"

# ------------------------------------------------- the example systemd unit
# docs/revfs.service's ExecStart, with this build, a temporary store and
# mount point, run the way systemd runs a Type=simple service; stopped with
# its KillSignal within its TimeoutStopSec; its ExecStopPost is harmless.
UNIT=$RV_REPO/docs/revfs.service
unit_val() { sed -n "s/^$1=//p" "$UNIT" | head -n 1; }
subst() {
	sed "s|/usr/bin/revfs|$REVFS|; s|/var/lib/revfs/main|$T/unit.data|g; s|/mnt/kv|$T/unit.mnt|g"
}
start=$(unit_val ExecStart | subst)
stop_sig=$(unit_val KillSignal)
stop_tmo=$(unit_val TimeoutStopSec)
post=$(unit_val ExecStopPost | subst)
assert_true "the unit runs revfs in the foreground (-f)" \
	grep -q -- "$REVFS -f " <<<"$start"
unit_run() {
	mkdir -p "$T/unit.mnt"
	# shellcheck disable=SC2086
	env --default-signal=INT,QUIT $start >>"$T/unit.log" 2>&1 </dev/null &
	UPID=$!
	RV_PIDS+=("$UPID")
	RV_MOUNTS+=("$T/unit.mnt")
	for _ in $(seq 150); do mountpoint -q "$T/unit.mnt" && return 0; sleep 0.1; done
	return 1
}
# (in this shell, not in assert_true's subshell: UPID is needed below)
if unit_run; then
	ok "the unit's ExecStart mounts ($start)"
else
	notok "the unit's ExecStart mounts ($start)" "$(tail -n 20 "$T/unit.log")"
	exit 1
fi
assert_true "... with its options (allow_other)" \
	grep -q allow_other <<<"$(findmnt -n -o OPTIONS "$T/unit.mnt")"
echo "from the unit" >"$T/unit.mnt/k"
kill -s "${stop_sig#SIG}" "$UPID"
assert_exits "its KillSignal ($stop_sig) stops it within TimeoutStopSec" \
	"$UPID" "${stop_tmo:-90}"
assert_eq "... with status 0 (no failure for Restart=on-failure)" 0 \
	"$RV_STATUS"
assert_false "... and the mount is gone" mountpoint -q "$T/unit.mnt"
post=${post#-} # '-': systemd ignores its failure
$post 2>/dev/null
if unit_run; then
	ok "after its ExecStopPost the unit starts again"
else
	notok "after its ExecStopPost the unit starts again" \
		"$(tail -n 20 "$T/unit.log")"
	exit 1
fi
assert_file_content "... written before the stop" "$T/unit.mnt/k" \
	$'from the unit\n'
kill -s "${stop_sig#SIG}" "$UPID"
rv_wait_exit "$UPID" 30
if command -v systemd-analyze >/dev/null; then
	# verify with this build's paths, the man pages of Documentation=
	# on MANPATH; a warning (unknown key, ...) is a failure too
	mkdir -p "$T/sd/man/man1"
	cp "$RV_REPO"/docs/*.1 "$T/sd/man/man1/"
	sed "s|/usr/bin/revfs|$REVFS|" "$UNIT" >"$T/sd/revfs.service"
	out=$(MANPATH=$T/sd/man timeout 30 systemd-analyze verify \
		"$T/sd/revfs.service" 2>&1)
	st=$?
	assert_eq "systemd-analyze verify docs/revfs.service: no error, no warning" \
		"0 " "$st $out"
else
	echo "# systemd-analyze is not installed: the unit's syntax is not verified here"
fi
