#!/bin/bash
# watch.sh — DIR/@watch and DIR/@watch@REV through a real mount (SPEC §2
# "Watch streams"): the line format, replay then live, PROGRESS at catch-up
# and every interval, COMPACTED then ENODATA for a start that is too old,
# Ctrl-C ending a waiting `cat` at once, poll(2), 2,000 concurrent readers
# each getting every event, 50 poll-driven streams under paced answers
# each getting every event once and in order, and a reader that stops
# reading not stalling the writers.
. "$(dirname "$0")/lib.sh"

rv_start w -o progress=200ms || exit 1

# --------------------------------------------------------------- format
mkdir "$MNT/ns" "$MNT/other"
r0=$(rev_now)
echo a >"$MNT/ns/a"
echo b >"$MNT/ns/b"
echo o >"$MNT/other/o"
mkdir "$MNT/ns/sub"
echo c >"$MNT/ns/sub/c"
rm "$MNT/ns/a"
mv "$MNT/ns/b" "$MNT/ns/bb"
r1=$(rev_now)
got=$(timeout 10 sed '/PROGRESS/q' "$MNT/ns/@watch@$((r0 + 1))")
exp="$((r0 + 1)) PUT ns/a
$((r0 + 2)) PUT ns/b
$((r0 + 4)) PUT ns/sub/
$((r0 + 5)) PUT ns/sub/c
$((r0 + 6)) DELETE ns/a
$((r0 + 7)) PUT ns/bb
$((r0 + 7)) DELETE ns/b
$r1 PROGRESS"
assert_eq "ns/@watch@REV: every change under ns since REV, then PROGRESS" \
	"$exp" "$got"
got=$(timeout 10 sed '/PROGRESS/q' "$MNT/@watch@$((r0 + 3))" | head -n 2)
assert_eq "the root's @watch sees other/ too" \
	"$((r0 + 3)) PUT other/o
$((r0 + 4)) PUT ns/sub/" "$got"
got=$(timeout 10 sed '/PROGRESS/q' "$MNT/ns/sub/@watch@1")
assert_eq "a subdirectory's @watch: only its keys, paths from the mount" \
	"$((r0 + 4)) PUT ns/sub/
$((r0 + 5)) PUT ns/sub/c
$r1 PROGRESS" "$got"
got=$(timeout 10 head -c 100 "$MNT/ns/@watch" | head -n 1)
assert_eq "@watch (no REV) starts now: a PROGRESS at the current revision" \
	"$r1 PROGRESS" "$got"
# root runs the suite and bypasses the 0444 mode: the fs itself refuses
got=$(timeout 10 "$RVT" try open "$MNT/ns/@watch" w 2>&1)
case $got in
*EROFS* | *EACCES*) ok "@watch is read-only (${got##*:})" ;;
*) notok "@watch is read-only" "got: $got" ;;
esac

# ------------------------------------------------------ replay, then live
out=$T/live.out
timeout 20 sed "/ PUT ns\/end\$/q" "$MNT/ns/@watch@$((r0 + 1))" >"$out" &
sedpid=$!
sleep 0.5
echo d >"$MNT/ns/d"
echo end >"$MNT/ns/end"
wait $sedpid
got=$(grep -v PROGRESS "$out" | awk '{print $2, $3}' | tr '\n' ' ')
assert_eq "@watch@REV: history replayed, then live events, in order" \
	"PUT ns/a PUT ns/b PUT ns/sub/ PUT ns/sub/c DELETE ns/a PUT ns/bb DELETE ns/b PUT ns/d PUT ns/end " \
	"$got"
# Revisions never go down, and each live event shows its own revision.
if awk '{ if ($1 < last) exit 1; last = $1 }' "$out"; then
	ok "revisions in the stream never go down"
else
	notok "revisions in the stream never go down" "$(cat "$out")"
fi

# ------------------------------------------------------------- progress
# 1 at once + 10 in 2.1 s; a loaded machine starts cat late: 5..12
timeout 2.1 cat "$MNT/ns/@watch" >"$T/prog.out"
n=$(grep -c ' PROGRESS$' "$T/prog.out")
if [ "$n" -ge 5 ] && [ "$n" -le 12 ]; then
	ok "idle: a PROGRESS at once and then every 200 ms ($n in 2.1 s)"
else
	notok "idle: a PROGRESS at once and then every 200 ms" \
		"expected 5..12 in 2.1 s, got $n" "$(cat "$T/prog.out")"
fi
assert_eq "PROGRESS carries the current revision" "$(rev_now)" \
	"$(tail -n 1 "$T/prog.out" | cut -d' ' -f1)"

# ---------------------------------------------------------------- SIGINT
env --default-signal=INT cat "$MNT/ns/@watch" >/dev/null &
catpid=$!
sleep 0.5
t0=$(date +%s%N)
kill -INT $catpid
for ((i = 0; i < 1000; i++)); do
	kill -0 $catpid 2>/dev/null || break
	sleep 0.005
done
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
if kill -0 $catpid 2>/dev/null; then
	kill -9 $catpid
	notok "SIGINT ends a waiting 'cat @watch'" "still alive after ${ms} ms"
elif [ $ms -le 500 ]; then
	# The spec's bound is 100 ms (~10 ms measured on an idle machine);
	# a loaded test machine gets slack.
	ok "SIGINT ends a waiting 'cat @watch' in ${ms} ms"
else
	notok "SIGINT ends a waiting 'cat @watch' in ${ms} ms (over 500)"
fi
wait $catpid 2>/dev/null

# ------------------------------------------------------------------ poll
cat >"$T/wpoll.c" <<'EOF'
/* wpoll FILE: drain what is ready, then report whether poll(2) says
 * readable within 0 ms (expect no) and, after a line on stdin tells us a
 * write happened, within 3 s (expect yes). */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	char buf[4096];
	int fd = open(argv[1], O_RDONLY);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (fd < 0)
		return 2;
	if (read(fd, buf, sizeof(buf)) <= 0) /* the first PROGRESS */
		return 3;
	printf("idle:%d\n", poll(&p, 1, 0));
	/* a stream: no seeking */
	printf("seek:%d\n", (int)lseek(fd, 10, SEEK_SET));
	fflush(stdout);
	if (!fgets(buf, sizeof(buf), stdin))
		return 4;
	int r = poll(&p, 1, 3000);
	printf("after:%d:%d\n", r, !!(p.revents & POLLIN));
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	printf("%s", buf);
	return 0;
}
EOF
cc -o "$T/wpoll" "$T/wpoll.c"
mkfifo "$T/pfifo"
"$T/wpoll" "$MNT/ns/@watch" <"$T/pfifo" >"$T/poll.out" &
ppid=$!
exec 7>"$T/pfifo"
sleep 0.1
for ((i = 0; i < 50; i++)); do
	grep -q idle "$T/poll.out" && break
	sleep 0.1
done
echo p >"$MNT/ns/p"
echo go >&7
exec 7>&-
wait $ppid
res=$(head -n 3 "$T/poll.out" | tr '\n' ' ')
case "$res" in
"idle:0 seek:-1 after:1:1 ") ok "poll: not readable when idle, readable after a put; no seek" ;;
*) notok "poll: not readable when idle, readable after a put" \
	"$(cat "$T/poll.out")" ;;
esac
grep -q " PUT ns/p$" "$T/poll.out" && ok "poll: the put is then read" ||
	notok "poll: the put is then read" "$(cat "$T/poll.out")"

# -------------------------------------------------- 2,000 readers at once
# The sanitizer build runs 300 readers (override with WATCH_READERS) to
# keep make test in its budget: starting 2,000 `timeout sed` pairs is most
# of this section's time.  (Before answers were paced, every event cost
# each reader a FUSE read and 2,000 readers under ASan took minutes; with
# pacing WATCH_READERS=2000 passes under ASan in ~50 s for the script.)
case $REVFS in
*/san/*) NR=${WATCH_READERS:-300} ;;
*) NR=${WATCH_READERS:-2000} ;;
esac
NE=20
mkdir "$MNT/fan" "$T/fan"
rs=$(($(rev_now) + 1))
for ((i = 0; i < NR; i++)); do
	timeout 300 sed "/ PUT fan\/end\$/q" "$MNT/fan/@watch@$rs" \
		>"$T/fan/$i" 2>/dev/null &
	RV_BG+=($!)
done
threads0=$(ls /proc/$RV_PID/task | wc -l)
for ((i = 0; i < NE; i++)); do
	echo $i >"$MNT/fan/k$i"
done
echo end >"$MNT/fan/end"
wait "${RV_BG[@]}" 2>/dev/null
RV_BG=()
good=0
for ((i = 0; i < NR; i++)); do
	[ "$(grep -c ' PUT fan/' "$T/fan/$i")" = $((NE + 1)) ] && good=$((good + 1))
done
assert_eq "$NR concurrent @watch readers each got all $((NE + 1)) events" \
	"$NR" "$good"
if [ "$threads0" -lt 200 ]; then
	ok "$NR waiting readers cost no thread each ($threads0 daemon threads)"
else
	notok "$NR waiting readers cost no thread each" \
		"$threads0 daemon threads"
fi

# ------------------------------- paced streams: poll-driven, every event
# Answers go out in rounds (a stream answered less than a round ago waits
# for the next one).  One thread polls 50 streams while 301 puts arrive
# back to back: each stream must see every put once, in revision order.
cat >"$T/wpollmany.c" <<'EOF'
/* wpollmany DIR REV N END: poll N descriptors on DIR/@watch@REV and read
 * the ready ones until each has seen a PUT line containing END; then
 * print, per descriptor, the PUT lines seen and 1 if their revisions
 * never went down. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static char buf[64][1 << 16];
int main(int argc, char **argv)
{
	int n = atoi(argv[3]), left = n;
	struct pollfd p[64];
	long puts[64] = {0}, last[64] = {0}, ordered[64], done[64] = {0};
	size_t len[64] = {0};
	char path[4096];
	if (argc != 5 || n < 1 || n > 64)
		return 2;
	snprintf(path, sizeof(path), "%s/@watch@%s", argv[1], argv[2]);
	for (int i = 0; i < n; i++) {
		p[i].fd = open(path, O_RDONLY);
		p[i].events = POLLIN;
		ordered[i] = 1;
		if (p[i].fd < 0)
			return 2;
	}
	while (left > 0) {
		if (poll(p, n, 20000) <= 0)
			return 3;
		for (int i = 0; i < n; i++) {
			char *l, *nl;
			ssize_t r;
			if (done[i] || !(p[i].revents & POLLIN))
				continue;
			r = read(p[i].fd, buf[i] + len[i],
			         sizeof(buf[i]) - len[i] - 1);
			if (r <= 0)
				return 4;
			len[i] += (size_t)r;
			buf[i][len[i]] = 0;
			l = buf[i];
			while ((nl = strchr(l, '\n'))) {
				long rev = atol(l);
				*nl = 0;
				if (strstr(l, " PUT ")) {
					puts[i]++;
					if (rev < last[i])
						ordered[i] = 0;
					last[i] = rev;
					if (strstr(l, argv[4])) {
						done[i] = 1;
						left--;
						p[i].events = 0;
					}
				}
				l = nl + 1;
			}
			len[i] -= (size_t)(l - buf[i]);
			memmove(buf[i], l, len[i]);
		}
	}
	for (int i = 0; i < n; i++)
		printf("%ld %ld\n", puts[i], ordered[i]);
	return 0;
}
EOF
cc -O2 -o "$T/wpollmany" "$T/wpollmany.c"
mkdir "$MNT/pol"
rs=$(($(rev_now) + 1))
timeout 120 "$T/wpollmany" "$MNT/pol" $rs 50 "pol/end" >"$T/pollmany.out" &
pmpid=$!
sleep 0.5
for ((i = 0; i < 300; i++)); do
	echo $i >"$MNT/pol/k$((i % 30))"
done
echo end >"$MNT/pol/end"
wait $pmpid
rc=$?
got=$(sort -u "$T/pollmany.out" | tr '\n' ' ')
if [ $rc = 0 ] && [ "$got" = "301 1 " ]; then
	ok "50 poll-driven streams, 301 puts back to back: each got every put once, in order"
else
	notok "50 poll-driven streams each get every put once, in order" \
		"exit $rc; per stream 'puts ordered': $got"
fi

# ------------------------------------- a reader that stops does not stall
mkdir "$MNT/slow"
rs=$(($(rev_now) + 1))
exec 8<"$MNT/slow/@watch@$rs" # opened, never read until the end
t0=$(date +%s%N)
for ((i = 0; i < 1500; i++)); do
	echo $i >"$MNT/slow/k$((i % 50))"
done
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
if [ $ms -lt 60000 ]; then
	ok "1,500 writes with a stalled reader: ${ms} ms"
else
	notok "1,500 writes with a stalled reader took ${ms} ms"
fi
echo end >"$MNT/slow/end"
n=$(timeout 30 sed "/ PUT slow\/end\$/q" <&8 | grep -c ' PUT slow/')
exec 8<&-
assert_eq "the stalled reader then reads every event, none lost" 1501 "$n"

# ------------------------------------------------ compacted: ENODATA
rv_stop
rv_start c -o auto_compact=3r,progress=200ms || exit 1
mkdir "$MNT/ns"
for ((i = 0; i < 12; i++)); do
	echo $i >"$MNT/ns/k"
done
for ((i = 0; i < 50; i++)); do
	out=$(timeout 5 cat "$MNT/ns/@watch@1" 2>"$T/c.err")
	case $out in *COMPACTED*) break ;; esac
	sleep 0.1
done
last=$(printf '%s\n' "$out" | tail -n 1)
case "$last" in
*" COMPACTED")
	ok "@watch@1 below the compaction revision: last line '$last'" ;;
*) notok "@watch@1 below the compaction revision: a COMPACTED line" \
	"got: $out" ;;
esac
assert_eq "only the COMPACTED line comes" 1 "$(printf '%s\n' "$out" | wc -l)"
if grep -q "No data available" "$T/c.err"; then
	ok "then the read fails with ENODATA"
else
	notok "then the read fails with ENODATA" "$(cat "$T/c.err")"
fi
crev=${last%% *}
got=$(timeout 5 sed '/PROGRESS/q' "$MNT/ns/@watch@$crev" | tail -n 1)
assert_eq "@watch@COMPACTREV works" "$(rev_now) PROGRESS" "$got"
rv_stop
