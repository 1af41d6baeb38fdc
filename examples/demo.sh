#!/usr/bin/env bash
# demo.sh — mount a small demo store and show what revfs does.
#
#   examples/demo.sh [MOUNTPOINT]      (default: ./revfs-demo)
#
# Creates a fresh store in a temporary directory, mounts it, writes a few
# keys (several versions, a namespace, a lease), prints a short tour, and
# leaves the mount up for you to explore.  Unmount with:
#   fusermount3 -u MOUNTPOINT
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
REVFS=${REVFS:-$here/build/revfs}
MNT=${1:-$PWD/revfs-demo}
DATA=$(mktemp -d /tmp/revfs-demo-data.XXXXXX)

[ -x "$REVFS" ] || { echo "demo: $REVFS not built (run make)" >&2; exit 1; }
mkdir -p "$MNT"
if mountpoint -q "$MNT"; then
	echo "demo: $MNT is already a mount point" >&2
	exit 1
fi
"$REVFS" -o data="$DATA" "$MNT"
for _ in $(seq 50); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { echo "demo: mount failed" >&2; exit 1; }

cd "$MNT"
mkdir -p registry/pods registry/nodes config
echo 'image: nginx:1.25' > registry/pods/web-1
echo 'image: nginx:1.27' > registry/pods/web-1       # a second version
echo 'image: redis:7' > registry/pods/cache-1
echo 'Ready' > registry/nodes/node-1
echo 'debug=false' > config/app
r1=$(cat @revision 2>/dev/null || echo '?')
echo 'debug=true' > config/app

cat <<MSG
revfs is mounted at $MNT (store: $DATA).

Try:
  cd $MNT
  ls -l registry/pods                  # keys are files, namespaces directories
  cat registry/pods/web-1              # the current value
  getfattr -d registry/pods/web-1      # create/mod revision, version, lease
  cat registry/pods/web-1@history      # every retained version
  cat config/app@$r1                   # the value as of revision $r1
  diff -r config@$r1 config            # a namespace against its past
  cat @revision                        # the store's current revision

Unmount with:  fusermount3 -u $MNT
MSG
