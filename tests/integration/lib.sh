# lib.sh — shared helpers of the black-box integration suite.
#
# Sourced (never run) by every tests/integration/*.sh.  It gives each script
# its own temporary directory ($T, from mktemp -d), starts revfs daemons in
# the foreground with their stderr in $T/NAME.log, and installs a trap that
# ALWAYS unmounts (fusermount3 -u, then -uz), kills whatever the script
# started and removes $T — on success, on failure and on Ctrl-C alike.
#
# Output is TAP-like: one "ok - WHAT" or "not ok - WHAT" line per check, with
# what was expected and what came on the lines after a failure; a feature
# that does not exist yet is "not ok - WHAT # TODO why" (counted as a
# failure: never a silent pass).  The script's exit status is non-zero when
# anything failed.  At the end every daemon log is searched for ASan, LSan
# and UBSan reports; one is a failure too.
#
# Environment: REVFS (default build/revfs; build/san/revfs for sanitizers),
# RV_KEEP=1 keeps $T for a post-mortem.

set -u

RV_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REVFS=${REVFS:-$RV_REPO/build/revfs}
case $REVFS in /*) ;; *) REVFS=$RV_REPO/$REVFS ;; esac
RV_NAME=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/revfs-it-$RV_NAME.XXXXXX")
chmod 0755 "$T" # other uids must reach the mount for the privacy check
RVT=$T/rvt
RV_NPASS=0
RV_NFAIL=0
RV_MOUNTS=()   # mount points this script mounted
RV_PIDS=()     # daemons
RV_BG=()       # other background jobs (writers, ...)
RV_ATEXIT=()   # commands rv_cleanup evals last (rv_atexit)
MNT=""         # the current mount (rv_start sets it)
DATA=""        # and its data directory
RV_PID=""      # and its daemon
RV_LOG=""      # and its log

# The errors a sanitizer build prints; any of them in a daemon log fails.
RV_SAN_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer|AddressSanitizer:DEADLYSIGNAL'
# Reports also go to $T/san.PID: a detached daemon (background mode, the
# mount helper) has no stderr to read.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}:log_path=$T/san
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}:log_path=$T/san

# ------------------------------------------------------------------ output

ok() {
	RV_NPASS=$((RV_NPASS + 1))
	echo "ok - $*"
}

# notok WHAT [DETAIL...]: a failure, with details indented below it.
notok() {
	local what=$1
	shift
	RV_NFAIL=$((RV_NFAIL + 1))
	echo "not ok - $what"
	local d
	for d in "$@"; do
		printf '%s\n' "$d" | sed 's/^/#   /'
	done
}

# todo WHAT WHY: the feature is absent; visible, and counted as a failure.
todo() {
	RV_NFAIL=$((RV_NFAIL + 1))
	echo "not ok - $1 # TODO $2"
}

# A shown value: bytes that a terminal would hide are made visible.
rv_show() {
	local q
	printf -v q '%q' "$1"
	printf '%s' "${q:0:600}"
}

# ------------------------------------------------------------- assertions

# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		notok "$1" "expected: $(rv_show "$2")" "got:      $(rv_show "$3")"
	fi
}

# assert_ne WHAT UNEXPECTED ACTUAL
assert_ne() {
	if [ "$2" != "$3" ]; then
		ok "$1"
	else
		notok "$1" "expected anything but: $(rv_show "$2")"
	fi
}

# assert_true WHAT CMD...: CMD exits 0.
assert_true() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$what"
	else
		notok "$what" "command failed (status $?): $*" "$out"
	fi
}

# assert_false WHAT CMD...: CMD exits non-zero.
assert_false() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then
		notok "$what" "command succeeded but should have failed: $*" \
			"$out"
	else
		ok "$what"
	fi
}

# assert_file_content WHAT PATH EXPECTED: the exact bytes (trailing newlines
# included; pass them with $'...\n').
assert_file_content() {
	local got
	if [ ! -e "$2" ]; then
		notok "$1" "expected content: $(rv_show "$3")" \
			"got: $2 does not exist"
		return
	fi
	got=$(cat -- "$2" 2>&1; echo x)
	got=${got%x}
	assert_eq "$1" "$3" "$got"
}

# assert_missing WHAT PATH: PATH does not exist (stat fails ENOENT).
assert_missing() {
	assert_eq "$1" ENOENT "$("$RVT" try stat "$2")"
}

# assert_xattr WHAT PATH NAME EXPECTED
assert_xattr() {
	local got
	got=$(getfattr --absolute-names --only-values -n "$3" -- "$2" 2>&1)
	assert_eq "$1" "$4" "$got"
}

# assert_fails_with WHAT ERRNO OP ARGS...: `rvt try OP ARGS` reports ERRNO
# (a bare name like EROFS, or STEP:ERRNO like write:EFBIG to also pin the
# call that must fail).
assert_fails_with() {
	local what=$1 want=$2 got
	shift 2
	got=$(timeout -k 2 60 "$RVT" try "$@" 2>&1)
	case $want in
	*:*) ;;
	*) got=${got#*:} ;;
	esac
	assert_eq "$what" "$want" "$got"
}

# assert_succeeds WHAT OP ARGS...: `rvt try OP ARGS` reports OK.
assert_succeeds() {
	local what=$1
	shift
	assert_eq "$what" OK "$(timeout -k 2 60 "$RVT" try "$@" 2>&1)"
}

# ------------------------------------------------------------ revisions

# xa PATH NAME: the value of xattr user.revfs.NAME ("" if none).
xa() {
	getfattr --absolute-names --only-values -n "user.revfs.$2" -- "$1" \
		2>/dev/null
}
modrev() { xa "$1" mod_revision; }
createrev() { xa "$1" create_revision; }
version() { xa "$1" version; }

# rev_now: the store's current revision, from MNT/@revision.
rev_now() {
	local r
	r=$(cat "$MNT/@revision" 2>/dev/null) || return 1
	printf '%s' "${r%%[!0-9]*}"
}

# have_rev: whether MNT/@revision exists (SPEC §2, control files).
have_rev() {
	[ -n "$(rev_now)" ]
}

# assert_meta WHAT PATH CREATE MOD VERSION: the three revision xattrs.
assert_meta() {
	local got
	got="$(createrev "$2") $(modrev "$2") $(version "$2")"
	assert_eq "$1 (create_revision mod_revision version)" "$3 $4 $5" "$got"
}

# ---------------------------------------------------------------- daemons

# rv_build_helper: compile rvt.c into $T (errno visibility needs C).
rv_build_helper() {
	cc -std=gnu11 -O2 -Wall -Wextra -Werror -pthread -o "$RVT" \
		"$RV_REPO/tests/integration/rvt.c" || {
		echo "Bail out! cannot compile rvt.c"
		exit 1
	}
}

# rv_start NAME [-o OPTS] [other revfs args]: mount $T/NAME.mnt over the
# data dir $T/NAME.data (not created here: the daemon creates it).  Sets MNT,
# DATA, RV_PID, RV_LOG.  Returns 1 (after a not ok) if the mount does not
# come up within 15 s.
rv_start() {
	local name=$1 opts="" i
	shift
	MNT=$T/$name.mnt
	DATA=$T/$name.data
	RV_LOG=$T/$name.log
	mkdir -p "$MNT"
	if [ "${1:-}" = "-o" ]; then
		opts=",$2"
		shift 2
	fi
	echo "=== $(date +%T) $REVFS -f -o data=$DATA$opts $* $MNT" >>"$RV_LOG"
	# a script's background job starts with SIGINT ignored, and libfuse
	# only handles a signal that is not ignored: give it the defaults a
	# shell user's daemon has
	env --default-signal=INT,QUIT "$REVFS" -f -o "data=$DATA$opts" "$@" \
		"$MNT" </dev/null >>"$RV_LOG" 2>&1 &
	RV_PID=$!
	RV_PIDS+=("$RV_PID")
	RV_MOUNTS+=("$MNT")
	for ((i = 0; i < 150; i++)); do
		if mountpoint -q "$MNT"; then
			return 0
		fi
		if ! kill -0 "$RV_PID" 2>/dev/null; then
			notok "mount $name: daemon exited before mounting" \
				"$(tail -n 20 "$RV_LOG")"
			return 1
		fi
		sleep 0.1
	done
	notok "mount $name: not mounted after 15 s" "$(tail -n 20 "$RV_LOG")"
	return 1
}

# rv_wait_exit PID SECONDS: wait for a daemon to exit; 0 if it did, and
# then RV_STATUS is its exit status (if it is this shell's child).
RV_STATUS=""
rv_wait_exit() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || {
			wait "$1" 2>/dev/null
			RV_STATUS=$?
			return 0
		}
		sleep 0.1
	done
	return 1
}

# rv_stop: unmount MNT cleanly and wait for its daemon; 1 on trouble.
rv_stop() {
	local rc=0
	fusermount3 -u "$MNT" 2>>"$RV_LOG" || rc=1
	rv_wait_exit "$RV_PID" 20 || {
		echo "rv_stop: daemon $RV_PID still alive" >>"$RV_LOG"
		kill -9 "$RV_PID" 2>/dev/null
		rc=1
	}
	return $rc
}

# assert_stop WHAT: rv_stop as a check (in this shell: it reaps the daemon).
assert_stop() {
	if rv_stop; then
		ok "$1"
	else
		notok "$1" "$(tail -n 20 "$RV_LOG")"
	fi
}

# assert_exits WHAT PID SECONDS: the process exits within SECONDS.
assert_exits() {
	if rv_wait_exit "$2" "$3"; then
		ok "$1"
	else
		notok "$1" "process $2 still runs after $3 s"
	fi
}

# rv_bg CMD...: run CMD in the background; the trap kills it.
rv_bg() {
	"$@" &
	RV_BG+=($!)
}

# rv_is_mounted MNT: from mountinfo, so a dead daemon's mount (where stat
# fails ENOTCONN and mountpoint -q says no) still counts.
rv_is_mounted() {
	findmnt --mountpoint "$1" >/dev/null 2>&1
}

# rv_conn MNT: the FUSE connection number of a mount (from mountinfo: no
# request reaches the daemon), or "".
rv_conn() {
	findmnt -n -o MAJ:MIN --mountpoint "$1" 2>/dev/null |
		awk -F: 'END { if (NR) print $2 + 0 }'
}

# rv_abort MNT: abort a mount's FUSE connection, the last resort when its
# daemon cannot die (a thread stuck in the kernel on its own mount): every
# waiting request fails ENOTCONN.
rv_abort() {
	local c
	c=$(rv_conn "$1")
	[ -n "$c" ] || return 1
	[ -d /sys/fs/fuse/connections/"$c" ] ||
		mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null
	echo 1 >/sys/fs/fuse/connections/"$c"/abort 2>/dev/null
}

# rv_stuck PID: the kernel wait channels of a process's threads.
rv_stuck() {
	local t
	for t in /proc/"$1"/task/*; do
		echo "thread ${t##*/}: $(cat "$t/stat" 2>/dev/null |
			awk '{ print $3 }') $(cat "$t/wchan" 2>/dev/null)"
	done
}

# rv_atexit CMD: eval CMD in the cleanup, after every unmount.
rv_atexit() {
	RV_ATEXIT+=("$1")
}

rv_san_check() {
	local f found=""
	for f in "$T"/*.log "$T"/san.*; do
		[ -f "$f" ] || continue
		if grep -Eq "$RV_SAN_RE" "$f"; then
			found="$found $f"
		fi
	done
	if [ -z "$found" ]; then
		ok "$RV_NAME: no sanitizer report in the daemon logs"
	else
		notok "$RV_NAME: sanitizer report in the daemon logs" \
			"$(grep -Eh -A 12 "$RV_SAN_RE" $found | head -n 60)"
	fi
}

rv_cleanup() {
	local rc=$? p m
	trap - EXIT INT TERM HUP
	trap '' PIPE # a closed stdout (| head) must not stop the cleanup
	for p in "${RV_BG[@]}"; do
		kill "$p" 2>/dev/null
	done
	for m in "${RV_MOUNTS[@]}"; do
		if rv_is_mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null ||
				fusermount3 -uz "$m" 2>/dev/null
		fi
	done
	for p in "${RV_PIDS[@]}"; do
		rv_wait_exit "$p" 10 || kill -9 "$p" 2>/dev/null
	done
	for p in "${RV_PIDS[@]}"; do
		rv_wait_exit "$p" 5 && continue
		# still there after SIGKILL: a thread is stuck in the kernel
		echo "# daemon $p cannot exit: $(rv_stuck "$p" | tr '\n' ' ')"
		RV_NFAIL=$((RV_NFAIL + 1))
		for m in "${RV_MOUNTS[@]}"; do
			rv_abort "$m"
		done
		rv_wait_exit "$p" 5
	done
	for p in "${RV_BG[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	for m in "${RV_MOUNTS[@]}"; do
		# a crashed daemon leaves "Transport endpoint is not connected"
		fusermount3 -uz "$m" 2>/dev/null
	done
	for p in "${RV_ATEXIT[@]}"; do
		eval "$p"
	done
	rv_san_check
	# A script that stopped with an error before any check failed (set -u
	# on an unbound variable, a command that killed the shell, an early
	# `exit 1`) skipped its remaining checks: a failure, not "N passed".
	if [ "$rc" -ne 0 ] && [ "$RV_NFAIL" -eq 0 ]; then
		echo "not ok - $RV_NAME: the script ended early (exit status $rc)"
		RV_NFAIL=$((RV_NFAIL + 1))
	fi
	echo "# $RV_NAME: $RV_NPASS passed, $RV_NFAIL failed"
	local busy=""
	for m in "${RV_MOUNTS[@]}"; do
		rv_is_mounted "$m" && busy="$busy $m"
	done
	if [ -n "$busy" ]; then
		# never rm -rf through a live mount
		echo "# still mounted:$busy; kept $T"
	elif [ "${RV_KEEP:-0}" = 1 ]; then
		echo "# kept $T"
	else
		rm -rf "$T"
	fi
	[ "$RV_NFAIL" -eq 0 ]
	exit $?
}

trap rv_cleanup EXIT
trap 'echo "# interrupted"; RV_NFAIL=$((RV_NFAIL + 1)); exit 1' INT TERM HUP

if [ ! -x "$REVFS" ]; then
	echo "Bail out! $REVFS does not exist (make, or set REVFS)"
	RV_NFAIL=$((RV_NFAIL + 1))
	exit 1
fi
rv_build_helper
