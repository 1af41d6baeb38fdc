#!/bin/bash
# tests/conformance/run.sh — compare the revfs engine with a real etcd.
#
#   tests/conformance/run.sh [--self | --etcd-backend] [conformance options...]
#
# Starts Debian's etcd (/usr/bin/etcd) on free loopback ports with its own
# mktemp -d data directory, waits until it is healthy, and runs
# build/conformance against it: one seeded random sequence of operations
# replayed on etcd and on the engine, every answer compared (see
# docs/conformance.md).  With --self the second side is a second fresh etcd
# instead of the engine: the test's self-check.  With --etcd-backend side B
# is the engine API's etcd backend (eng_open_etcd) on a second fresh etcd.  Environment: SEED (default:
# from the clock, printed), OPS (default 2000), CONF_BIN (default
# build/conformance), ETCD (default: etcd from PATH, Debian's /usr/bin/etcd).  Everything started here is killed and every directory
# removed on any exit.  Then (not with --etcd-backend) the checker is
# checked: a short run on fresh stores in which one answer of side B is
# falsified (--corrupt) must fail at that op.  Against the engine, last,
# the NOSPACE probes run on an etcd started with a 1 MiB quota.  The last
# line is "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."

BIN=${CONF_BIN:-build/conformance}
ETCD=${ETCD:-etcd}
OPS=${OPS:-2000}
SEED=${SEED:-$(( $(date +%s%N) / 1000 % 1000000000 ))}
MODE=engine
if [ "${1:-}" = "--self" ]; then
	MODE=self
	shift
elif [ "${1:-}" = "--etcd-backend" ]; then
	MODE=etcd-backend
	shift
fi

TMP=$(mktemp -d /tmp/revfs-conf-etcd.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "conformance: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

[ -x "$BIN" ] || fail "$BIN is missing (run make)"
command -v "$ETCD" >/dev/null || fail "$ETCD is not installed (Debian: etcd-server)"

port_free() {
	! ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$(( 20000 + RANDOM % 30000 ))
		if port_free "$p" && port_free "$((p + 1))"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# start_etcd NAME [ETCD ARGS...]: sets URL to the client URL of a fresh,
# healthy etcd.
start_etcd() {
	local name=$1 port try pid i
	shift
	for try in 1 2 3; do
		port=$(free_port) || fail "no free port"
		"$ETCD" --name "$name" --data-dir "$TMP/$name.data" \
			--listen-client-urls "http://127.0.0.1:$port" \
			--advertise-client-urls "http://127.0.0.1:$port" \
			--listen-peer-urls "http://127.0.0.1:$((port + 1))" \
			--initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
			--initial-cluster "$name=http://127.0.0.1:$((port + 1))" \
			--experimental-watch-progress-notify-interval 200ms \
			--max-txn-ops 1024 "$@" \
			>"$TMP/$name.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		for i in $(seq 1 100); do
			if curl -s -m 1 "http://127.0.0.1:$port/health" 2>/dev/null |
				grep -q '"health":"true"'; then
				URL="http://127.0.0.1:$port"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		# a port taken meanwhile, or a slow start: try again elsewhere
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rm -rf "$TMP/$name.data"
	done
	tail -n 20 "$TMP/$name.log" >&2
	fail "etcd $name did not become healthy"
}

stop_etcds() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	PIDS=()
	rm -rf "$TMP"/*.data
}

PASS=0
FAIL=0
# count_summary OUTPUT: add the program's "conformance: N passed, N failed"
count_summary() {
	local line
	line=$(grep -E '^conformance: [0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
	if [ -z "$line" ]; then
		FAIL=$((FAIL + 1)) # crashed before its summary
		return
	fi
	PASS=$((PASS + $(echo "$line" | sed -E 's/^conformance: ([0-9]+) passed.*/\1/')))
	FAIL=$((FAIL + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
}

start_etcd a
A=$URL
ARGS=(--endpoint "$A" --seed "$SEED" --ops "$OPS")
if [ "$MODE" = self ]; then
	start_etcd b
	ARGS+=(--endpoint2 "$URL")
elif [ "$MODE" = etcd-backend ]; then
	start_etcd b
	ARGS+=(--engine-etcd "$URL")
fi
echo "# conformance ($MODE): etcd $("$ETCD" --version | head -n 1 | sed 's/.*: //') at $A, seed $SEED, $OPS ops"
"$BIN" "${ARGS[@]}" "$@" 2>&1 | tee "$TMP/run.out"
rc=${PIPESTATUS[0]}
count_summary "$TMP/run.out"
if [ "$rc" -ne 0 ]; then
	echo "# conformance failed (exit $rc); replay: SEED=$SEED OPS=$OPS $0 $*"
fi

if [ "$MODE" != etcd-backend ]; then
	# The checker must catch a difference: falsify one answer of side B
	# (the engine, or with --self the second etcd) on fresh stores and
	# expect the run to fail at that op.  In make test too, so a checker
	# that stopped comparing would not pass silently.
	stop_etcds
	start_etcd a
	A=$URL
	CARGS=(--endpoint "$A")
	if [ "$MODE" = self ]; then
		start_etcd b
		CARGS+=(--endpoint2 "$URL")
	fi
	BAD=$(( SEED % 150 + 20 ))
	"$BIN" "${CARGS[@]}" --seed "$SEED" --ops 200 --expiries 0 \
		--no-scenarios --no-watches --no-restart --corrupt "$BAD" \
		>"$TMP/corrupt.out" 2>&1
	crc=$?
	# The report names the op, the seed, both answers and the replay.
	if [ "$crc" -eq 1 ] &&
		grep -q "^DIFFERENCE at op #[0-9]* (seed $SEED)" "$TMP/corrupt.out" &&
		grep -q '^  op: ' "$TMP/corrupt.out" &&
		grep -q '^  A: ' "$TMP/corrupt.out" &&
		grep -q '^  B: ' "$TMP/corrupt.out" &&
		grep -q "^  replay: .* --seed $SEED " "$TMP/corrupt.out"; then
		echo "ok - a falsified answer (op #$BAD) is reported: $(grep -m1 '^DIFFERENCE' "$TMP/corrupt.out")"
		PASS=$((PASS + 1))
	else
		echo "not ok - a falsified answer at op #$BAD went unnoticed (exit $crc)"
		sed 's/^/#   /' "$TMP/corrupt.out" | tail -n 20
		FAIL=$((FAIL + 1))
	fi
fi
if [ "$MODE" = engine ]; then
	# The NOSPACE alarm: an etcd with a 1 MiB quota against an engine with
	# the same quota (tests/conformance/nospace.c).
	stop_etcds
	start_etcd q --quota-backend-bytes $((1024 * 1024))
	"$BIN" --nospace "$URL" 2>&1 | tee "$TMP/nospace.out"
	count_summary "$TMP/nospace.out"
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
