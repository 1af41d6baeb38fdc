#!/usr/bin/env bash
# fs_ls.sh — listing a huge namespace through the mount (issue 4, benchmark
# 1): `ls -f | wc -l` and `ls -l | wc -l` of N keys under L/ through revfs,
# against the same names as N empty files in a private tmpfs, in the same
# run, and the daemon's peak RSS (VmHWM) before and after the listings.
#
#   tests/bench/fs_ls.sh            N = 1,000,000
#   QUICK=1 tests/bench/fs_ls.sh    N = 100,000
#   FS_LS_KEYS=N                    any other N
#
# The keys are loaded before the mount by tests/integration/loadkeys.c
# (the engine API, transactions of 1,000 puts): through the mount a million
# creates take many minutes and are not what is measured.  Each listing runs
# twice per file system, alternating tmpfs and revfs so that a change in the
# machine's load hits both; the ratio uses the better of the two runs of
# each (ls -l runs once each: through the mount it takes minutes for a
# million names).  Every listing's line count is checked (N + 2 for ls -f with . and
# .., N + 1 for ls -l with its "total" line): a wrong count is a failure.
. "$(dirname "$0")/fs_lib.sh"

if [ "$QUICK" = 1 ]; then
	N=${FS_LS_KEYS:-100000}
else
	N=${FS_LS_KEYS:-1000000}
fi

fs_build || exit 1
fs_machine
echo "# keys: $N under L/"

t0=$(date +%s.%N)
if ! "$T/loadkeys" "$T/ls.data" L/k "$N"; then
	fs_fail "loading $N keys"
	fs_end
fi
echo "loaded $N keys through the engine API in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s; store $(du -sh "$T/ls.data" | cut -f1)"

fs_tmpfs tmpfs || {
	fs_fail "mounting a tmpfs"
	fs_end
}
mkdir "$TMPFS/L"
if ! "$FS_FILES" files "$TMPFS/L" k "$N" 2 0 >/dev/null; then
	fs_fail "creating $N empty files on tmpfs"
	fs_end
fi
echo "created $N empty files on tmpfs"

fs_mount ls || {
	fs_fail "mounting revfs"
	fs_end
}
hwm0=$(fs_hwm_kib "$PID")
echo "revfs mounted; VmHWM before listing: $((hwm0 / 1024)) MiB"

# list WHAT DIR CMD EXPECTED: time CMD on DIR into the variable WHAT
list() {
	local what=$1 dir=$2 cmd=$3 want=$4 got
	if ! fs_time "$what" "cd '$dir' && $cmd | wc -l"; then
		fs_fail "$what: $cmd failed"
	fi
	got=$(cat "$T/out")
	if [ "$got" != "$want" ]; then
		fs_fail "$what: $got lines, expected $want"
	fi
	echo "$what: ${!what} s ($got lines; load $(fs_load))"
}

list tmpfs_f1 "$TMPFS/L" "ls -f" $((N + 2))
list revfs_f1 "$MNT/L" "ls -f" $((N + 2))
list tmpfs_f2 "$TMPFS/L" "ls -f" $((N + 2))
list revfs_f2 "$MNT/L" "ls -f" $((N + 2))
hwm1=$(fs_hwm_kib "$PID")
# ls -l through the mount is slow (two getxattr round trips per name, see
# docs/BENCHMARKS.md): one run each
list tmpfs_l1 "$TMPFS/L" "ls -l" $((N + 1))
list revfs_l1 "$MNT/L" "ls -l" $((N + 1))
hwm2=$(fs_hwm_kib "$PID")

best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'; }
tf=$(best "$tmpfs_f1" "$tmpfs_f2")
rf=$(best "$revfs_f1" "$revfs_f2")
tl=$tmpfs_l1
rl=$revfs_l1
echo
echo "RESULT ls -f of $N: revfs $rf s, tmpfs $tf s, ratio $(fs_ratio "$rf" "$tf")x tmpfs (aim <= 1.5x)"
echo "RESULT ls -l of $N: revfs $rl s, tmpfs $tl s, ratio $(fs_ratio "$rl" "$tl")x tmpfs"
echo "RESULT revfs VmHWM: $((hwm0 / 1024)) MiB before, $((hwm1 / 1024)) MiB after ls -f, $((hwm2 / 1024)) MiB after ls -l; growth $(((hwm2 - hwm0) / 1024)) MiB (aim < 64 MiB)"
fs_umount
fs_end
