#!/usr/bin/env bash
# fs_cat.sh — reading many small keys (issue 4, benchmark 2): `cat` of N
# small keys under C/ through revfs, cold and warm, against the same files
# on a private tmpfs, in the same run.
#
#   tests/bench/fs_cat.sh            N = 10,000
#   QUICK=1 tests/bench/fs_cat.sh    N = 2,000
#   FS_CAT_KEYS=N                    any other N
#
# The keys (C/k<n> = "v<n>") are loaded before the mount by
# tests/integration/loadkeys.c; the tmpfs gets the same names and contents.
# One `cat k*` reads them all (the shell's glob sorts the names, the same
# work on both sides).  Cold: revfs freshly mounted after the page, dentry
# and inode caches were dropped (echo 3 > /proc/sys/vm/drop_caches), so the
# kernel has no entry, attribute or page of the mount and LevelDB's files
# come from the disk; tmpfs after the same drop (its files cannot leave
# memory: its "cold" is only the dropped caches around it).  Warm: the same
# cat again at once.  Every cat's output must equal tmpfs's byte for byte.
. "$(dirname "$0")/fs_lib.sh"

if [ "$QUICK" = 1 ]; then
	N=${FS_CAT_KEYS:-2000}
else
	N=${FS_CAT_KEYS:-10000}
fi

fs_build || exit 1
fs_machine
echo "# keys: $N under C/, values v<n>"

if ! "$T/loadkeys" "$T/cat.data" C/k "$N"; then
	fs_fail "loading $N keys"
	fs_end
fi
fs_tmpfs tmpfs || {
	fs_fail "mounting a tmpfs"
	fs_end
}
mkdir "$TMPFS/C"
for ((i = 0; i < N; i++)); do
	printf 'v%d' "$i" >"$TMPFS/C/k$i"
done

# read WHAT DIR: time `cat k*` in DIR into the variable WHAT, check it
read_all() {
	local what=$1 dir=$2
	if ! fs_time "$what" "cd '$dir' && cat k*"; then
		fs_fail "$what: cat failed"
	fi
	if [ -f "$T/want" ] && ! cmp -s "$T/out" "$T/want"; then
		fs_fail "$what: output differs from tmpfs's"
	fi
	echo "$what: ${!what} s ($(wc -c <"$T/out") bytes; load $(fs_load))"
}

fs_drop_caches
read_all tmpfs_cold "$TMPFS/C"
cp "$T/out" "$T/want"
read_all tmpfs_warm "$TMPFS/C"

fs_drop_caches
fs_mount cat || {
	fs_fail "mounting revfs"
	fs_end
}
read_all revfs_cold "$MNT/C"
read_all revfs_warm "$MNT/C"
fs_umount

echo
echo "RESULT cat of $N keys, cold: revfs $revfs_cold s, tmpfs $tmpfs_cold s, ratio $(fs_ratio "$revfs_cold" "$tmpfs_cold")x tmpfs; $(awk -v s="$revfs_cold" -v n="$N" 'BEGIN { printf "%.0f", n / s }') keys/s"
echo "RESULT cat of $N keys, warm: revfs $revfs_warm s, tmpfs $tmpfs_warm s, ratio $(fs_ratio "$revfs_warm" "$tmpfs_warm")x tmpfs; $(awk -v s="$revfs_warm" -v n="$N" 'BEGIN { printf "%.0f", n / s }') keys/s"
fs_end
