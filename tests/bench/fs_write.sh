#!/usr/bin/env bash
# fs_write.sh — durable small writes through the mount (issue 4, benchmark
# 3): 16 threads create N files of 1 KiB through revfs (default sync=always:
# each close returns after its commit is on disk, closes in flight share a
# group commit), against, in the same run:
#   - etcd 3.4, private (mktemp -d data dir, loopback ports), loaded by
#     bench_fs_files etcd: N puts of 1 KiB from 16 keep-alive HTTP clients
#     through the JSON gateway (every etcd put is durable: fsync'd raft
#     log); and, in the full mode, `etcdctl check perf --load=l` on another
#     private etcd (60 s, 1,000 clients), which prints etcd's throughput;
#   - the local file system of the data dir ($T: ext4 on this machine, the
#     script prints which) with 16 threads and an fsync per file;
#   - revfs again with an fsync per file (what an editor or a careful tool
#     does: the fsync commits, the close has nothing left to do).
#   - bench_null_fuse: a FUSE file system that stores nothing and answers
#     the same requests (LOOKUP, CREATE, GETXATTR, WRITE, FLUSH, RELEASE) at
#     once, on the daemon's 64-thread loop: the kernel's FUSE path and the
#     writers' own cost, i.e. the ceiling of ANY FUSE file system for this
#     load on this machine; revfs is measured against it too.
#
#   tests/bench/fs_write.sh            N = 5,000 per target
#   QUICK=1 tests/bench/fs_write.sh    N = 1,000, no check perf
#   FS_WRITE_FILES=N                   any other N
#   FS_WRITE_CHECK_PERF=0|1            skip or force etcdctl check perf
#
# bench_fs_files checks afterwards that every file has its 1,024 bytes (and
# that etcd holds N keys); a failed open, write, fsync or close fails.  It
# prints the mean time of each call per file; the script adds the mount's
# group commit figures from @stats (files per fsync).
. "$(dirname "$0")/fs_lib.sh"

THREADS=16
SIZE=1024
if [ "$QUICK" = 1 ]; then
	N=${FS_WRITE_FILES:-1000}
	CHECK_PERF=${FS_WRITE_CHECK_PERF:-0}
else
	N=${FS_WRITE_FILES:-5000}
	CHECK_PERF=${FS_WRITE_CHECK_PERF:-1}
fi

fs_build || exit 1
make -C "$FS_REPO" -s build/bench/bench_null_fuse || exit 1
fs_machine
echo "# $THREADS writers, $N files of $SIZE bytes per target"

# files WHAT DIR [fsync]: create the files, set WHAT to the rate
files() {
	local what=$1 dir=$2 line
	shift 2
	mkdir -p "$dir"
	if ! line=$("$FS_FILES" files "$dir" k "$N" "$THREADS" "$SIZE" "$@" |
		tee "$T/files.out" | grep '^RESULT'); then
		fs_fail "$what: the writers failed"
		printf -v "$what" 0
		return
	fi
	printf -v "$what" '%s' "${line##*rate=}"
	echo "$what: ${line#RESULT } (load $(fs_load))"
	grep '^mean per file' "$T/files.out" | sed "s/^/# $what: /"
}

# stat NAME: a counter of the mount's @stats
stat() {
	awk -v n="$1" '$1 == n {print $2}' "$MNT/@stats"
}

# group: how many files the group commits carried since the last call
group() {
	local c f
	c=$(stat revfs_commits_total)
	f=$(stat revfs_fsyncs_total)
	echo "# $1: $((c - ${commits:-0})) commits, $((f - ${fsyncs:-0})) fsyncs: $(fs_ratio "$N" $((f - ${fsyncs:-0}))) files per fsync"
	commits=$c
	fsyncs=$f
}

fs_mount write || {
	fs_fail "mounting revfs"
	fs_end
}
group start >/dev/null
files revfs "$MNT/W"
group revfs
files revfs_fsync "$MNT/W2" fsync
group revfs_fsync
fs_umount

# The FUSE ceiling: the same writers on a file system that does nothing.
NULL_MNT=$T/null.mnt
mkdir -p "$NULL_MNT"
"$FS_REPO/build/bench/bench_null_fuse" "$NULL_MNT" </dev/null \
	>"$T/null.log" 2>&1 &
FS_PIDS+=($!)
FS_MOUNTS+=("$NULL_MNT")
for ((i = 0; i < 100; i++)); do
	mountpoint -q "$NULL_MNT" && break
	sleep 0.1
done
if mountpoint -q "$NULL_MNT"; then
	files null_fuse "$NULL_MNT"
	fusermount3 -u "$NULL_MNT"
else
	fs_fail "bench_null_fuse did not mount (log $T/null.log)"
	null_fuse=0
fi

files local_fsync "$T/local" fsync
echo "# local file system: $(df -PT "$T/local" | awk 'NR==2 {print $2 " on " $1}')"

line=$("$FS_FILES" etcd "$T/etcd" "$N" "$THREADS" "$SIZE" | grep '^RESULT')
if [ -z "$line" ]; then
	fs_fail "etcd: the load failed (log $T/etcd.log)"
	etcd=0
else
	etcd=${line##*rate=}
	echo "etcd: ${line#RESULT } (load $(fs_load))"
fi

# etcdctl check perf --load=l on a private etcd: its own figure of etcd's
# durable write throughput on this machine
perf=0
if [ "$CHECK_PERF" = 1 ] && command -v etcd >/dev/null &&
	command -v etcdctl >/dev/null; then
	for ((i = 0; i < 50; i++)); do
		port=$((20000 + RANDOM % 30000))
		if ! ss -ltn | grep -q ":$port \|:$((port + 1)) "; then
			break
		fi
	done
	curl_url=http://127.0.0.1:$port
	peer_url=http://127.0.0.1:$((port + 1))
	etcd --data-dir "$T/perf.etcd" --name default \
		--listen-client-urls "$curl_url" \
		--advertise-client-urls "$curl_url" \
		--listen-peer-urls "$peer_url" \
		--initial-advertise-peer-urls "$peer_url" \
		--initial-cluster "default=$peer_url" >"$T/perf.etcd.log" 2>&1 &
	FS_PIDS+=($!)
	for ((i = 0; i < 100; i++)); do
		ETCDCTL_API=3 etcdctl --endpoints="$curl_url" endpoint health \
			>/dev/null 2>&1 && break
		sleep 0.2
	done
	ETCDCTL_API=3 etcdctl --endpoints="$curl_url" check perf --load=l \
		>"$T/perf.out" 2>&1
	tr '\r' '\n' <"$T/perf.out" | grep -v '^ *[0-9]* / [0-9]*' |
		sed 's/^/# check perf: /'
	perf=$(grep -o '[0-9]* writes/s' "$T/perf.out" | head -n1 |
		cut -d' ' -f1)
	if [ -z "$perf" ]; then
		fs_fail "etcdctl check perf printed no throughput"
		perf=0
	else
		echo "etcd check perf --load=l: $perf writes/s"
	fi
fi

best_etcd=$(awk -v a="$etcd" -v b="$perf" 'BEGIN { print (a > b ? a : b) }')
echo
echo "RESULT revfs: $revfs files/s durable on close ($THREADS writers, $SIZE B)"
echo "RESULT revfs with fsync per file: $revfs_fsync files/s"
echo "RESULT local fs ($(df -PT "$T" | awk 'NR==2 {print $2}')) with fsync per file: $local_fsync files/s; revfs/local $(fs_ratio "$revfs" "$local_fsync")x"
if [ "$perf" = 0 ]; then
	perf_txt="check perf not run"
else
	perf_txt="check perf $perf writes/s"
fi
echo "RESULT etcd: $etcd puts/s (own load, 16 keep-alive clients), $perf_txt"
echo "RESULT null FUSE file system (nothing stored, nothing synced): $null_fuse files/s; revfs/null $(fs_ratio "$revfs" "$null_fuse")x"
echo "RESULT revfs/etcd(best of the two): $(fs_ratio "$revfs" "$best_etcd")x (aim >= 5x; the null FUSE file system reaches $(fs_ratio "$null_fuse" "$best_etcd")x)"
fs_end
