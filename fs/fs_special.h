/*
 * fs_special.h — the table of revfs's control names (`@revision`, ...).
 *
 * A control name starts with `@` and is resolved in the mount root (or in
 * any directory, for entries with per_dir set) from this table, so adding a
 * control file is adding a row: a name, whether it takes an `@REV` suffix,
 * and the callbacks that produce its content or take a write.
 */
#ifndef REVFS_FS_SPECIAL_H
#define REVFS_FS_SPECIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "engine/engine.h"

struct fs;

struct fs_special {
	const char *name; /* with its leading '@' */
	bool rev_suffix;  /* also answers NAME@REV */
	bool per_dir;     /* resolved in every directory, not only the root */
	mode_t mode;      /* S_IFREG | permissions */
	/* Produce the whole content at open (malloc'd, freed by the caller);
	 * `dir` is the directory's key prefix.  NULL: a stream (`@watch`,
	 * served by fs_watch.c). */
	int (*read)(struct fs *fs, const char *dir, size_t dir_len,
	            eng_rev_t rev, char **buf, size_t *len);
	/* Take the content written, at flush; NULL: read-only (EACCES). */
	int (*write)(struct fs *fs, const char *buf, size_t len);
};

/* The index of `name` (with an optional @REV suffix put in *rev), or -1. */
int fs_special_find(const char *name, eng_rev_t *rev);
const struct fs_special *fs_special_get(int idx);

#endif /* REVFS_FS_SPECIAL_H */
