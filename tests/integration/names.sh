#!/bin/bash
# names.sh — the reversible name encoding (SPEC §2, docs/reference.md §2):
# %XX escapes for control bytes, % and @; the whole-segment names %2E, %2E%2E
# and %2F; canonical names only (EINVAL otherwise); UTF-8 and spaces as they
# are; a key that is also a prefix (NAME and NAME%); 255-byte names.
#
# The raw keys behind the names are checked from outside the encoding: the
# store is remounted with -o prefix=RAW (raw key bytes), and the keys written
# through encoded names must appear under it.
. "$(dirname "$0")/lib.sh"

rv_start main || exit 1
N=$MNT/n
mkdir "$N"

# ------------------------------------------------- escaped bytes
for name in '50%25' 'user%40host' 'a%01b' 'tab%09x' 'nl%0Ax' 'del%7F' \
	'%00nul' 'a b' 'hello world' 'héllo-日本語' '%2E' '%2E%2E' 'x.' '...'; do
	assert_succeeds "create the canonical name '$name'" put "$N/$name" \
		"value of $name"
	assert_file_content "read back '$name'" "$N/$name" "value of $name"
done
assert_eq "ls lists every name exactly as created" \
	"$(printf '%s\n' '%00nul' '%2E' '%2E%2E' '...' '50%25' 'a%01b' \
		'a b' 'del%7F' 'hello world' 'héllo-日本語' 'nl%0Ax' 'tab%09x' \
		'user%40host' 'x.' | LC_ALL=C sort)" \
	"$(ls -A "$N" | LC_ALL=C sort)"
# raw byte order, not the names' order: "a\x01b" < "a b" < "del\x7f"
assert_eq "readdir returns keys in raw key byte order" \
	"$(printf '%s\n' '%00nul' '%2E' '%2E%2E' '...' '50%25' 'a%01b' 'a b' \
		'del%7F' 'hello world' 'héllo-日本語' 'nl%0Ax' 'tab%09x' \
		'user%40host' 'x.')" \
	"$(ls -f "$N" | grep -vx '\.\|\.\.')"
assert_eq "a key named '..' is a file, not the parent" "-" \
	"$(stat -c %A "$N/%2E%2E" | cut -c1)"

# ------------------------------------------------- refused names
for bad in '50%' '%4' '%zz' '%2e' '%41' $'raw\001ctl' $'raw\nnl' \
	'user@host' 'x@1' '@foo'; do
	assert_fails_with "create of the non-canonical name '$(rv_show "$bad")' fails EINVAL" \
		open:EINVAL put "$N/$bad" x
done
assert_fails_with "mkdir of a non-canonical name fails EINVAL" EINVAL \
	mkdir "$N/bad%2e"
assert_fails_with "rename to a non-canonical name fails EINVAL" EINVAL \
	rename "$N/x." "$N/x%4"
assert_fails_with "lookup of a non-canonical name fails ENOENT" ENOENT \
	stat "$N/50%"
assert_fails_with "lookup of a lowercase escape fails ENOENT" ENOENT \
	stat "$N/a%0ab"
assert_fails_with "unlink of an @ name fails EINVAL" EINVAL \
	unlink "$N/x.@$(modrev "$N/x.")"
assert_file_content "x. survived the refused rename" "$N/x." "value of x."

# ------------------------------------------------- long segments
n255=$(head -c 255 /dev/zero | tr '\0' L)
n256=$(head -c 256 /dev/zero | tr '\0' L)
assert_succeeds "a 255-byte name can be created" put "$N/$n255" long
assert_file_content "the 255-byte name reads back" "$N/$n255" long
assert_fails_with "a 256-byte name fails ENAMETOOLONG" ENAMETOOLONG \
	put "$N/$n256" x
e255="$(head -c 252 /dev/zero | tr '\0' E)%01"
assert_succeeds "a 255-byte name with an escape can be created" \
	put "$N/$e255" esc
assert_true "the escaped 255-byte name is listed" \
	sh -c "ls '$N' | grep -qx '$e255'"

# ------------------------------------------------- key that is a prefix
echo file >"$N/p"
assert_succeeds "mkdir NAME% makes the directory of an existing key" \
	mkdir "$N/p%"
echo child >"$N/p%/c"
assert_file_content "the key p still reads" "$N/p" $'file\n'
assert_file_content "p%/c reads the key p/c" "$N/p%/c" $'child\n'
assert_eq "ls shows the file p and the directory p%" $'p\np%' \
	"$(ls "$N" | grep '^p')"
assert_eq "p% is a directory" d "$(stat -c %A "$N/p%" | cut -c1)"
assert_fails_with "mkdir p fails EEXIST while the file p exists" EEXIST \
	mkdir "$N/p"
mkdir "$N/q"
assert_fails_with "creating the file q over the directory q fails EISDIR" \
	open:EISDIR put "$N/q" x
assert_succeeds "q% also names the directory q/" stat "$N/q%"
rm "$N/p"
assert_file_content "with the file p gone the directory is still p%" \
	"$N/p%/c" $'child\n'

# ------------------------------------------------- raw keys via prefix=
# Path below n/: the segments  a%b@c<0x01>d . "" .. "sp ace" 日本  then k.
enc='a%25b%40c%01d/%2E/%2F/%2E%2E/sp ace/日本'
mkdir -p "$N/$enc"
echo deep >"$N/$enc/k"
assert_file_content "a key below escaped segments reads back" "$N/$enc/k" \
	$'deep\n'
assert_eq "find shows the encoded path" "./$enc/k" \
	"$(cd "$N" && find ./a%25b%40c%01d -type f)"
assert_stop "unmount"
raw=$'n/a%b@c\001d/.//../sp ace/日本/'
rv_start main -o "prefix=$raw" || exit 1
assert_file_content "the raw key behind the encoded names is what the encoding says" \
	"$MNT/k" $'deep\n'
assert_eq "the prefix mount lists only that key" k "$(ls "$MNT")"
assert_stop "unmount"
rv_start main -o "prefix=n/p/" || exit 1
assert_file_content "p%/c is the raw key n/p/c" "$MNT/c" $'child\n'
assert_stop "unmount"
rv_start main -o "prefix=n" || exit 1
assert_file_content "prefix=n (a / appended): 50%25 is the raw key n/50%" \
	"$MNT/50%25" "value of 50%25"
assert_stop "unmount"

# ------------------------------------- keys another client wrote
# loadkeys puts them through the engine API, as a client that is not this
# mount would: names the mount cannot create, and prefixes without markers.
if ! cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$RV_REPO" -pthread -o "$T/loadkeys" \
	"$RV_REPO/tests/integration/loadkeys.c" "$RV_REPO/build/libengine.a" \
	-lleveldb $(pkg-config --libs libcurl jansson 2>/dev/null) -lm; then
	notok "build the loader (needs build/libengine.a)"
	exit 1
fi
# fnv1a64 BYTES: the 64-bit FNV-1a hash, 16 lowercase hex digits
fnv1a64() {
	python3 -c 'import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode("utf-8", "surrogateescape"):
    h = ((h ^ b) * 0x100000001b3) % (1 << 64)
print("%016x" % h)' "$1"
}
long=$(head -c 300 /dev/zero | tr '\0' L)
ctl=$(head -c 100 /dev/zero | tr '\0' '\001')
assert_true "load keys as another client" "$T/loadkeys" "$T/other.data" \
	--put "o/$long" long300 "o/$ctl" ctl100 "o/x/y/z" 1 "o/m/" hidden \
	"o/m/k" v "o/a" file "o/a/b" child "o/user@host" at "o/." dot \
	"o//e" empty
rv_start other || exit 1
O=$MNT/o
hl="$(head -c 200 /dev/zero | tr '\0' L)%%$(fnv1a64 "$long")"
hc="$(for ((i = 0; i < 66; i++)); do printf '%%01'; done)%%$(fnv1a64 "$ctl")"
assert_eq "ls shows every key's documented name" \
	"$(printf '%s\n' "$hc" '%2E' '%2F' "$hl" a a% m user%40host x |
		LC_ALL=C sort)" "$(ls "$O" | LC_ALL=C sort)"
assert_file_content "a 300-byte segment reads under its hashed name" \
	"$O/$hl" long300
assert_file_content "a segment of 100 control bytes (300 encoded) too" \
	"$O/$hc" ctl100
assert_succeeds "a hashed name can be written" put "$O/$hl" rewritten
assert_file_content "... and reads the new value" "$O/$hl" rewritten
assert_succeeds "a hashed name can be renamed" rename "$O/$hl" "$O/short"
assert_file_content "... the value moved" "$O/short" rewritten
assert_missing "... the hashed name is gone" "$O/$hl"
assert_succeeds "a hashed name can be deleted" unlink "$O/$hc"
assert_missing "... and is gone" "$O/$hc"
assert_file_content "the key 'o/.' is %2E" "$O/%2E" dot
assert_file_content "the key 'o//e' is %2F/e" "$O/%2F/e" empty
assert_file_content "the key 'o/user@host' is user%40host" "$O/user%40host" at
assert_file_content "file a and directory a% of keys o/a and o/a/b: a" \
	"$O/a" file
assert_file_content "... and a%/b" "$O/a%/b" child
assert_eq "a marker key with a value is not shown as a file" k \
	"$(ls -A "$O/m")"
assert_eq "a prefix without a marker is a directory" y "$(ls "$O/x")"
assert_succeeds "rm of its only key" unlink "$O/x/y/z"
assert_eq "... makes the marker-less directories vanish from ls" "" \
	"$(ls "$O" | grep -x x)"
assert_missing "... and from lookup (no stale cached entry)" "$O/x"
