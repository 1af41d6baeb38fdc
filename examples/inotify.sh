#!/bin/bash
# inotify.sh — watch a namespace with inotifywait.
#
#   examples/inotify.sh MOUNTPOINT DIR [SECONDS]
#
# `inotifywait -m -r` on MOUNT/DIR prints one line per change: the ones made
# through the mount (the kernel reports them) and the ones revfs makes
# itself — a lease expiring and deleting its keys — which revfs replays
# through its own mount so that they are reported too.  Each line is
# "EVENT PATH".  Runs SECONDS (default: until Ctrl-C).
set -u
MNT=${1:?usage: inotify.sh MOUNTPOINT DIR [SECONDS]}
DIR=${2:?usage: inotify.sh MOUNTPOINT DIR [SECONDS]}
SECS=${3:-0}
mkdir -p "$MNT/$DIR"
args=(-m -r -q --format '%e %w%f' -e create -e modify -e delete
	-e moved_from -e moved_to "$MNT/$DIR")
if ((SECS > 0)); then
	timeout "$SECS" inotifywait "${args[@]}"
else
	inotifywait "${args[@]}"
fi
exit 0
