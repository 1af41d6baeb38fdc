#!/bin/bash
# basic.sh — everyday tools on a mount (SPEC §2 "The tree", "Reading and
# writing", "Metadata").  Every write is checked for its content AND for
# the revisions it took: this script is the only writer of its store, so
# each change must take exactly the next revision (read back from the
# user.revfs.* xattrs of a later write), and a version that counts puts.
. "$(dirname "$0")/lib.sh"

rv_start main || exit 1
N=$MNT/t

# ---------------------------------------------------------------- mkdir
assert_succeeds "mkdir creates a namespace" mkdir "$N"
assert_true "the namespace is a directory" test -d "$N"
assert_fails_with "mkdir of an existing namespace fails EEXIST" EEXIST \
	mkdir "$N"

# -------------------------------------------------- echo >, >>, truncate
echo hello >"$N/a"
R=$(modrev "$N/a")
case $R in
'' | *[!0-9]*) notok "mod_revision xattr of a new key is a number" \
	"got: $(rv_show "$R")"
	R=0 ;;
*) ok "mod_revision xattr of a new key is a number ($R)" ;;
esac
# a fresh store is at revision 1; mkdir put the marker key "t/" at 2
assert_eq "mkdir took one revision: the first key is at revision 3" 3 "$R"
assert_meta "echo > creates a key in one revision" "$N/a" "$R" "$R" 1
assert_file_content "cat reads the value" "$N/a" $'hello\n'
assert_xattr "a new key has no lease" "$N/a" user.revfs.lease 0
if have_rev; then
	assert_eq "@revision is the last write's revision" "$R" "$(rev_now)"
fi

echo again >"$N/a"
assert_meta "echo > replaces in one revision, version 2" "$N/a" \
	"$R" $((R + 1)) 2
assert_file_content "echo > replaced the value" "$N/a" $'again\n'

echo more >>"$N/a"
assert_meta "echo >> appends in one revision, version 3" "$N/a" \
	"$R" $((R + 2)) 3
assert_file_content "echo >> appended" "$N/a" $'again\nmore\n'

truncate -s 3 "$N/a"
assert_meta "truncate -s 3 takes one revision" "$N/a" "$R" $((R + 3)) 4
assert_file_content "truncate -s 3 keeps 3 bytes" "$N/a" "aga"
truncate -s 5 "$N/a"
got=$(od -An -c "$N/a")
assert_eq "truncate -s 5 pads with two NUL bytes" \
	"$(printf 'aga\0\0' | od -An -c)" "$got"
assert_meta "truncate -s 5 takes one revision" "$N/a" "$R" $((R + 4)) 5
assert_eq "stat size is the value's length" 5 "$(stat -c %s "$N/a")"
R=$((R + 4))

# `>` and `: >` while another descriptor holds the file open for writing
# (under load the previous `>`'s RELEASE, which the kernel sends after
# close returns, can come after the next `>`'s open: the same case)
echo v1 >"$N/tj"
R=$(modrev "$N/tj")
exec 7>>"$N/tj"
echo v2 >"$N/tj"
assert_meta "echo > while another descriptor holds it: one revision" \
	"$N/tj" "$R" $((R + 1)) 2
assert_file_content "... with the new value" "$N/tj" $'v2\n'
: >"$N/tj"
assert_file_content ": > while another descriptor holds it empties it" \
	"$N/tj" ""
for ((i = 0; i < 40; i++)); do
	[ "$(modrev "$N/tj")" = $((R + 2)) ] && break
	sleep 0.05
done
assert_meta "... committed by its release in one revision" "$N/tj" \
	"$R" $((R + 2)) 3
exec 7>&-
assert_meta "the holder's close commits nothing more" "$N/tj" \
	"$R" $((R + 2)) 3
rm "$N/tj"

# writes in the middle, past the end, in many chunks, with fsync
printf '0123456789' >"$N/mid"
R=$(modrev "$N/mid")
printf 'XY' | dd of="$N/mid" bs=1 seek=3 conv=notrunc status=none
assert_file_content "a write in the middle (dd conv=notrunc) keeps the rest" \
	"$N/mid" "012XY56789"
assert_meta "... in one revision" "$N/mid" "$R" $((R + 1)) 2
printf 'Z' | dd of="$N/mid" bs=1 seek=12 conv=notrunc status=none
assert_eq "a write past the end leaves a hole of NULs" \
	"$(printf '012XY56789\0\0Z' | od -An -c)" "$(od -An -c "$N/mid")"
head -c 1500000 /dev/urandom >"$T/big"
cp "$T/big" "$N/big"
assert_true "a 1.5 MB value written in many chunks reads back" \
	cmp "$T/big" "$N/big"
assert_eq "... as one put (version 1)" 1 "$(version "$N/big")"
assert_succeeds "write + fsync + close of a new key" fsyncput "$N/fs" synced
assert_eq "fsync committed it and close did not commit again" 1 \
	"$(version "$N/fs")"
rm "$N/mid" "$N/big" "$N/fs"
R=$(rev_now)

# ------------------------------------------------------------ stat, ls
ino1=$(stat -c %i "$N/a")
now=$(date +%s)
echo x >"$N/a"
R=$((R + 1))
mt=$(stat -c %Y "$N/a")
assert_true "mtime is the commit time of mod_revision (within 5 s)" \
	test $((mt - now)) -ge -5 -a $((mt - now)) -le 5
assert_eq "ctime equals mtime" "$mt" "$(stat -c %Z "$N/a")"
assert_eq "the inode number is stable across writes" "$ino1" \
	"$(stat -c %i "$N/a")"
assert_eq "ls lists the namespace" "a" "$(ls "$N")"
assert_eq "ls -l shows a regular file of 2 bytes" "-:2" \
	"$(ls -l "$N" | awk '$NF == "a" { print substr($1, 1, 1) ":" $5 }')"
assert_eq "ls -l of the root shows t as a directory" "d" \
	"$(ls -l "$MNT" | awk '$NF == "t" { print substr($1, 1, 1) }')"
assert_eq "ls -a shows no @ names" "" "$(ls -a "$MNT" "$N" | grep @)"

# --------------------------------------------------------- touch and rm
touch "$N/b"
assert_file_content "touch creates an empty key" "$N/b" ""
assert_meta "touch of a new name takes one revision" "$N/b" \
	$((R + 1)) $((R + 1)) 1
R=$((R + 1))
touch "$N/b"
assert_file_content "touch of an existing key keeps its value" "$N/b" ""
assert_meta "touch of an existing key takes no revision" "$N/b" "$R" "$R" 1
assert_succeeds "rm deletes a key" unlink "$N/b"
assert_missing "rm: the key is gone" "$N/b"
echo c >"$N/c"
assert_meta "rm took exactly one revision" "$N/c" $((R + 2)) $((R + 2)) 1
R=$((R + 2))
assert_fails_with "rm of a missing key fails ENOENT" ENOENT unlink "$N/b"
echo d >"$N/d"
assert_meta "a failed rm took no revision" "$N/d" $((R + 1)) $((R + 1)) 1
R=$((R + 1))

# ------------------------------------------------------------------ mv
mv "$N/c" "$N/c2"
assert_missing "mv: the source is gone" "$N/c"
assert_file_content "mv: the target has the value" "$N/c2" $'c\n'
assert_meta "mv to a new name is one revision" "$N/c2" \
	$((R + 1)) $((R + 1)) 1
R=$((R + 1))

echo replaced >"$N/e"
R=$((R + 1))
mv "$N/d" "$N/e"
assert_missing "mv replacing: the source is gone" "$N/d"
assert_file_content "mv replacing: the target has the source's value" \
	"$N/e" $'d\n'
assert_meta "mv replacing a target is one put on the target" "$N/e" \
	"$R" $((R + 1)) 2
R=$((R + 1))

mkdir "$N/sub"
mv "$N/e" "$N/sub/e"
R=$(modrev "$N/sub/e")
assert_missing "mv across directories: the source is gone" "$N/e"
assert_file_content "mv across directories: the value moved" "$N/sub/e" \
	$'d\n'
echo f >"$N/f"
assert_meta "mv across directories took one revision" "$N/f" \
	$((R + 1)) $((R + 1)) 1
R=$((R + 1))

mkdir -p "$N/dir1/inner"
echo 1 >"$N/dir1/one"
echo 2 >"$N/dir1/inner/two"
R=$(modrev "$N/dir1/inner/two")
mv "$N/dir1" "$N/dir2"
assert_missing "mv of a directory: the old name is gone" "$N/dir1"
assert_file_content "mv of a directory moved its keys" "$N/dir2/one" $'1\n'
assert_file_content "mv of a directory moved its subtree" \
	"$N/dir2/inner/two" $'2\n'
assert_eq "mv of a directory is one revision for every key" \
	"$((R + 1)) $((R + 1))" \
	"$(modrev "$N/dir2/one") $(modrev "$N/dir2/inner/two")"
R=$((R + 1))

# RENAME_NOREPLACE fails EEXIST, RENAME_EXCHANGE is not supported
echo x1 >"$N/x1"
echo x2 >"$N/x2"
R=$(modrev "$N/x2")
assert_fails_with "renameat2 RENAME_NOREPLACE onto a key fails EEXIST" \
	EEXIST rename2 "$N/x1" "$N/x2" noreplace
assert_fails_with "renameat2 RENAME_EXCHANGE fails EINVAL" EINVAL \
	rename2 "$N/x1" "$N/x2" exchange
assert_eq "the refused renames changed nothing" $'x1\nx2' \
	"$(cat "$N/x1" "$N/x2")"
assert_succeeds "renameat2 RENAME_NOREPLACE to a free name works" \
	rename2 "$N/x1" "$N/x3" noreplace
assert_meta "... in one revision" "$N/x3" $((R + 1)) $((R + 1)) 1
R=$((R + 1))

# mv of a file that another descriptor keeps writing and closing (a close
# of a dup is a FUSE flush, which the kernel does not order against rename,
# unlike fsync): each commit lands under the old name before the rename or
# under the new one after it, never back under the old name once mv
# returned (before the fix, 81 of 300 renames left the old name behind).
mkdir "$N/mvw"
got=$(python3 - "$N/mvw" <<'PY'
import os, sys, threading
d, bad = sys.argv[1], 0
for i in range(60):
    src, dst = f"{d}/s{i}", f"{d}/t{i}"
    fd = os.open(src, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"0")
    os.fsync(fd)
    stop = threading.Event()
    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            os.pwrite(fd, str(n).encode(), 0)
            os.close(os.dup(fd))
    t = threading.Thread(target=writer)
    t.start()
    os.rename(src, dst)
    stop.set()
    t.join()
    os.close(fd)
    if os.path.exists(src) or not os.path.exists(dst):
        bad += 1
print(bad)
PY
)
assert_eq "mv under a writer's closes: the old name never comes back" 0 \
	"$got"
rm -r "$N/mvw" # renamed while open: they keep their old inode numbers

# a directory of more than 1000 keys: EXDEV, and mv copies instead
mkdir "$N/big"
"$RVT" mkmany "$N/big" k 0 1001 4
assert_fails_with "rename(2) of a directory of 1001 keys fails EXDEV" EXDEV \
	rename "$N/big" "$N/big2"
assert_true "mv of a directory of 1001 keys works (copy + delete)" \
	mv "$N/big" "$N/big2"
assert_eq "... all 1001 keys moved" 1001 "$(ls "$N/big2" | wc -l)"
assert_file_content "... with their values" "$N/big2/k1000" v1000
assert_missing "... and the old directory is gone" "$N/big"
rm -r "$N/big2"
assert_missing "rm -r removes a directory of 1001 keys" "$N/big2"

# a descriptor reads the version current at its open
echo old >"$N/pin"
assert_eq "an open descriptor keeps reading the version of its open" old \
	"$("$RVT" readpin "$N/pin" new)"
assert_file_content "... while a new open reads the new value" "$N/pin" new

# vim's swap-file dance: create O_EXCL, close, unlink, 500 times
mkdir "$N/tmpf"
assert_succeeds "create, close and unlink 2 x 500 temporary files" \
	tmpfiles "$N/tmpf" 500
sleep 0.5 # late commits, if any, land
left=$(ls "$N/tmpf")
assert_eq "none of the 1000 unlinked temporary files comes back" "" \
	"$(head -c 300 <<<"$left")"
for f in $(head -n 2 <<<"$left"); do
	echo "# $f@history:"
	sed 's/^/#   /' "$N/tmpf/$f@history"
done
rm -rf "$N/tmpf"
R=$(rev_now)

# ---------------------------------------------------------------- rmdir
assert_fails_with "rmdir of a non-empty namespace fails ENOTEMPTY" \
	ENOTEMPTY rmdir "$N/dir2"
assert_file_content "a refused rmdir lost nothing" "$N/dir2/one" $'1\n'
mkdir "$N/empty"
assert_true "mkdir'd namespace is listed while empty" \
	sh -c "ls '$N' | grep -qx empty"
mkdir "$N/gone"
assert_succeeds "rmdir of an empty namespace" rmdir "$N/gone"
assert_missing "rmdir: the namespace is gone" "$N/gone"

# -------------------------------------------------------- cp -r in/out
S=$T/src
mkdir -p "$S/deep/er/est" "$S/emptydir"
printf 'needle in a haystack\n' >"$S/n1"
printf 'hay\nhay\nneedle\n' >"$S/deep/n2"
printf 'only hay\n' >"$S/deep/h1"
printf '\0\1\2binary\377\n' >"$S/deep/er/bin"
: >"$S/deep/er/est/empty"
head -c 100000 /dev/urandom >"$S/big"
# versions_in DIR: the distinct versions of the keys under DIR
versions_in() {
	(cd "$1" && find . -type f | while read -r f; do
		version "$f"
		echo
	done) | sort -u | tr '\n' ' ' | sed 's/ $//'
}
r0=$(rev_now)
cp -r "$S" "$N/src"
assert_true "cp -r into the mount: diff -r finds no difference" \
	diff -r "$S" "$N/src"
assert_eq "cp -r: every key at version 1" 1 "$(versions_in "$N/src")"
assert_eq "cp -r: one revision per directory and per file (5 + 6)" \
	$((r0 + 11)) "$(rev_now)"
assert_eq "cp -r: a copied key is at version 1" 1 "$(version "$N/src/big")"
assert_eq "cp -r: stat size of a 100000-byte value" 100000 \
	"$(stat -c %s "$N/src/big")"
cp -r "$N/src" "$T/out"
assert_true "cp -r out of the mount: diff -r finds no difference" \
	diff -r "$S" "$T/out"
assert_eq "find lists the same tree" "$(cd "$S" && find . | sort)" \
	"$(cd "$N/src" && find . | sort)"
assert_eq "find -type f finds the keys" "$(cd "$S" && find . -type f | sort)" \
	"$(cd "$N/src" && find . -type f | sort)"
assert_eq "grep -r finds the needles" $'./deep/n2\n./n1' \
	"$(cd "$N/src" && grep -rl needle . | sort)"
assert_eq "ls -l shows each key's size" \
	"$(cd "$S/deep" && ls -l | awk 'NR > 1 { print $5, $NF }')" \
	"$(cd "$N/src/deep" && ls -l | awk 'NR > 1 { print $5, $NF }')"

# ------------------------------------------------------------- getfattr
d=$(getfattr -d -m - --absolute-names "$N/src/n1" 2>&1)
for a in create_revision mod_revision version lease; do
	assert_true "getfattr -d shows user.revfs.$a" \
		grep -q "^user.revfs.$a=" <<<"$d"
done
assert_true "getfattr -d values are numbers" \
	grep -Eq '^user.revfs.version="1"$' <<<"$d"

assert_fails_with "setting user.revfs.version fails EPERM" EPERM \
	setxattr "$N/src/n1" user.revfs.version 9
assert_fails_with "setting another user.* xattr fails ENOTSUP" ENOTSUP \
	setxattr "$N/src/n1" user.other x
assert_fails_with "getting another user.* xattr fails ENODATA" ENODATA \
	getxattr "$N/src/n1" user.other
assert_eq "refused xattr writes took no revision" 1 "$(version "$N/src/n1")"

# ------------------------------------------------- diff -r ns@REV ns
# the revision after cp -r.  Not the newest mod_revision of the copied
# keys: cp copies in the source directory's order, so its last revision
# may be the marker of a directory (emptydir), which an older revision of
# src does not have yet.
R0=$(cd "$N/src" && find . -type f | while read -r f; do modrev "$f"; echo; done |
	sort -n | tail -n1)
if have_rev; then
	assert_true "the newest copied key's revision is at most @revision" \
		test "$R0" -le "$(rev_now)"
	R0=$(rev_now)
fi
printf 'needle changed\n' >"$N/src/n1"
rm "$N/src/deep/h1"
echo new >"$N/src/deep/new"
assert_true "diff -r DIR@REV DIR at the current revision: no difference" \
	diff -r "$N/src@$(modrev "$N/src/deep/new")" "$N/src"
out=$(cd "$N" && diff -r "src@$R0" src 2>&1)
st=$?
assert_eq "diff -r src@REV src exits 1 on a difference" 1 "$st"
assert_eq "diff -r src@REV src shows exactly the three changes" \
	"$(printf '%s\n' "Only in src@$R0/deep: h1" "Only in src/deep: new" \
		"diff -r src@$R0/n1 src/n1" "1c1" "< needle in a haystack" \
		"---" "> needle changed")" "$out"
assert_true "the root's @REV/ shows the old tree: diff -r @REV/t/src SRC" \
	diff -r "$MNT/@$R0/t/src" "$S"
assert_true "DIR@REV/ is not listed by ls" \
	sh -c "! ls -a '$N' | grep -q @"

# ------------------------------------------------------ setfattr (lease)
if [ -d "$MNT/@leases" ]; then
	echo 60 >"$MNT/@leases/L1"
	assert_eq "echo 60 > @leases/L1 grants a lease that ls @leases lists" \
		L1 "$(ls "$MNT/@leases" | grep -x L1)"
	v=$(version "$N/src/n1")
	if setfattr -n user.revfs.lease -v L1 "$N/src/n1" 2>"$T/err"; then
		ok "setfattr user.revfs.lease attaches a key to a lease"
	else
		notok "setfattr user.revfs.lease attaches a key to a lease" \
			"$(cat "$T/err")"
	fi
	assert_xattr "the key shows its lease's name" "$N/src/n1" \
		user.revfs.lease L1
	assert_file_content "attaching a lease keeps the value" \
		"$N/src/n1" $'needle changed\n'
	assert_eq "attaching a lease is one put (version +1)" $((v + 1)) \
		"$(version "$N/src/n1")"
	assert_eq "... at the newest revision" "$(rev_now)" \
		"$(modrev "$N/src/n1")"
	assert_fails_with "attaching to a lease that does not exist fails ENOENT" \
		ENOENT setxattr "$N/src/deep/n2" user.revfs.lease nosuch
	echo x >"$N/src/lx"
	setfattr -n user.revfs.lease -v L1 "$N/src/lx"
	setfattr -x user.revfs.lease "$N/src/lx"
	assert_xattr "setfattr -x detaches the key" "$N/src/lx" \
		user.revfs.lease 0
	assert_eq "... in one more put (version 3)" 3 "$(version "$N/src/lx")"
	rm "$N/src/lx"
	assert_true "cat @leases/L1 names the attached key" \
		grep -q n1 "$MNT/@leases/L1"
	r=$(rev_now)
	rm "$MNT/@leases/L1"
	assert_missing "revoking the lease (rm) deletes its key" "$N/src/n1"
	assert_eq "... in one revision" $((r + 1)) "$(rev_now)"
	assert_eq "... and the lease is gone from ls @leases" "" \
		"$(ls "$MNT/@leases" | grep -x L1)"
	# expiry: a change the engine makes itself, not through this mount;
	# the kernel's cached entry (60 s) must be invalidated by revfs
	echo 1 >"$MNT/@leases/L2"
	echo short >"$N/src/ttl"
	setfattr -n user.revfs.lease -v L2 "$N/src/ttl"
	stat "$N/src/ttl" >/dev/null && cat "$N/src/ttl" >/dev/null
	for ((i = 0; i < 50; i++)); do
		ls "$N/src" | grep -qx ttl || break
		sleep 0.1
	done
	assert_eq "a key of an expired 1 s lease vanishes from ls within 5 s" \
		"" "$(ls "$N/src" | grep -x ttl)"
	assert_missing "... and from lookup (the cached entry was invalidated)" \
		"$N/src/ttl"
	assert_eq "... and the lease from ls @leases" "" \
		"$(ls "$MNT/@leases" | grep -x L2)"
else
	todo "setfattr -n user.revfs.lease attaches a key" "no @leases"
fi

# ---------------------------------------------------------------- sed -i
printf 'alpha\nbeta\ngamma\n' >"$N/sed"
v=$(version "$N/sed")
c=$(createrev "$N/sed")
m=$(modrev "$N/sed")
assert_true "sed -i edits a key" sed -i 's/beta/BETA/' "$N/sed"
assert_file_content "sed -i: the new value" "$N/sed" $'alpha\nBETA\ngamma\n'
assert_eq "sed -i: one more version of the same key" "$c $((v + 1))" \
	"$(createrev "$N/sed") $(version "$N/sed")"
assert_true "sed -i: the new version is the newest revision" \
	test "$(modrev "$N/sed")" -gt "$m"
assert_eq "sed -i leaves no temporary file" "" \
	"$(ls -a "$N" | grep -E '^sed.{6}$')"

# ------------------------------------------------------------ vim -es
# vim as installed (vim.basic), and vim.tiny (Debian's vim-tiny, what
# .ci/run installs as vi); at least one must exist
VIMS=""
for v in vim vim.tiny; do
	command -v $v >/dev/null && VIMS="$VIMS $v"
done
[ -n "$VIMS" ] || VIMS=vi
for VIM in $VIMS; do
	printf 'one\ntwo\nthree\n' >"$N/vim"
	v=$(version "$N/vim")
	assert_true "$VIM -es edits a key" timeout 30 $VIM -u NONE -i NONE \
		-es -c '%s/two/TWO/' -c 'wq' "$N/vim"
	assert_file_content "$VIM -es: the new value" "$N/vim" \
		$'one\nTWO\nthree\n'
	assert_true "$VIM -es: the key's version grew" \
		test "$(version "$N/vim")" -gt "$v"
	left=$(ls -a "$N" | grep -E '^\.vim\.sw|vim~$')
	assert_eq "$VIM -es leaves no swap or backup file" "" "$left"
	for f in $left; do # the leftover's history, for the post-mortem
		echo "# $f@history:"
		sed 's/^/#   /' "$N/$f@history"
	done
	# as a user runs it: with a swap file
	assert_true "$VIM -es with a swap file edits a key" timeout 30 $VIM \
		-u NONE -i NONE -N -es -c 'set swapfile' -c '%s/one/ONE/' \
		-c 'wq' "$N/vim"
	assert_file_content "$VIM -es with a swap file: the new value" \
		"$N/vim" $'ONE\nTWO\nthree\n'
	assert_eq "$VIM leaves no swap file behind" "" \
		"$(ls -a "$N" | grep -E '^\.vim\.sw')"
done

# ---------------------------------------------------------------- tar x
mkdir -p "$T/tarsrc/a/b"
for i in 1 2 3; do echo "tar $i" >"$T/tarsrc/a/f$i"; done
echo deep >"$T/tarsrc/a/b/deep"
tar -C "$T/tarsrc" -cf "$T/t.tar" .
mkdir "$N/tarx"
r0=$(rev_now)
assert_true "tar x into the mount exits 0" tar -C "$N/tarx" -xf "$T/t.tar"
assert_eq "tar x: one revision per directory and per file (2 + 4)" \
	$((r0 + 6)) "$(rev_now)"
assert_true "tar x: diff -r finds no difference" diff -r "$T/tarsrc" \
	"$N/tarx"
assert_eq "tar x: every key at version 1" 1 "$(versions_in "$N/tarx")"

# ------------------------------------------------------------ rsync -a
if command -v rsync >/dev/null; then
	assert_true "rsync -a into the mount exits 0" rsync -a "$S/" \
		"$N/rsync/"
	assert_true "rsync -a: diff -r finds no difference" diff -r "$S" \
		"$N/rsync"
	assert_eq "rsync -a: every key at version 1" 1 \
		"$(versions_in "$N/rsync")"
	echo changed >"$S/n1"
	assert_true "rsync -a of a changed tree exits 0" rsync -a "$S/" \
		"$N/rsync/"
	assert_file_content "rsync -a updated the changed key" \
		"$N/rsync/n1" $'changed\n'
	assert_eq "rsync -a: the updated key is at version 2" 2 \
		"$(version "$N/rsync/n1")"
	assert_eq "rsync -a leaves no temporary file" "" \
		"$(ls -a "$N/rsync" | grep '^\.n1\.')"
else
	todo "rsync -a into the mount" "rsync is not installed"
fi

# ----------------------------------------------------- remount keeps all
cp -r "$N" "$T/before"
(cd "$N" && find . -type f | sort | while read -r f; do
	echo "$f $(createrev "$f") $(modrev "$f") $(version "$f")"
done) >"$T/meta.before"
(cd "$N" && find . | sort | xargs stat -c '%n %i') >"$T/ino.before"
assert_stop "unmount with fusermount3 -u"
rv_start main || exit 1
N=$MNT/t
assert_true "after a remount diff -r finds no difference" \
	diff -r "$T/before" "$N"
(cd "$N" && find . -type f | sort | while read -r f; do
	echo "$f $(createrev "$f") $(modrev "$f") $(version "$f")"
done) >"$T/meta.after"
assert_true "after a remount every key has the same revisions and version" \
	diff "$T/meta.before" "$T/meta.after"
assert_true "an empty namespace survives a remount" test -d "$N/empty"
(cd "$N" && find . | sort | xargs stat -c '%n %i') >"$T/ino.after"
assert_true "inode numbers are the same after a remount" \
	diff "$T/ino.before" "$T/ino.after"

# ----------------------------------------- ls -l is one readdirplus stream
# With -d libfuse logs every request: ls -l of 300 keys after a fresh mount
# must cost no LOOKUP per entry (readdirplus returns the attributes).
"$RVT" mkmany "$N" many 0 300 2
assert_stop "unmount"
rv_start main -d || exit 1
N=$MNT/t
ls "$MNT" >/dev/null
before=$(grep -c 'opcode: LOOKUP' "$RV_LOG")
n=$(ls -l "$N" | grep -c ' many[0-9]*$')
assert_eq "ls -l after a fresh mount lists the 300 keys" 300 "$n"
lookups=$(($(grep -c 'opcode: LOOKUP' "$RV_LOG") - before))
assert_true "ls -l of 300 keys sent $lookups LOOKUP requests (at most 3)" \
	test "$lookups" -le 3
assert_true "... and was served by READDIRPLUS" \
	grep -q 'opcode: READDIRPLUS' "$RV_LOG"
# A LOOKUP's size comes from its probe's value length (fs_lookup.c), a
# listing's from its page's (values over 256 bytes are stored apart and
# not read for either).
assert_eq "stat after a fresh mount (a LOOKUP) shows a 100000-byte key's size" \
	100000 "$(stat -c %s "$N/src/big")"
got=$(cd "$N/src" && ls -l | awk 'NR > 1 && $1 !~ /^d/ { print $5, $NF }')
want=$(cd "$N/src" && for f in *; do
	[ -f "$f" ] && echo "$(wc -c <"$f") $f"
done)
assert_eq "ls -l after a fresh mount shows each key's size" "$want" "$got"
assert_true "... the 100000-byte one included" grep -qx '100000 big' <<<"$got"
