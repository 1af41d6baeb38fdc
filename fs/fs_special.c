/*
 * fs_special.c — the table of control names (docs/reference.md §2).
 *
 * Each row is one `@` name with the callbacks that make its content.  Only
 * `@revision` lives here for now; the control files of issue 5 (@compact,
 * @stats, @leases/, @watch, @snapshot) are added as rows.
 */
#include "fs_ctl.h"
#include "fs_int.h"
#include "fs_lease.h"
#include "fs_special.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rd_revision(struct fs *fs, const char *dir, size_t dir_len,
                       eng_rev_t rev, char **buf, size_t *len)
{
	char *b = malloc(32);

	if (!b)
		return -ENOMEM;
	*len = (size_t)snprintf(b, 32, "%lld\n",
	                        (long long)eng_current_rev(fs->e));
	*buf = b;
	return 0;
}

static const struct fs_special table[] = {
    {"@revision", false, false, S_IFREG | 0444, rd_revision, NULL},
    {"@watch", true, true, S_IFREG | 0444, NULL, NULL},
    {"@compact", false, false, S_IFREG | 0644, fs_ctl_compact_read,
     fs_ctl_compact_write},
    {"@stats", false, false, S_IFREG | 0444, fs_ctl_stats_read, NULL},
    /* a stream: fs_file.c serves it through fs_ctl_snapshot_*() */
    {"@snapshot", false, false, S_IFREG | 0400, NULL, NULL},
    /* the lease directory and its files ("@leases/NAME" matches no name) */
    {"@leases", false, false, S_IFDIR | 0755, NULL, fs_lease_row_write},
    {"@leases/NAME", false, false, S_IFREG | 0644, NULL, fs_lease_row_write},
};

int fs_special_find(const char *name, eng_rev_t *rev)
{
	size_t len = strlen(name);

	*rev = 0;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		size_t n = strlen(table[i].name);

		if (len == n && memcmp(name, table[i].name, n) == 0)
			return (int)i;
		if (table[i].rev_suffix && len > n + 1 &&
		    memcmp(name, table[i].name, n) == 0 && name[n] == '@' &&
		    fs_parse_rev(name + n + 1, len - n - 1, rev) == 0)
			return (int)i;
	}
	return -1;
}

const struct fs_special *fs_special_get(int idx)
{
	if (idx < 0 || (size_t)idx >= sizeof(table) / sizeof(table[0]))
		return NULL;
	return &table[idx];
}
