#!/bin/bash
# cas.sh — a safe read-modify-write: increment a counter with the
# conditional update KEY@ifrev=REV, retried on conflict.
#
#   examples/cas.sh MOUNTPOINT KEY [TIMES]
#
# Reads KEY and its mod_revision, writes the new value to KEY@ifrev=REV: the
# put happens only if KEY is unchanged since REV, else ESTALE and we read
# again.  dd is used for the write because it reports an error of close(),
# where the commit happens (the shell ignores close()'s errors).  Run
# several at once: no increment is lost.  Prints "done N (R retries)".
set -u
MNT=${1:?usage: cas.sh MOUNTPOINT KEY [TIMES]}
KEY=$MNT/${2:?usage: cas.sh MOUNTPOINT KEY [TIMES]}
TIMES=${3:-1}

retries=0
for ((i = 0; i < TIMES; i++)); do
	while :; do
		# a missing key is revision 0 (create it), an empty one is 0
		rev=$(getfattr --only-values -n user.revfs.mod_revision \
			"$KEY" 2>/dev/null) || rev=0
		val=$(cat "$KEY" 2>/dev/null)
		val=${val:-0}
		if printf '%s' "$((val + 1))" |
			dd of="$KEY@ifrev=$rev" status=none 2>/dev/null; then
			break
		fi
		retries=$((retries + 1))
	done
done
echo "done $TIMES ($retries retries)"
