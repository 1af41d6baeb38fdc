#!/bin/bash
# run.sh — run the integration suite and print "N passed, N failed".
#
#   tests/integration/run.sh [SCRIPT...]       # default: every area
#   REVFS=build/san/revfs tests/integration/run.sh
#
# Without REVFS the suite runs with build/revfs, then again with the
# ASan+UBSan build build/san/revfs if it exists (`make SAN=1`; RV_SAN=0
# skips it).
# Each area script mounts its own store in its own temporary directory and
# prints one ok / not ok line per check (lib.sh); this runner only counts
# them.  With a sanitizer build every script also fails on any ASan, LSan or
# UBSan report in its daemon's log (lib.sh rv_san_check).  A script that
# dies without its summary (a crash, a timeout) counts as one more failure.
# Output goes to the terminal and to $RV_OUT (default: a new
# /tmp/revfs-integration.XXXXXX).
set -u
cd "$(dirname "$0")/../.." || exit 1
if [ -n "${REVFS:-}" ]; then
	BUILDS=("$REVFS")
else
	BUILDS=(build/revfs)
	if [ "${RV_SAN:-1}" != 0 ] && [ -x build/san/revfs ]; then
		BUILDS+=(build/san/revfs)
	fi
fi
OUT=${RV_OUT:-$(mktemp /tmp/revfs-integration.XXXXXX)}
TMO=${RV_TIMEOUT:-300}

if [ $# -eq 0 ]; then
	set -- basic names history badinput crash daemon listing
fi
: >"$OUT"
pass=0
fail=0
for REVFS in "${BUILDS[@]}"; do
	export REVFS
	for s in "$@"; do
		s=tests/integration/${s%.sh}.sh
		echo "### $s (REVFS=$REVFS)" | tee -a "$OUT"
		start=$(date +%s)
		# the script's own trap unmounts on the TERM that timeout sends
		timeout -k 30 "$TMO" nice bash "$s" 2>&1 | tee "$OUT.one"
		st=${PIPESTATUS[0]}
		cat "$OUT.one" >>"$OUT"
		p=$(grep -c '^ok ' "$OUT.one")
		f=$(grep -c '^not ok ' "$OUT.one")
		if ! grep -q "^# $(basename "$s" .sh): [0-9]* passed" "$OUT.one"; then
			echo "not ok - $s ended without its summary (status $st)" |
				tee -a "$OUT"
			f=$((f + 1))
		elif [ "$st" -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "not ok - $s exited $st with no failed check" | tee -a "$OUT"
			f=$((f + 1))
		fi
		echo "# $s: $p passed, $f failed, $(($(date +%s) - start)) s" |
			tee -a "$OUT"
		pass=$((pass + p))
		fail=$((fail + f))
	done
done
rm -f "$OUT.one"
echo "$pass passed, $fail failed" | tee -a "$OUT"
[ "$fail" -eq 0 ]
