#!/bin/bash
# history.sh — `@` names (SPEC §2 "History", docs/reference.md §4, §3):
# KEY@REV with that version's xattrs, DIR@REV/ and @REV/ listings, KEY@history,
# the conditional update KEY@ifrev=REV (success, conflict at open, conflict at
# close), EROFS on history files, ENODATA below the compaction revision.
#
# The store is fresh, so the revisions are known exactly: the script writes
# one change per revision from 2 on (see the table below).
. "$(dirname "$0")/lib.sh"

rv_start main || exit 1
N=$MNT/h
mkdir "$N"         # 2: the marker h/
echo v1 >"$N/k"    # 3
echo v2 >"$N/k"    # 4
echo other >"$N/o" # 5
echo v3 >"$N/k"    # 6
rm "$N/k"          # 7
echo v4 >"$N/k"    # 8: a new generation
assert_meta "the last write is at the expected revision" "$N/k" 8 8 1

# --------------------------------------------------------------- KEY@REV
assert_file_content "k@3 is the first version" "$N/k@3" $'v1\n'
assert_file_content "k@4 is the second version" "$N/k@4" $'v2\n'
assert_file_content "k@5 is the version current at 5" "$N/k@5" $'v2\n'
assert_file_content "k@6 is the third version" "$N/k@6" $'v3\n'
assert_file_content "k@8 is the new generation" "$N/k@8" $'v4\n'
assert_missing "k@7 (deleted at 7) does not exist" "$N/k@7"
assert_missing "k@2 (before the key) does not exist" "$N/k@2"
assert_missing "k@99 (a future revision) does not exist" "$N/k@99"
assert_meta "k@4 has the xattrs of that version" "$N/k@4" 3 4 2
assert_meta "k@6 has the xattrs of that version" "$N/k@6" 3 6 3
assert_meta "k@8 has the xattrs of that version" "$N/k@8" 8 8 1
assert_eq "k@4 is read-only (0444)" 444 "$(stat -c %a "$N/k@4")"
assert_eq "k@4's size is that version's" 3 "$(stat -c %s "$N/k@4")"
assert_fails_with "writing k@4 fails EROFS" open:EROFS put "$N/k@4" x
assert_fails_with "truncating k@4 fails EROFS" EROFS truncate "$N/k@4" 0
assert_fails_with "opening k@4 for writing fails EROFS" EROFS open \
	"$N/k@4" w
assert_fails_with "setfattr on k@4 fails EROFS" EROFS setxattr "$N/k@4" \
	user.revfs.lease 0
assert_fails_with "unlink of k@4 fails EINVAL" EINVAL unlink "$N/k@4"
assert_fails_with "rename onto k@4 fails EINVAL" EINVAL rename "$N/o" \
	"$N/k@4"
assert_file_content "the refused writes left k alone" "$N/k" $'v4\n'
assert_eq "no @ name is listed" "k o" "$(ls -A "$N" | tr '\n' ' ' |
	sed 's/ $//')"

# --------------------------------------------------------------- DIR@REV
assert_eq "ls h@5 lists the directory at 5" $'k\no' "$(ls "$N@5")"
assert_eq "ls h@7 lists it at 7 (k deleted)" o "$(ls "$N@7")"
assert_eq "ls h@2 lists the empty directory at 2" "" "$(ls "$N@2")"
assert_fails_with "h@1 (before mkdir) does not exist" ENOENT stat "$N@1"
assert_file_content "h@5/k is k at 5" "$N@5/k" $'v2\n'
assert_meta "h@4/k has the xattrs of that version" "$N@4/k" 3 4 2
assert_eq "the root's @5/ is the whole tree at 5" $'k\no' "$(ls "$MNT/@5/h")"
assert_eq "h/@5/ is h@5/" $'k\no' "$(ls "$N/@5")"
assert_true "diff -r h@6 @6/h: the same tree" diff -r "$N@6" "$MNT/@6/h"
assert_fails_with "creating a file in h@5 fails EROFS" open:EROFS \
	put "$N@5/new" x
assert_fails_with "mkdir in h@5 fails EROFS" EROFS mkdir "$N@5/d"
assert_fails_with "writing h@5/k fails EROFS" open:EROFS put "$N@5/k" x
assert_fails_with "unlink in h@5 fails EROFS" EROFS unlink "$N@5/k"
assert_eq "h@5 is read-only (0555)" 555 "$(stat -c %a "$N@5")"

# ----------------------------------------------------------- KEY@history
hist=$(cat "$N/k@history")
assert_eq "k@history: one line per version (REV TYPE VERSION SIZE)" \
	"$(printf '%s\n' '3 PUT 1 3' '4 PUT 2 3' '6 PUT 3 3' '7 DELETE 0 0' \
		'8 PUT 1 3')" "$(cut -d' ' -f1-4 <<<"$hist")"
assert_true "k@history: TIME is an RFC 3339 UTC time or -" \
	sh -c "! cut -d' ' -f5 <<'EOF' | grep -Evx '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z|-'
$hist
EOF"
assert_eq "k@history: the newest line's time is k's mtime" \
	"$(stat -c %Y "$N/k")" \
	"$(date -u -d "$(tail -n1 <<<"$hist" | cut -d' ' -f5 |
		sed 's/T/ /; s/Z$//')" +%s 2>&1)"
assert_fails_with "writing k@history fails EROFS" open:EROFS \
	put "$N/k@history" x
assert_missing "a key that never existed has no @history" "$N/nope@history"

# ---------------------------------------------------- conditional update
assert_succeeds "echo > k@ifrev=8 (unchanged since 8) replaces k" \
	put "$N/k@ifrev=8" v5
assert_file_content "the conditional update wrote k" "$N/k" v5
assert_meta "the conditional update is one put" "$N/k" 8 9 2
if sh -c "echo v6 > '$N/k@ifrev=8'" 2>/dev/null; then
	notok "echo > k@ifrev=8 after k changed at 9 fails the command"
else
	ok "echo > k@ifrev=8 after k changed at 9 fails the command"
fi
assert_fails_with "... with ESTALE at open" open:ESTALE put "$N/k@ifrev=8" v6
assert_file_content "the conflict left k unchanged" "$N/k" v5
assert_meta "the conflict took no revision" "$N/k" 8 9 2
assert_succeeds "KEY@ifrev=REV with REV above mod_revision succeeds" \
	put "$N/k@ifrev=1000" v7
assert_meta "... as one put" "$N/k" 8 10 3
assert_fails_with "a conflict between open and close fails close ESTALE" \
	close:ESTALE ifrace "$N/k@ifrev=10" "$N/k"
assert_file_content "the overtaking write won, the conditional one is lost" \
	"$N/k" $'theirs\n'
assert_meta "only the overtaking write took a revision" "$N/k" 8 11 4
assert_succeeds "new@ifrev=0 creates an absent key" put "$N/new@ifrev=0" c1
assert_meta "... at version 1" "$N/new" 12 12 1
assert_fails_with "new@ifrev=0 fails once the key exists" open:ESTALE \
	put "$N/new@ifrev=0" c2
assert_file_content "the refused create left the value" "$N/new" c1
assert_fails_with "a read-only open of KEY@ifrev=REV fails EACCES" EACCES \
	open "$N/k@ifrev=11" r
assert_fails_with "KEY@ifrev= with a bad revision fails EINVAL" open:EINVAL \
	put "$N/k@ifrev=x1" x
assert_eq "no ifrev name is listed" "k new o" \
	"$(ls -A "$N" | tr '\n' ' ' | sed 's/ $//')"

assert_true "every refusal is logged (EROFS, ESTALE)" sh -c \
	"grep -q 'Read-only file system' '$RV_LOG' &&
	 grep -q 'Stale file handle' '$RV_LOG'"

# ------------------------------------------------------------ compaction
# Remount with auto_compact=7r: the engine compacts at 12 - 7 = 5 within
# a few 250 ms ticks.  Then everything below 5 fails ENODATA, 5 still reads.
assert_stop "unmount"
rv_start main -o auto_compact=7r || exit 1
for ((i = 0; i < 50; i++)); do
	[ "$("$RVT" try read "$N/k@4")" = OK ] || break
	sleep 0.1
done
assert_fails_with "k@4 below the compaction revision fails ENODATA" \
	open:ENODATA read "$N/k@4"
assert_true "cat k@4 prints 'No data available'" \
	sh -c "cat '$N/k@4' 2>&1 | grep -q 'No data available'"
assert_file_content "k@5, at the compaction revision, still reads" \
	"$N/k@5" $'v2\n'
assert_meta "... with that version's xattrs" "$N/k@5" 3 4 2
assert_fails_with "ls h@4 below the compaction revision fails ENODATA" \
	ENODATA list "$N@4"
assert_fails_with "the root's @4/ fails ENODATA too" ENODATA list "$MNT/@4"
assert_eq "ls h@5 at the compaction revision works" $'k\no' "$(ls "$N@5")"
assert_eq "k@history keeps the newest version <= 5 and all after" \
	"$(printf '%s\n' '4 PUT 2 3' '6 PUT 3 3' '7 DELETE 0 0' '8 PUT 1 3' \
		'9 PUT 2 2' '10 PUT 3 2' '11 PUT 4 7')" \
	"$(cut -d' ' -f1-4 "$N/k@history")"
assert_file_content "the current value is untouched by compaction" "$N/k" \
	$'theirs\n'
assert_true "the compaction is logged" grep -q 'compact' "$RV_LOG"

if [ -e "$MNT/@compact" ]; then
	assert_eq "cat @compact shows the compaction revision" 5 \
		"$(tr -dc 0-9 <"$MNT/@compact")"
	assert_succeeds "echo 8 > @compact compacts at 8" put "$MNT/@compact" 8
	assert_eq "cat @compact shows 8" 8 "$(tr -dc 0-9 <"$MNT/@compact")"
	assert_fails_with "k@6 is now below the compaction revision" \
		open:ENODATA read "$N/k@6"
	assert_file_content "k@8 still reads" "$N/k@8" $'v4\n'
	assert_ne "compacting below the compaction revision fails" OK \
		"$("$RVT" try put "$MNT/@compact" 3)"
	assert_eq "... and leaves it" 8 "$(tr -dc 0-9 <"$MNT/@compact")"
else
	todo "echo N > MNT/@compact compacts at N" "no @compact control file"
fi

# ------------------------------------------------------ cache coherence
cat "$N/k" >/dev/null # in the page cache now
"$RVT" try put "$N/k@ifrev=$(modrev "$N/k")" "cached?" >/dev/null
assert_file_content "a write through KEY@ifrev invalidates KEY's cached pages" \
	"$N/k" "cached?"
assert_eq "... and its cached size" 7 "$(stat -c %s "$N/k")"

# The kernel's pages are shared by every descriptor of a file.  A: an old
# descriptor re-reads its version after a newer open dropped the pages;
# then C, opened later, must still read the newer version, not A's bytes.
echo old >"$N/pg"
got=$(python3 - "$N/pg" "$RVT" <<'PY'
import os, subprocess, sys
p, rvt = sys.argv[1], sys.argv[2]
mod = lambda: os.getxattr(p, "user.revfs.mod_revision").decode()
a = os.open(p, os.O_RDONLY)
r1 = os.pread(a, 100, 0)
subprocess.run([rvt, "try", "put", p + "@ifrev=" + mod(), "new"],
               stdout=subprocess.DEVNULL, check=True)
b = os.open(p, os.O_RDONLY)
r2 = os.pread(b, 100, 0)
os.posix_fadvise(a, 0, 0, os.POSIX_FADV_DONTNEED)
r3 = os.pread(a, 100, 0)
c = os.open(p, os.O_RDONLY)
r4 = os.pread(c, 100, 0)
print(b"|".join([r1, r2, r3, r4]).decode().replace("\n", ""))
PY
)
assert_eq "an old descriptor reads its version; opens after a commit read it" \
	"old|new|old|new" "$got"

# A reader opened while a writer is open reads the write buffer, then the
# committed value once the writer is gone (not an empty file, whose 0-byte
# read the kernel would take for the size); and an older descriptor's short
# read does not leave a later open with a cut-off value.
got=$(cd "$N" && python3 - <<'PY'
import os, time
open("wr", "w").write("old")
w = os.open("wr", os.O_WRONLY | os.O_TRUNC)
os.write(w, b"new-content-xyz")
r = os.open("wr", os.O_RDONLY)
os.close(w)
time.sleep(0.3)
a = os.pread(r, 100, 0)
os.close(r)
b = open("wr", "rb").read()
open("sz", "w").write("A" * 10)
r1 = os.open("sz", os.O_RDONLY)
open("sz", "w").write("B" * 20)
r2 = os.open("sz", os.O_RDONLY)
os.stat("sz")
c = os.pread(r1, 100, 0)
os.close(r1)
os.close(r2)
d = open("sz", "rb").read()
print(b"|".join([a, b, c, d]).decode())
PY
)
assert_eq "a reader of a write buffer reads the commit after the writer left; an old short read cuts no later open" \
	"new-content-xyz|new-content-xyz|AAAAAAAAAA|BBBBBBBBBBBBBBBBBBBB" "$got"

# Close-to-open under concurrency: 4 processes x 25 conditional increments
# (examples/cas.sh reads mod_revision, then the value, then writes
# KEY@ifrev=REV): a read that misses a commit made before its open loses an
# increment.
echo 0 >"$N/ctr"
cas=()
for i in 1 2 3 4; do
	"$RV_REPO/examples/cas.sh" "$MNT" h/ctr 25 >/dev/null 2>&1 &
	cas+=($!)
done
wait "${cas[@]}"
assert_eq "4 x 25 concurrent conditional increments, none lost" 100 \
	"$(cat "$N/ctr")"
