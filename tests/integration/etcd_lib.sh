# etcd_lib.sh — start private etcd members on loopback for the etcd-backend
# tests (sourced by tests/integration/etcd_*.sh and tests/bench/etcd_fuse.sh).
#
# Every member runs Debian's /usr/bin/etcd on free loopback ports with its
# data directory under a directory the caller made with mktemp -d; its pid
# is appended to $ETCD_PIDS_FILE so that the caller's trap (etcd_kill_all)
# kills it whatever happens.  Members are started with a 200 ms progress
# notification interval (the backend's progress markers rely on it; see
# docs/etcd-backend.md).

ETCD_BIN=${ETCD_BIN:-/usr/bin/etcd}
ETCD_EXTRA=(${ETCD_EXTRA[@]+"${ETCD_EXTRA[@]}"}) # more etcd flags

etcd_port_free() {
	! ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

# etcd_free_port: a port p with p and p+1 free.
etcd_free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 30000))
		if etcd_port_free "$p" && etcd_port_free "$((p + 1))"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# etcd_healthy URL: the member answers /health with true.
etcd_healthy() {
	curl -s -m 1 "$1/health" 2>/dev/null | grep -q '"health":"true"'
}

# etcd_spawn NAME DIR CPORT PPORT CLUSTER STATE: start one member in the
# background (its log in DIR/NAME.log); prints its pid.
etcd_spawn() {
	local name=$1 dir=$2 cport=$3 pport=$4 cluster=$5 state=$6
	setsid "$ETCD_BIN" --name "$name" --data-dir "$dir/$name.etcd" \
		--listen-client-urls "http://127.0.0.1:$cport" \
		--advertise-client-urls "http://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" \
		--initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "$cluster" \
		--initial-cluster-state "$state" \
		--initial-cluster-token "revfs-test-$$" \
		--experimental-watch-progress-notify-interval 200ms \
		--max-txn-ops 1024 "${ETCD_EXTRA[@]}" \
		</dev/null >>"$dir/$name.log" 2>&1 &
	local pid=$!
	[ -n "${ETCD_PIDS_FILE:-}" ] && echo "$pid" >>"$ETCD_PIDS_FILE"
	echo "$pid"
}

# etcd_start_single DIR: a one-member etcd; sets ETCD_URL and ETCD_PID.
# Returns 1 if it does not become healthy in 20 s (after 3 tries).
etcd_start_single() {
	local dir=$1 try port i
	mkdir -p "$dir"
	for try in 1 2 3; do
		port=$(etcd_free_port) || return 1
		ETCD_PID=$(etcd_spawn m "$dir" "$port" "$((port + 1))" \
			"m=http://127.0.0.1:$((port + 1))" new)
		ETCD_URL=http://127.0.0.1:$port
		for i in $(seq 1 100); do
			etcd_healthy "$ETCD_URL" && return 0
			kill -0 "$ETCD_PID" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$ETCD_PID" 2>/dev/null
		rm -rf "$dir/m.etcd"
	done
	return 1
}

# etcd_start_cluster DIR N: N members; sets ETCD_URLS (array), ETCD_MPIDS
# (array), ETCD_MPORTS (client ports) and ETCD_CLUSTER (for restarts).
# A port found free can be taken by another program before etcd binds it
# (a member then exits: "address already in use"): up to 3 tries, each with
# new ports and new data directories.
etcd_start_cluster() {
	local dir=$1 n=$2 try i p cluster ok
	mkdir -p "$dir"
	for try in 1 2 3; do
		ETCD_URLS=()
		ETCD_MPIDS=()
		ETCD_MPORTS=()
		cluster=""
		for ((i = 0; i < n; i++)); do
			p=$(etcd_free_port) || return 1
			# keep the ports of earlier members out of the way
			while [[ " ${ETCD_MPORTS[*]:-} " == *" $p "* ]] ||
				[[ " ${ETCD_MPORTS[*]:-} " == *" $((p - 1)) "* ]] ||
				[[ " ${ETCD_MPORTS[*]:-} " == *" $((p + 1)) "* ]]; do
				p=$(etcd_free_port) || return 1
			done
			ETCD_MPORTS+=("$p")
			cluster="$cluster${cluster:+,}m$i=http://127.0.0.1:$((p + 1))"
		done
		ETCD_CLUSTER=$cluster
		for ((i = 0; i < n; i++)); do
			p=${ETCD_MPORTS[$i]}
			ETCD_MPIDS+=("$(etcd_spawn "m$i" "$dir" "$p" \
				"$((p + 1))" "$cluster" new)")
			ETCD_URLS+=("http://127.0.0.1:$p")
		done
		for i in $(seq 1 150); do
			ok=1
			for p in "${ETCD_URLS[@]}"; do
				etcd_healthy "$p" || ok=0
			done
			[ "$ok" = 1 ] && return 0
			# a member that exited will not come back: try again
			for p in "${ETCD_MPIDS[@]}"; do
				kill -0 "$p" 2>/dev/null || ok=dead
			done
			[ "$ok" = dead ] && break
			sleep 0.2
		done
		for p in "${ETCD_MPIDS[@]}"; do
			kill -9 "$p" 2>/dev/null
		done
		for p in "${ETCD_MPIDS[@]}"; do
			while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
		done
		for ((i = 0; i < n; i++)); do
			rm -rf "$dir/m$i.etcd"
		done
	done
	return 1
}

# etcd_restart_member DIR I: restart member I of the cluster (same data).
etcd_restart_member() {
	local dir=$1 i=$2 p=${ETCD_MPORTS[$2]}
	ETCD_MPIDS[$i]=$(etcd_spawn "m$i" "$dir" "$p" "$((p + 1))" \
		"$ETCD_CLUSTER" existing)
}

# etcd_kill_all: kill every member whose pid is in $ETCD_PIDS_FILE.
etcd_kill_all() {
	local p
	[ -n "${ETCD_PIDS_FILE:-}" ] && [ -f "$ETCD_PIDS_FILE" ] || return 0
	while read -r p; do
		kill -9 "$p" 2>/dev/null
	done <"$ETCD_PIDS_FILE"
	: >"$ETCD_PIDS_FILE"
}
