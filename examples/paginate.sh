#!/bin/bash
# paginate.sh — walk a huge namespace a page at a time, consistently.
#
#   examples/paginate.sh MOUNTPOINT DIR [PAGE]
#
# Pins the current revision R once and lists MOUNT/DIR@R/ (the namespace as
# of R) with ordinary tools: one `ls -f` (no sorting: entries come in key
# order straight from revfs's readdir, which reads the engine 1000 entries
# at a time), handed to the loop below PAGE names at a time.  Nothing holds
# more than a page, whatever the namespace's size, and the listing is read
# once.  Every page is of revision R, so keys created or deleted meanwhile
# never make a page skip or repeat an entry — a Kubernetes list with a
# continue token, in shell (to stop and go on later, keep R and the last
# name: MOUNT/DIR@R/ lists the same entries in the same order as long as R
# is not compacted).  Prints "page N: K entries (FIRST .. LAST)" per page
# and "total T entries at revision R".
set -u
MNT=${1:?usage: paginate.sh MOUNTPOINT DIR [PAGE]}
DIR=${2:?usage: paginate.sh MOUNTPOINT DIR [PAGE]}
PAGE=${3:-500}
R=$(cat "$MNT/@revision")
snap="$MNT/$DIR@$R"
[ -d "$snap" ] || { echo "paginate: no $DIR at revision $R" >&2; exit 1; }
total=0
page=0
while mapfile -t -n "$PAGE" entries && ((${#entries[@]})); do
	n=${#entries[@]}
	page=$((page + 1))
	echo "page $page: $n entries (${entries[0]} .. ${entries[n - 1]})"
	total=$((total + n))
done < <(ls -f "$snap" | grep -v '^\.\.\?$')
echo "total $total entries at revision $R"
