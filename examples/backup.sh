#!/bin/bash
# backup.sh — a live backup: snapshot, restore, compare.
#
#   examples/backup.sh MOUNTPOINT BACKUP_FILE [RESTORE_DIR]
#
# `cp MOUNT/@snapshot FILE` streams a consistent copy of the whole store at
# one revision R while writers go on; `revfsctl snapshot status` verifies
# it; `revfsctl snapshot restore` makes a new store from it (RESTORE_DIR,
# default a temporary directory), which is mounted read-only and compared
# with MOUNT/@R/ (the live store as of R).  Prints "backup ok: revision R"
# or what differs.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
REVFS=${REVFS:-$here/build/revfs}
REVFSCTL=${REVFSCTL:-$here/build/revfsctl}
MNT=${1:?usage: backup.sh MOUNTPOINT BACKUP_FILE [RESTORE_DIR]}
OUT=${2:?usage: backup.sh MOUNTPOINT BACKUP_FILE [RESTORE_DIR]}
tmp=$(mktemp -d /tmp/revfs-backup.XXXXXX)
DEST=${3:-$tmp/restored}
rmnt=$tmp/mnt
mkdir -p "$rmnt"
cleanup() {
	mountpoint -q "$rmnt" && fusermount3 -u "$rmnt"
	rm -rf "$tmp"
}
trap cleanup EXIT

cp "$MNT/@snapshot" "$OUT" || exit 1
R=$("$REVFSCTL" snapshot status "$OUT" | awk '/^revision:/ { print $2 }')
[ -n "$R" ] || { echo "backup: $OUT does not verify" >&2; exit 1; }
echo "snapshot of revision $R: $(stat -c %s "$OUT") bytes"
"$REVFSCTL" -q snapshot restore "$OUT" "$DEST" >/dev/null || exit 1
"$REVFS" -o "data=$DEST,ro" "$rmnt" || exit 1
for _ in $(seq 50); do mountpoint -q "$rmnt" && break; sleep 0.1; done
if diff -r "$MNT/@$R" "$rmnt" >"$tmp/diff" 2>&1; then
	echo "backup ok: revision $R, $(find "$rmnt" -type f | wc -l) keys"
else
	echo "backup differs from the store at revision $R:"
	head -n 20 "$tmp/diff"
	exit 1
fi
