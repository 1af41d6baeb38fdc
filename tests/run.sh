#!/usr/bin/env bash
# tests/run.sh — run revfs's test suites and sum them up.
#
#   tests/run.sh [all]   unit + san + integration + conformance + examples
#                        (make test: under 15 minutes on 2 cores)
#   tests/run.sh extra   valgrind + integration-san + etcd + conformance-etcd
#                        (make test-extra; CI runs both)
#   tests/run.sh every   both
#   tests/run.sh SUITE.. unit|san|valgrind|integration|integration-san|etcd|
#                        conformance|conformance-etcd|examples
# san: the unit tests built with ASan+UBSan; integration-san: the mount's
# suite against the ASan+UBSan daemon; etcd: the suite on the etcd backend
# (tests/integration/etcd_run.sh).
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
mkdir -p "$LOG_DIR" || exit 2
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

UNIT_TIMEOUT=${UNIT_TIMEOUT:-900} # seconds per unit test binary

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
		# A hung test fails instead of hanging the run (CI has no
		# other bound; the slowest binary takes ~2 min under valgrind).
		timeout -k 10 "$UNIT_TIMEOUT" "$@" "$t" >"$log" 2>&1
		rc=$?
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			echo "timed out after $UNIT_TIMEOUT s" >>"$log"
		fi
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

# `all` (make test) stays under 15 minutes on a 2-core machine; `extra`
# (make test-extra, which CI also runs) holds the slower suites.
ALL="unit san integration conformance examples"
EXTRA="valgrind integration-san etcd conformance-etcd"

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
		# the plain daemon; the etcd re-run is its own suite
		RV_ETCD=0 RV_SAN=0 run_script_suite integration \
			tests/integration/run.sh
		;;
	integration-san)
		# the same scripts against the ASan+UBSan daemon
		RV_ETCD=0 REVFS=build/san/revfs run_script_suite \
			integration-san tests/integration/run.sh
		;;
	etcd) run_script_suite etcd tests/integration/etcd_run.sh ;;
	conformance) run_script_suite conformance tests/conformance/run.sh ;;
	conformance-etcd)
		# the same sequence through the etcd backend (eng_open_etcd)
		run_script_suite conformance-etcd tests/conformance/run.sh \
			--etcd-backend
		;;
	examples) run_script_suite examples examples/run.sh ;;
	*) echo "unknown suite $1" >&2; exit 2 ;;
	esac
}

if [ "${1:-all}" = all ]; then
	set -- $ALL
elif [ "$1" = extra ]; then
	set -- $EXTRA
elif [ "$1" = every ]; then
	set -- $ALL $EXTRA
fi
for s in "$@"; do
	echo "# ---- $s"
	suite "$s"
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
