#!/bin/bash
# badinput.sh — refusals lose nothing (SPEC §2 "Bad input", docs/reference.md
# §3, §8): a value over max_value fails the write() with EFBIG and leaves the
# stored value; past the quota a commit fails ENOSPC while reads and deletes
# still work; a read-only mount refuses writes with EROFS.  Every refusal is
# logged.  (Names that cannot be keys: names.sh; history files and the
# compaction revision: history.sh.)
. "$(dirname "$0")/lib.sh"

# ------------------------------------------------------------- max_value
rv_start small -o max_value=1000 || exit 1
N=$MNT/b
mkdir "$N"        # 2
echo old >"$N/k"  # 3
assert_succeeds "a value of exactly max_value (1000) is accepted" \
	putn "$N/max" 1000
assert_eq "... and stored whole" 1000 "$(stat -c %s "$N/max")"
assert_meta "... in one revision" "$N/max" 4 4 1
assert_fails_with "a 1001-byte value fails EFBIG at write()" write:EFBIG \
	putn "$N/k" 1001
assert_file_content "after EFBIG (> form) the old value is intact" "$N/k" \
	$'old\n'
assert_meta "after EFBIG (> form) no revision was taken" "$N/k" 3 3 1
assert_fails_with "appending past max_value fails EFBIG at write()" \
	write:EFBIG append "$N/max" "x"
assert_eq "after EFBIG (>> form) the value is intact" \
	"$(head -c 1000 /dev/zero | tr '\0' x)" "$(cat "$N/max")"
assert_meta "after EFBIG (>> form) no revision was taken" "$N/max" 4 4 1
assert_fails_with "truncate past max_value fails EFBIG" EFBIG \
	truncate "$N/k" 1001
assert_file_content "after the refused truncate the value is intact" \
	"$N/k" $'old\n'
assert_fails_with "a new key over max_value fails EFBIG at write()" \
	write:EFBIG putn "$N/new" 5000
assert_true "every refusal is logged (EFBIG)" \
	grep -Eqi 'EFBIG|too large|max_value' "$RV_LOG"
echo ok >"$N/after"
assert_meta "the refusals took no revision at all" "$N/after" 5 5 1

# A program that ignores write()'s EFBIG and goes on writing must not store
# a value with a hole where the refused bytes were: the error sticks until
# the last writer closes, and close() reports it.
got=$(python3 - "$N/after" <<'PY'
import errno, os, sys
def t(f):
    try:
        f()
        return "OK"
    except OSError as e:
        return errno.errorcode[e.errno]
fd = os.open(sys.argv[1], os.O_WRONLY)
r = [t(lambda: os.pwrite(fd, b"a" * 600, 0)),
     t(lambda: os.pwrite(fd, b"b" * 600, 600)),
     t(lambda: os.pwrite(fd, b"c" * 10, 0)),
     t(lambda: os.ftruncate(fd, 10)),
     t(lambda: os.fsync(fd)),
     t(lambda: os.close(fd))]
print(" ".join(r))
PY
)
assert_eq "after EFBIG every write, truncate, fsync and the close fail" \
	"OK EFBIG EFBIG EFBIG EFBIG EFBIG" "$got"
assert_file_content "... and the stored value is intact" "$N/after" $'ok\n'
assert_meta "... with no revision taken" "$N/after" 5 5 1
echo again >"$N/after"
assert_file_content "the next open writes normally again" "$N/after" \
	$'again\n'
assert_stop "unmount"

# ----------------------------------------------------------------- quota
rv_start quota -o quota=1M || exit 1
N=$MNT/q
mkdir "$N"
stored=0
last=""
for ((i = 0; i < 200; i++)); do
	yes "value $i" | head -c 65536 >"$T/v$i"
	last=$("$RVT" try putfile "$N/k$i" "$T/v$i")
	[ "$last" = OK ] || break
	stored=$((stored + 1))
done
assert_eq "past a 1 MiB quota a commit fails ENOSPC (at close)" \
	close:ENOSPC "$last"
assert_true "the quota allowed some 64 KiB values first ($stored)" \
	test "$stored" -ge 4 -a "$stored" -le 40
lost=""
for ((i = 0; i < stored; i++)); do
	cmp -s "$T/v$i" "$N/k$i" || lost="$lost k$i"
done
assert_eq "every value stored before the alarm reads back intact" "" "$lost"
# The refused create's buffer lives until the kernel's RELEASE, which
# follows close() asynchronously (a retry of the commit, refused again):
# until then the name resolves to the pending create.  Give it 2 s.
for ((i = 0; i < 20; i++)); do
	[ "$("$RVT" try stat "$N/k$stored")" = ENOENT ] && break
	sleep 0.1
done
assert_missing "the refused key was not created" "$N/k$stored"
v=$(version "$N/k0")
assert_fails_with "overwriting a key past the quota fails ENOSPC" \
	close:ENOSPC putfile "$N/k0" "$T/v1"
assert_true "... and its old value is intact" cmp -s "$T/v0" "$N/k0"
assert_eq "... at its old version" "$v" "$(version "$N/k0")"
assert_fails_with "mkdir past the quota fails ENOSPC" ENOSPC mkdir "$N/d"
# A close's commit is answered asynchronously (issue 4): an fsync of the
# file meanwhile must wait for it, and fail with it.
assert_fails_with "past the quota an fsync during another close fails ENOSPC" \
	fsync:ENOSPC closefsync "$N/cf" 20
assert_fails_with "past the quota a close during another close fails ENOSPC" \
	close:ENOSPC closeclose "$N/cc" 20
assert_succeeds "rm still works past the quota" unlink "$N/k1"
assert_missing "... and the key is gone" "$N/k1"
assert_true "reads still work past the quota" cmp -s "$T/v2" "$N/k2"
assert_true "every refusal is logged (ENOSPC)" \
	grep -Eqi 'ENOSPC|NOSPACE|quota' "$RV_LOG"
assert_stop "unmount"
rv_start quota -o quota=1M || exit 1
lost=""
for ((i = 2; i < stored; i++)); do
	cmp -s "$T/v$i" "$MNT/q/k$i" || lost="$lost k$i"
done
assert_eq "after a remount every stored value is still there" "" "$lost"
assert_missing "after a remount the deleted key stays deleted" "$MNT/q/k1"
assert_stop "unmount"

# -------------------------------------------------------------------- ro
rv_start quota -o ro || exit 1
assert_true "a ro mount reads" cmp -s "$T/v2" "$MNT/q/k2"
assert_fails_with "a ro mount refuses a write with EROFS" EROFS \
	put "$MNT/q/k2" x
assert_fails_with "a ro mount refuses rm with EROFS" EROFS unlink "$MNT/q/k2"
assert_fails_with "a ro mount refuses mkdir with EROFS" EROFS mkdir "$MNT/d"
assert_true "after the refusals the value is intact" cmp -s "$T/v2" \
	"$MNT/q/k2"
