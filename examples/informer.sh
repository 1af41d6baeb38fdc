#!/bin/bash
# informer.sh — list + watch + resume, like client-go's Reflector, in shell.
#
#   examples/informer.sh MOUNTPOINT DIR CACHE [SECONDS]
#
# Keeps CACHE (a local directory) equal to MOUNT/DIR:
#   1. list: pin R = @revision and copy MOUNT/DIR@R/ (one consistent
#      snapshot) into CACHE; remember R in CACHE.rev;
#   2. watch: follow MOUNT/DIR/@watch@$((R+1)) — lines `REV PUT PATH`,
#      `REV DELETE PATH`, `REV PROGRESS` — applying each event (a PUT's
#      value is read as PATH@REV, the version the event is about) and
#      saving the revision of every PROGRESS marker in CACHE.rev;
#   3. resume: started again with the same CACHE it does not relist but
#      watches from CACHE.rev + 1; if that revision was compacted the stream
#      says `REV COMPACTED` and the informer relists.
# Runs SECONDS (default: forever).  Prints "listed at R", "resumed from R",
# "relist: compacted" and, at the end, "synced at R".
set -u
MNT=${1:?usage: informer.sh MOUNTPOINT DIR CACHE [SECONDS]}
DIR=${2:?usage: informer.sh MOUNTPOINT DIR CACHE [SECONDS]}
CACHE=${3:?usage: informer.sh MOUNTPOINT DIR CACHE [SECONDS]}
SECS=${4:-0}
REVF=$CACHE.rev
DIR=${DIR%/}

relist() {
	local r
	r=$(cat "$MNT/@revision")
	rm -rf "$CACHE"
	mkdir -p "$CACHE"
	if [ -d "$MNT/$DIR@$r" ]; then
		cp -r "$MNT/$DIR@$r/." "$CACHE/"
	fi
	echo "$r" >"$REVF"
	echo "listed at $r"
}

# apply REV TYPE PATH (PATH relative to the mount)
apply() {
	local rel=${3#"$DIR"/}
	case $3 in */) return ;; esac # a directory marker
	case $2 in
	PUT)
		mkdir -p "$(dirname "$CACHE/$rel")"
		cat "$MNT/$3@$1" >"$CACHE/$rel.tmp" 2>/dev/null &&
			mv "$CACHE/$rel.tmp" "$CACHE/$rel"
		;;
	DELETE)
		rm -f "$CACHE/$rel"
		;;
	esac
}

if [ -s "$REVF" ] && [ -d "$CACHE" ]; then
	echo "resumed from $(cat "$REVF")"
else
	relist
fi
end=0
((SECS > 0)) && end=$(($(date +%s) + SECS))
while :; do
	from=$(($(cat "$REVF") + 1))
	compacted=0
	while read -r rev type path; do
		case $type in
		PUT | DELETE) apply "$rev" "$type" "$path" ;;
		PROGRESS) echo "$rev" >"$REVF" ;;
		COMPACTED) compacted=1 ;;
		esac
		((end && $(date +%s) >= end)) && break
	done < <(if ((end)); then
		timeout $((end - $(date +%s) + 1)) cat "$MNT/$DIR/@watch@$from"
	else
		cat "$MNT/$DIR/@watch@$from"
	fi)
	if ((compacted)); then
		echo "relist: compacted"
		relist
		continue
	fi
	((end && $(date +%s) >= end)) && break
	sleep 1 # the stream ended (unmount?): try again
done
echo "synced at $(cat "$REVF")"
