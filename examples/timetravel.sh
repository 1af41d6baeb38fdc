#!/bin/bash
# timetravel.sh — what changed in a namespace since an earlier revision:
# diff the namespace against itself at that revision.
#
#   examples/timetravel.sh MOUNTPOINT DIR REV
#
# MOUNT/DIR@REV/ is the subtree as of REV (read-only, one consistent
# snapshot), so ordinary `diff -r` answers the question.  Prints one line
# per change ("added PATH", "deleted PATH", "changed PATH") and exits 0.
set -u
MNT=${1:?usage: timetravel.sh MOUNTPOINT DIR REV}
DIR=${2:?usage: timetravel.sh MOUNTPOINT DIR REV}
REV=${3:?usage: timetravel.sh MOUNTPOINT DIR REV}
old="$MNT/$DIR@$REV"
new="$MNT/$DIR"

[ -d "$old" ] || { echo "timetravel: $DIR did not exist at $REV (or it was compacted)" >&2; exit 1; }
echo "# $DIR: revision $REV -> $(cat "$MNT/@revision")"
diff -rq "$old" "$new" | while read -r line; do
	case $line in
	"Only in $old"*)
		d=${line#Only in $old}; d=${d%%: *}; f=${line##*: }
		echo "deleted ${DIR}${d}/$f" ;;
	"Only in $new"*)
		d=${line#Only in $new}; d=${d%%: *}; f=${line##*: }
		echo "added ${DIR}${d}/$f" ;;
	Files*)
		f=${line#Files $old/}; f=${f%% and *}
		echo "changed $DIR/$f" ;;
	*) echo "$line" ;;
	esac
done
exit 0
