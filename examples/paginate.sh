#!/bin/bash
# paginate.sh — walk a huge namespace a page at a time, consistently.
#
#   examples/paginate.sh MOUNTPOINT DIR [PAGE]
#
# Pins the current revision R once and lists MOUNT/DIR@R/ (the namespace as
# of R) page by page with ordinary tools: `ls -f` (no sorting: entries come
# in key order straight from revfs's paginated readdir) and tail/head.
# Every page is of the same revision, so keys created or deleted meanwhile
# never make a page skip or repeat an entry — a Kubernetes list with a
# continue token, in shell.  Prints "page N: K entries" per page and
# "total T entries at revision R".
set -u
MNT=${1:?usage: paginate.sh MOUNTPOINT DIR [PAGE]}
DIR=${2:?usage: paginate.sh MOUNTPOINT DIR [PAGE]}
PAGE=${3:-500}
R=$(cat "$MNT/@revision")
snap="$MNT/$DIR@$R"
total=0
page=1
while :; do
	entries=$(ls -f "$snap" | grep -v '^\.\.\?$' |
		tail -n +$((total + 1)) | head -n "$PAGE")
	[ -n "$entries" ] || break
	n=$(wc -l <<<"$entries")
	echo "page $page: $n entries ($(head -n 1 <<<"$entries") .. $(tail -n 1 <<<"$entries"))"
	total=$((total + n))
	page=$((page + 1))
	((n < PAGE)) && break
done
echo "total $total entries at revision $R"
