#!/bin/bash
# run.sh — run the integration suite and print "N passed, N failed".
#
#   tests/integration/run.sh [SCRIPT...]       # default: every area
#   REVFS=build/san/revfs tests/integration/run.sh
#
# Without REVFS the area scripts run with build/revfs, then again with the
# ASan+UBSan build build/san/revfs if it exists (`make SAN=1`; RV_SAN=0
# skips it), then, with no SCRIPT given, tests/integration/etcd_run.sh (the
# suite again on the etcd backend, with its cluster test; RV_ETCD=0 skips
# it).  Under the sanitizer build listing.sh lists NKEYS_SAN (default
# 100,000) keys instead of 200,000, to keep the whole run near 8 minutes.
#
# Each area script mounts its own store in its own temporary directory and
# prints one ok / not ok line per check (lib.sh); this runner only counts
# them.  With a sanitizer build every script also fails on any ASan, LSan or
# UBSan report of its daemons (lib.sh rv_san_check).  A script that dies
# without its summary (a crash, a timeout) counts as one more failure.
# The daemons run from copies of the binaries taken at the start, so a
# rebuild during the run changes nothing.  Output goes to the terminal and
# to $RV_OUT (default: a new /tmp/revfs-integration.XXXXXX).
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=${RV_OUT:-$(mktemp /tmp/revfs-integration.XXXXXX)}
TMO=${RV_TIMEOUT:-300}
BIN=$(mktemp -d /tmp/revfs-bin.XXXXXX)
trap 'rm -rf "$BIN"' EXIT

# copy_bin PATH N: a private copy, still named revfs (the mount helper
# insists on the name)
copy_bin() {
	mkdir -p "$BIN/$2" && cp "$1" "$BIN/$2/revfs" && echo "$BIN/$2/revfs"
}
BUILDS=()
if [ -n "${REVFS:-}" ]; then
	BUILDS=("$REVFS")
else
	[ -x build/revfs ] && BUILDS+=("$(copy_bin build/revfs plain)")
	if [ "${RV_SAN:-1}" != 0 ] && [ -x build/san/revfs ]; then
		BUILDS+=("$(copy_bin build/san/revfs san)")
	fi
	[ ${#BUILDS[@]} -gt 0 ] || BUILDS=(build/revfs) # lib.sh bails out
fi

etcd=0
if [ $# -eq 0 ]; then
	set -- basic names history badinput crash daemon listing
	[ -f tests/integration/ops.sh ] && set -- "$@" ops
	for s in watch informer inotify leases control review threads; do
		[ -f tests/integration/$s.sh ] && set -- "$@" $s
	done
	[ "${RV_ETCD:-1}" != 0 ] && [ -x tests/integration/etcd_run.sh ] &&
		etcd=1
fi
pass=0
fail=0

# run_one CMD...: CMD's output to the terminal and $OUT.one, its status in
# st.  It runs in the background so that a Ctrl-C or TERM of this runner
# reaches it (timeout(1) puts it in its own process group): it is sent TERM,
# and the script's trap unmounts and cleans up before the runner exits.
RUN_PID=""
run_one() {
	"$@" > >(tee "$OUT.one") 2>&1 &
	RUN_PID=$!
	wait "$RUN_PID"
	st=$?
	RUN_PID=""
	sleep 0.2 # let tee finish writing
}
trap 'echo "# interrupted"
	[ -n "$RUN_PID" ] && kill -TERM "$RUN_PID" && wait "$RUN_PID"
	exit 130' INT TERM HUP

# count LOG STATUS NAME SUMMARY_RE: add a script's ok / not ok lines
count() {
	local p f
	p=$(grep -c '^ok ' "$1")
	f=$(grep -c '^not ok ' "$1")
	if ! grep -Eq "$4" "$1"; then
		echo "not ok - $3 ended without its summary (status $2)" |
			tee -a "$OUT"
		f=$((f + 1))
	elif [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $3 exited $2 with no failed check" | tee -a "$OUT"
		f=$((f + 1))
	fi
	echo "# $3: $p passed, $f failed" | tee -a "$OUT"
	pass=$((pass + p))
	fail=$((fail + f))
}

for REVFS in "${BUILDS[@]}"; do
	export REVFS
	san=0
	[ "$REVFS" = "$BIN/san/revfs" ] || [[ $REVFS == */san/revfs ]] && san=1
	for s in "$@"; do
		s=tests/integration/${s%.sh}.sh
		echo "### $s (REVFS=$REVFS)" | tee -a "$OUT"
		start=$(date +%s)
		export RV_IS_SAN=$san
		if [ $san = 1 ]; then
			export NKEYS=${NKEYS_SAN:-100000}
		else
			unset NKEYS
		fi
		# the script's own trap unmounts on the TERM timeout sends
		run_one timeout -k 30 "$TMO" nice bash "$s"
		cat "$OUT.one" >>"$OUT"
		count "$OUT.one" "$st" "$s ($(($(date +%s) - start)) s)" \
			"^# $(basename "$s" .sh): [0-9]+ passed"
	done
done
unset NKEYS
if [ $etcd = 1 ]; then
	echo "### tests/integration/etcd_run.sh" | tee -a "$OUT"
	start=$(date +%s)
	unset REVFS
	REVFS_REAL=${BUILDS[0]} run_one timeout -k 30 $((TMO * 2)) nice \
		tests/integration/etcd_run.sh
	cat "$OUT.one" >>"$OUT"
	# its own summary line already counts its checks
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT.one" | tail -n1)
	if [ -n "$line" ]; then
		p=${line%% passed*}
		f=${line#*passed, }
		f=${f%% failed*}
		[ "$st" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	else
		echo "not ok - etcd_run.sh ended without its summary (status $st)"
		p=0
		f=1
	fi
	echo "# etcd_run.sh: $p passed, $f failed ($(($(date +%s) - start)) s)" |
		tee -a "$OUT"
	pass=$((pass + p))
	fail=$((fail + f))
fi
rm -f "$OUT.one"
echo "$pass passed, $fail failed" | tee -a "$OUT"
[ "$fail" -eq 0 ]
