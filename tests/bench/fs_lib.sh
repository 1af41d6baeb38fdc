# fs_lib.sh — shared pieces of the filesystem benchmarks (tests/bench/fs_*.sh).
#
# Sourced, never run.  Gives the script its own temporary directory ($T,
# mktemp -d under BENCH_DIR, TMPDIR or /tmp) and a trap that ALWAYS unmounts
# what the script mounted (revfs with fusermount3 -u then -uz, tmpfs with
# umount then umount -l), kills what it started and removes $T: on success,
# failure and Ctrl-C alike.  It builds what the benchmarks run (build/revfs,
# build/bench/bench_fs_files, and the integration suite's bulk loader
# tests/integration/loadkeys.c into $T), prints the machine, and offers
# timing and peak-RSS helpers.  Figures are printed, never asserted: a
# script fails only when something did not run or gave a wrong result.
#
# Environment: QUICK=1 (small sizes), REVFS (default build/revfs),
# BENCH_DIR (where $T goes), FS_KEEP=1 (keep $T).

set -u

FS_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REVFS=${REVFS:-$FS_REPO/build/revfs}
case $REVFS in /*) ;; *) REVFS=$FS_REPO/$REVFS ;; esac
FS_FILES=$FS_REPO/build/bench/bench_fs_files
QUICK=${QUICK:-0}
FS_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/revfs-$FS_NAME.XXXXXX") || exit 1
FS_MOUNTS=() # revfs mount points
FS_TMPFS=()  # tmpfs mount points
FS_PIDS=()   # daemons and other children
FS_FAILED=0

fs_cleanup() {
	local m p
	for m in "${FS_MOUNTS[@]}"; do
		if mountpoint -q "$m"; then
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"
		fi
	done
	for m in "${FS_TMPFS[@]}"; do
		if mountpoint -q "$m"; then
			umount "$m" 2>/dev/null || umount -l "$m"
		fi
	done
	for p in "${FS_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if [ "${FS_KEEP:-0}" = 1 ]; then
		echo "# kept $T"
	else
		rm -rf "$T"
	fi
}
trap fs_cleanup EXIT
trap 'exit 130' INT TERM

# fs_fail WHAT: a benchmark could not run or saw a wrong result.
fs_fail() {
	FS_FAILED=$((FS_FAILED + 1))
	echo "FAILED: $*"
}

fs_build() {
	make -C "$FS_REPO" -s build/revfs build/libengine.a \
		build/bench/bench_fs_files || return 1
	cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$FS_REPO" -pthread \
		-o "$T/loadkeys" "$FS_REPO/tests/integration/loadkeys.c" \
		"$FS_REPO/build/libengine.a" -lleveldb \
		$(pkg-config --libs libcurl jansson 2>/dev/null) -lm
}

fs_load() {
	cut -d' ' -f1-3 /proc/loadavg
}

fs_machine() {
	echo "# $FS_NAME, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$FS_REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), mode $([ "$QUICK" = 1 ] && echo quick || echo full)"
	echo "# machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
	echo "# data dir: $T on $(df -PT "$T" | awk 'NR==2 {print $1 " (" $2 ")"}')"
	echo "# load: $(fs_load)"
}

# fs_mount NAME [OPTS]: start revfs in the foreground on $T/NAME.mnt with
# its store in $T/NAME.data; sets MNT, PID.  OPTS are extra -o options.
fs_mount() {
	local name=$1 opts=${2:+,$2} i
	MNT=$T/$name.mnt
	mkdir -p "$MNT"
	env --default-signal=INT,QUIT "$REVFS" -f \
		-o "data=$T/$name.data,loglevel=warn$opts" "$MNT" \
		</dev/null >>"$T/$name.log" 2>&1 &
	PID=$!
	FS_PIDS+=("$PID")
	FS_MOUNTS+=("$MNT")
	for ((i = 0; i < 300; i++)); do
		mountpoint -q "$MNT" && return 0
		if ! kill -0 "$PID" 2>/dev/null; then
			tail -n 20 "$T/$name.log"
			return 1
		fi
		sleep 0.1
	done
	echo "revfs did not mount in 30 s" >&2
	return 1
}

# fs_umount: unmount $MNT and wait for its daemon ($PID) to exit.
fs_umount() {
	fusermount3 -u "$MNT" || fusermount3 -uz "$MNT"
	wait "$PID" 2>/dev/null
}

# fs_tmpfs NAME: a private tmpfs on $T/NAME (sets TMPFS).
fs_tmpfs() {
	TMPFS=$T/$1
	mkdir -p "$TMPFS"
	mount -t tmpfs -o size=8g,nr_inodes=0,mode=0755 "bench-$1" "$TMPFS" ||
		return 1
	FS_TMPFS+=("$TMPFS")
}

# fs_hwm_kib PID: the process's peak RSS (VmHWM) in KiB.
fs_hwm_kib() {
	awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}

# fs_time OUTVAR CMD...: run CMD (a shell string, through bash -c), put its
# stdout in $T/out and its wall time in seconds in OUTVAR.
fs_time() {
	local var=$1 t0 t1
	shift
	t0=$(date +%s.%N)
	bash -c "$*" >"$T/out"
	local rc=$?
	t1=$(date +%s.%N)
	printf -v "$var" '%s' "$(awk -v a="$t0" -v b="$t1" \
		'BEGIN { printf "%.3f", b - a }')"
	return $rc
}

# fs_ratio A B: A / B with two decimals.
fs_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'
}

fs_drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

fs_end() {
	echo "# load after: $(fs_load)"
	if [ "$FS_FAILED" -ne 0 ]; then
		echo "# $FS_NAME: $FS_FAILED failure(s)"
		exit 1
	fi
	exit 0
}
