#!/usr/bin/env bash
# tests/bench/run.sh — build and run the engine benchmarks (`make bench`).
#
#   tests/bench/run.sh               the engine part: ~8 minutes, plus building
#                                    the 1,000,000 x 10 store (budget 5 min)
#                                    and loading etcd's copy (~5 min)
#   QUICK=1 tests/bench/run.sh       small sizes (engine part: 1-2 minutes)
#
# Environment:
#   BENCH_ONLY="put open lease watch"  run only these
#   BENCH_DIR=DIR        where the temporary stores go (default: a new
#                        mktemp -d under $TMPDIR or /tmp, removed at exit)
#   BENCH_OPEN_DIR=DIR   keep bench_open's big store (and etcd's copy of
#                        its keys) in DIR and reuse them on later runs
#                        (default: inside the temporary dir)
#   BENCH_NICE=N         run the benchmarks under `nice -n N`
#   BENCH_FS=0           skip the filesystem benchmarks (tests/bench/fs_*.sh)
#
# Every figure is printed; nothing is written outside the temporary dir
# unless BENCH_OPEN_DIR says so.  Speed is reported, never asserted: the exit
# status is non-zero only if a benchmark failed to run or saw a wrong result.
set -u
cd "$(dirname "$0")/../.."

QUICK=${QUICK:-0}
ONLY=${BENCH_ONLY:-put open lease watch}
B=build/bench

TMP=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/revfs-bench.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

bins=""
for b in $ONLY; do
	bins="$bins $B/bench_$b"
done
# Only the benchmarks and what they link: someone else's broken file
# elsewhere does not stop them.
if ! make -s $bins; then
	echo "bench: build failed" >&2
	exit 1
fi

NICE=()
if [ -n "${BENCH_NICE:-}" ]; then
	NICE=(nice -n "$BENCH_NICE")
fi

echo "# revfs engine benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "# mode: $([ "$QUICK" = 1 ] && echo quick || echo full)"
echo "# machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
echo "# data dir: $TMP on $(df -PT "$TMP" | awk 'NR==2 {print $1 " (" $2 ")"}')"

# The etcd baselines need Debian's etcd-server and etcd-client.
ETCD=()
if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
	ETCD=(--etcd)
else
	echo "# etcd or etcdctl not installed: no etcd baselines"
fi

RAN=0
FAILED=0
run() { # $1 = name, rest = command
	local name=$1 rc
	shift
	echo
	echo "# --- $name: $*"
	echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	"${NICE[@]}" "$@"
	rc=$?
	RAN=$((RAN + 1))
	if [ "$rc" -ne 0 ]; then
		FAILED=$((FAILED + 1))
		echo "# $name FAILED (exit $rc)"
	fi
}

for b in $ONLY; do
	case $b in
	put)
		if [ "$QUICK" = 1 ]; then
			run put $B/bench_put --dir "$TMP" --seconds 1
		else
			run put $B/bench_put --dir "$TMP" --seconds 2 --rounds 3
		fi
		;;
	open)
		if [ "$QUICK" = 1 ]; then
			run open $B/bench_open --dir "${BENCH_OPEN_DIR:-$TMP/open}" \
				--keys 50000 --versions 5 --ranges 20 --budget 20 \
				"${ETCD[@]}"
		else
			run open $B/bench_open --dir "${BENCH_OPEN_DIR:-$TMP/open}" \
				--keys 1000000 --versions 10 --ranges 100 --budget 300 \
				"${ETCD[@]}"
		fi
		;;
	lease)
		if [ "$QUICK" = 1 ]; then
			run lease $B/bench_lease --dir "$TMP" --quick
		else
			run lease $B/bench_lease --dir "$TMP" --leases 10000 \
				--seconds 60 --idle-seconds 5 --baseline-seconds 20
		fi
		;;
	watch)
		if [ "$QUICK" = 1 ]; then
			run watch $B/bench_watch --dir "$TMP" --seconds 5
			run watch-100x100 $B/bench_watch --dir "$TMP" \
				--prefix-watchers 0 --all-watchers 100 --rate 100 \
				--writers 32 --seconds 3 "${ETCD[@]}"
		else
			run watch $B/bench_watch --dir "$TMP" --seconds 20
			# The loads of issue 3's etcd figures, engine and etcd
			# in the same run: 100 watchers at 100 and 500 puts/s.
			# 32 writers: etcd's puts take tens of ms under this
			# load, and the rate must not be capped by too few.
			run watch-100x100 $B/bench_watch --dir "$TMP" \
				--prefix-watchers 0 --all-watchers 100 --rate 100 \
				--writers 32 --seconds 10 "${ETCD[@]}"
			run watch-100x500 $B/bench_watch --dir "$TMP" \
				--prefix-watchers 0 --all-watchers 100 --rate 500 \
				--writers 32 --seconds 10 "${ETCD[@]}"
		fi
		;;
	*)
		echo "bench: unknown benchmark '$b'" >&2
		FAILED=$((FAILED + 1))
		;;
	esac
done

# The filesystem benchmarks (tests/bench/fs_*.sh, issue 4) mount
# build/revfs and need root for their tmpfs: BENCH_FS=0 skips them.
# They read QUICK themselves.
if [ "${BENCH_FS:-1}" = 1 ]; then
	for s in ls cat write; do
		run fs_$s tests/bench/fs_$s.sh
	done
fi

echo
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: $RAN ran, $FAILED failed"
[ "$FAILED" -eq 0 ]
