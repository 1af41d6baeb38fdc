#!/usr/bin/env bash
# tests/fuzz/run.sh — build the libFuzzer targets with clang and run each for
# a bounded time (`make fuzz` runs this).
#
#   tests/fuzz/run.sh [TARGET...]        # default: name codec opts snapshot
#   FUZZ_SECONDS=60 tests/fuzz/run.sh    # per target (default 20; CI: 60)
#
# Targets (tests/fuzz/fuzz_*.c): name (fs/fs_name.c's encode/decode and the
# @-name parser), codec (engine/codec.c's record and history-key decoding),
# opts (daemon/rv_opts.c's command line), snapshot (engine/snapshot_fmt.c's
# reader).  The sources are compiled here with -fsanitize=fuzzer-no-link,
# address,undefined into build/fuzz/, not through the Makefile's rules.
# Each run starts from the seed corpus tests/fuzz/corpus/TARGET (read only;
# new inputs go to a scratch directory) and a crash leaves its input in
# build/fuzz/crash-TARGET-*.  A crash becomes a unit test: copy the input
# into tests/fuzz/regress/TARGET/ (tests/unit/test_fuzz_replay.c runs every
# seed and every such input through the target's properties in make test,
# plain, under ASan+UBSan and valgrind), fix the bug, and pin the fixed
# behaviour with a test of its own there.  Ends with "N passed, N failed"
# (a target that crashed or did not build is a failure).
set -u
cd "$(dirname "$0")/../.." || exit 1
SECS=${FUZZ_SECONDS:-20}
renice -n 10 $$ >/dev/null 2>&1 # the machine is shared
CC=${FUZZ_CC:-clang}
B=build/fuzz
mkdir -p "$B/obj"
FUSE_CFLAGS=$(pkg-config --cflags fuse3)
FUSE_LIBS=$(pkg-config --libs fuse3)
XLIBS="$(pkg-config --libs libcurl jansson 2>/dev/null) -lleveldb -lm"
CFLAGS="-std=gnu11 -g -O1 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread -I.
 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
 -fno-sanitize-recover=undefined $FUSE_CFLAGS"
LDFLAGS="-fsanitize=fuzzer,address,undefined -pthread"

if ! command -v "$CC" >/dev/null; then
	echo "fuzz: $CC not found"
	echo "0 passed, 1 failed"
	exit 1
fi

# compile SRC...: one object per source, rebuilt when the source or any
# header is newer.
compile() {
	local s o
	for s in "$@"; do
		o=$B/obj/$(echo "${s%.c}" | tr / _).o
		if [ ! -f "$o" ] || [ "$s" -nt "$o" ] ||
			[ -n "$(find engine fs daemon tests/fuzz -name '*.h' -newer "$o" 2>/dev/null | head -n 1)" ]; then
			# shellcheck disable=SC2086
			$CC $CFLAGS -c -o "$o" "$s" || return 1
		fi
		echo "$o"
	done
}

build() { # build TARGET
	local t=$1 objs
	case $t in
	name) objs=$(compile fs/*.c engine/*.c) || return 1 ;;
	codec) objs=$(compile engine/*.c) || return 1 ;;
	opts) objs=$(compile daemon/rv_opts.c daemon/rv_log.c engine/*.c) ||
		return 1 ;;
	snapshot) objs=$(compile engine/*.c) || return 1 ;;
	*)
		echo "fuzz: unknown target $t"
		return 1
		;;
	esac
	rm -f "$B/lib_$t.a"
	# shellcheck disable=SC2086
	ar rcs "$B/lib_$t.a" $objs &&
		$CC $CFLAGS $LDFLAGS -o "$B/fuzz_$t" "tests/fuzz/fuzz_$t.c" \
			"$B/lib_$t.a" $XLIBS $FUSE_LIBS
}

[ $# -gt 0 ] || set -- name codec opts snapshot
pass=0
fail=0
for t in "$@"; do
	echo "### fuzz $t (${SECS}s)"
	if ! build "$t"; then
		echo "not ok - fuzz $t: does not build"
		fail=$((fail + 1))
		continue
	fi
	work=$(mktemp -d "/tmp/revfs-fuzz-$t.XXXXXX")
	log=$B/fuzz_$t.log
	# -rss_limit_mb: the reader's bounded buffers must stay far below it.
	"$B/fuzz_$t" "$work" "tests/fuzz/corpus/$t" \
		-max_total_time="$SECS" -max_len=4096 -rss_limit_mb=1024 \
		-timeout=10 -artifact_prefix="$B/crash-$t-" -print_final_stats=1 \
		>"$log" 2>&1
	st=$?
	rm -rf "$work"
	runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
	cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1)
	if [ "$st" -eq 0 ]; then
		echo "ok - fuzz $t: ${runs:-?} runs in ${SECS}s, ${cov:-cov ?}, no crash"
		pass=$((pass + 1))
	else
		echo "not ok - fuzz $t: exit $st (log $log)"
		grep -E 'ERROR|property failed|SUMMARY|Test unit written' "$log" |
			head -n 20 | sed 's/^/#   /'
		echo "#   keep it: cp $B/crash-$t-* tests/fuzz/regress/$t/"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
