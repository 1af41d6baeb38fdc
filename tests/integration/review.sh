#!/bin/bash
# review.sh — regressions found by the code review: each section pins one
# bug that was fixed.
#
# 1. Hashed names (docs/reference.md §2): "PREFIX%%HASH" is the one name of
#    a segment whose encoding passes 255 bytes, PREFIX being the canonical
#    encoding of its first raw bytes.  Lookup used to accept any prefix and
#    any segment with that hash, so a short key had a second name ("a%%" +
#    hash of "ab" opened and unlinked key "ab") and a long one many.
# 2. unlink of a file open for writing: the buffer was committed at the
#    writer's close or release, bringing the name back.
# 3. rename over a file open for writing: the old target's buffer was
#    committed over the value renamed onto its key.
. "$(dirname "$0")/lib.sh"

# fnv1a64 BYTES: the 64-bit FNV-1a hash, 16 lowercase hex digits
fnv1a64() {
	python3 -c 'import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode("utf-8", "surrogateescape"):
    h = ((h ^ b) * 0x100000001b3) % (1 << 64)
print("%016x" % h)' "$1"
}

rv_start main || exit 1
D=$MNT/h
mkdir "$D"

# ---------------------------------------- hashed names of short segments
assert_succeeds "create the short key ab" put "$D/ab" short
alias_short="a%%$(fnv1a64 ab)"
assert_missing "'a%%HASH(ab)' is not a second name of key ab" \
	"$D/$alias_short"
assert_fails_with "... and unlink through it fails" ENOENT unlink \
	"$D/$alias_short"
assert_file_content "... and key ab is still there" "$D/ab" short

# ---------------------------------------- hashed names of long segments
long=$(head -c 300 /dev/zero | tr '\0' L)
canon="$(head -c 200 /dev/zero | tr '\0' L)%%$(fnv1a64 "$long")"
# A name over 255 bytes cannot be created through the mount: load it.
if ! cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$RV_REPO" -pthread \
	-o "$T/loadkeys" "$RV_REPO/tests/integration/loadkeys.c" \
	"$RV_REPO/build/libengine.a" -lleveldb \
	$(pkg-config --libs libcurl jansson 2>/dev/null) -lm; then
	notok "build the loader (needs build/libengine.a)"
	exit 1
fi
assert_true "load a 300-byte segment as another client" "$T/loadkeys" \
	"$T/other.data" --put "o/$long" long300
rv_start other || exit 1
O=$MNT/o
assert_file_content "the long key reads under its canonical hashed name" \
	"$O/$canon" long300
assert_missing "'L%%HASH' (a shorter prefix) is not a second name" \
	"$O/L%%$(fnv1a64 "$long")"
assert_missing "'L*201%%HASH' (a longer prefix) is not one either" \
	"$O/$(head -c 201 /dev/zero | tr '\0' L)%%$(fnv1a64 "$long")"

# ---------------------------------------- unlink of a file open for writing
# A file created (O_CREAT, nothing written) is committed at release; an
# unlink before that release used to answer 0 and leave the buffer to be
# committed afterwards: the name came back (basic.sh's vim swap-file dance
# failed now and then, when a release came after the unlink).
P=$MNT/p
mkdir "$P"
exec 5>"$P/h"
rm "$P/h"
exec 5>&-
assert_missing "a created file unlinked before its last close stays gone" \
	"$P/h"
echo old >"$P/f"
exec 5>>"$P/f"
rm "$P/f"
echo more >&5
exec 5>&-
assert_missing "writes after unlink to an open descriptor recreate nothing" \
	"$P/f"
exec 5>"$P/k"
rm "$P/k"
echo new >"$P/k"
exec 5>&-
assert_file_content "a file re-created after unlink keeps its own value" \
	"$P/k" $'new\n'
assert_eq "none of them is left behind" k "$(ls "$P")"

# ---------------------------------------- rename over a file open for writing
# The replaced target's buffer used to be committed to the target's key at
# its close, overwriting the value just renamed there.
echo old >"$P/b"
exec 5>>"$P/b"
echo renamed >"$P/a"
mv "$P/a" "$P/b"
echo junk >&5
exec 5>&-
assert_file_content "a replaced target's open writer does not clobber it" \
	"$P/b" $'renamed\n'
