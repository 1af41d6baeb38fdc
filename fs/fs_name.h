/*
 * fs_name.h — the reversible encoding between key segments and file names,
 * and the parsing of revfs's own `@` names (docs/reference.md §2).
 */
#ifndef REVFS_FS_NAME_H
#define REVFS_FS_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

#define FS_NAME_MAX 255 /* Linux's NAME_MAX */
/* A hashed name keeps this many bytes of the encoded segment. */
#define FS_NAME_HASH_KEEP 200
/* The longest raw segment a (non-hashed) name can decode to. */
#define FS_SEG_MAX FS_NAME_MAX

/* 64-bit FNV-1a. */
uint64_t fs_hash64(const void *p, size_t len, uint64_t seed);

/*
 * Encode a raw segment into a name in out[FS_NAME_MAX + 1] (NUL-terminated).
 * Returns the name's length, or -ENAMETOOLONG if it is over FS_NAME_MAX and
 * !hashed_ok; with hashed_ok a long segment gets its hashed name.
 */
int fs_name_encode(const char *seg, size_t len, bool hashed_ok, char *out);

/* A decoded name. */
struct fs_dname {
	char seg[FS_SEG_MAX + 1]; /* the raw segment (or, hashed: its prefix) */
	size_t len;
	bool twin;     /* "NAME%": the directory twin of file NAME */
	bool hashed;   /* "PREFIX%%HASH": seg holds the raw prefix only */
	uint64_t hash; /* hashed: fs_hash64 of the whole raw segment */
};

/*
 * Decode a name (without any `@` part).  Returns 0, or -EINVAL if the name
 * is not one the encoding produces (non-canonical), or -ENAMETOOLONG.
 */
int fs_name_decode(const char *name, size_t len, struct fs_dname *out);

/* What a name looked up in a directory means. */
enum fs_pkind {
	FS_P_PLAIN,   /* an encoded segment */
	FS_P_AT_REV,  /* BASE@REV: file or directory at REV */
	FS_P_DIR_REV, /* @REV: the directory itself at REV */
	FS_P_HISTORY, /* BASE@history */
	FS_P_IFREV,   /* BASE@ifrev=REV */
	FS_P_SPECIAL, /* a control name from the special table */
};

struct fs_pname {
	enum fs_pkind kind;
	const char *base; /* the encoded base (before '@'); not terminated */
	size_t base_len;
	eng_rev_t rev; /* AT_REV, DIR_REV, IFREV; SPECIAL: its @REV or 0 */
	int special;   /* SPECIAL: index in the special table */
};

/* Decimal revision: digits only, no sign, fits int64.  0 or -EINVAL. */
int fs_parse_rev(const char *s, size_t len, eng_rev_t *out);
/* What `echo N > FILE` writes to a control or lease file: one positive
 * decimal (as fs_parse_rev), blanks around it and a newline allowed.  0 or
 * -EINVAL. */
int fs_parse_written_number(const char *buf, size_t len, int64_t *out);

/*
 * Split a looked-up name into its kind.  Returns 0, or -ENOENT for an `@`
 * name that means nothing (callers creating a name turn it into EINVAL).
 */
int fs_parse_name(const char *name, struct fs_pname *out);

#endif /* REVFS_FS_NAME_H */
