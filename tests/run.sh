#!/usr/bin/env bash
# tests/run.sh — run revfs's test suites and sum them up.
#
#   tests/run.sh all           unit + san + valgrind + integration + etcd + conformance + examples
#   tests/run.sh unit|san|valgrind|integration|etcd|conformance|examples
# (etcd: the integration suite on the etcd backend, tests/integration/etcd_run.sh)
#
# Unit suites count cmocka's test cases; the other suites end their output
# with a line "N passed, N failed", which is summed.  The last line of this
# script is the total in the same form, and the exit code is non-zero if
# anything failed or a suite could not run.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PASS=0
FAIL=0
LOG_DIR=${TEST_LOG_DIR:-$(mktemp -d /tmp/revfs-tests.XXXXXX)}
echo "# logs in $LOG_DIR"

add_counts() { # $1 = log file with a "N passed, N failed" line
	local line p f
	line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
	if [ -z "$line" ]; then
		echo "not ok - $(basename "$1" .log): no summary line (crashed?)"
		FAIL=$((FAIL + 1))
		return
	fi
	p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/')
	f=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/')
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
}

run_cmocka_dir() { # $1 = dir of test binaries, $2 = suite name, $3.. = wrapper
	local dir=$1 name=$2 t log p f rc
	shift 2
	if ! ls "$dir"/test_* >/dev/null 2>&1; then
		echo "not ok - $name: no test binaries in $dir (run make first)"
		FAIL=$((FAIL + 1))
		return
	fi
	for t in "$dir"/test_*; do
		[ -x "$t" ] || continue
		log="$LOG_DIR/$name-$(basename "$t").log"
		"$@" "$t" >"$log" 2>&1
		rc=$?
		p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
		f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1 # crashed, leaked (valgrind) or sanitizer report
		fi
		PASS=$((PASS + p))
		FAIL=$((FAIL + f))
		if [ "$rc" -eq 0 ]; then
			echo "ok - $name $(basename "$t") ($p passed)"
		else
			echo "not ok - $name $(basename "$t") (exit $rc, $f failed; log: $log)"
			tail -n 30 "$log" | sed 's/^/#   /'
		fi
	done
}

run_script_suite() { # $1 = name, $2 = script, args...
	local name=$1 script=$2 log
	shift 2
	log="$LOG_DIR/$name.log"
	if [ ! -x "$script" ]; then
		echo "not ok - $name: $script is missing"
		FAIL=$((FAIL + 1))
		return
	fi
	"$script" "$@" 2>&1 | tee "$log"
	add_counts "$log"
}

suite() {
	case $1 in
	unit) run_cmocka_dir build/tests unit ;;
	san)
		export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
		export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
		run_cmocka_dir build/san/tests san
		;;
	valgrind)
		run_cmocka_dir build/tests valgrind env RV_UNDER_VALGRIND=1 \
			valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
			--errors-for-leak-kinds=definite,indirect --error-exitcode=99
		;;
	integration)
		# the etcd re-run is its own suite below: don't run it twice
		RV_ETCD=0 run_script_suite integration tests/integration/run.sh
		;;
	etcd) run_script_suite etcd tests/integration/etcd_run.sh ;;
	conformance) run_script_suite conformance tests/conformance/run.sh ;;
	examples) run_script_suite examples examples/run.sh ;;
	*) echo "unknown suite $1" >&2; exit 2 ;;
	esac
}

if [ "${1:-all}" = all ]; then
	for s in unit san valgrind integration etcd conformance examples; do
		echo "# ---- $s"
		suite "$s"
	done
else
	for s in "$@"; do
		echo "# ---- $s"
		suite "$s"
	done
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
