/*
 * fs_history.c — the KEY@history file: one line per retained version,
 * oldest first, "REV TYPE VERSION SIZE TIME" (docs/reference.md §4).
 *
 * The text is generated as it is read, a page of versions at a time, so a
 * key with a long history costs one page of memory.  Sequential reads
 * continue from the last page; a read before the current page restarts from
 * the oldest version.
 */
#include "fs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FS_HIST_PAGE 1000
#define FS_HIST_LINE 96

struct fs_hist {
	pthread_mutex_t lock;
	struct fs *fs;
	char *key;
	size_t key_len;
	char *text;      /* the current page's lines; protected by lock */
	size_t text_len; /* protected by lock */
	off_t text_off;  /* file offset of text[0]; protected by lock */
	eng_rev_t next;  /* first revision of the next page; protected */
	bool started;    /* protected by lock */
	bool done;       /* no page after this one; protected by lock */
};

static size_t fmt_time(char *out, size_t n, int64_t ns)
{
	struct tm tm;
	time_t t;
	size_t w;

	if (ns <= 0)
		return (size_t)snprintf(out, n, "-");
	t = (time_t)(ns / 1000000000);
	gmtime_r(&t, &tm);
	w = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	w += (size_t)snprintf(out + w, n - w, ".%09lldZ",
	                      (long long)(ns % 1000000000));
	return w;
}

static int next_page(struct fs_hist *h)
{
	struct eng_range_res res = {0};
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = eng_history(h->fs->e, h->key, h->key_len, h->next, FS_HIST_PAGE,
	                 &res);
	if (rc < 0) {
		rc = -fs_errno(rc);
		goto out;
	}
	text = malloc(res.n * FS_HIST_LINE + 1);
	if (!text) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < res.n; i++) {
		const struct eng_kv *kv = &res.kvs[i];
		char ts[48];

		fmt_time(ts, sizeof(ts), kv->mtime_ns);
		len += (size_t)snprintf(
		    text + len, FS_HIST_LINE, "%lld %s %lld %zu %s\n",
		    (long long)kv->mod_rev, kv->deleted ? "DELETE" : "PUT",
		    (long long)(kv->deleted ? 0 : kv->version),
		    kv->deleted ? (size_t)0 : kv->value_len, ts);
	}
	h->text_off += (off_t)h->text_len;
	free(h->text);
	h->text = text;
	h->text_len = len;
	text = NULL;
	if (res.n)
		h->next = res.kvs[res.n - 1].mod_rev + 1;
	h->done = !res.more || res.n == 0;
	h->started = true;
out:
	free(text);
	eng_range_res_release(&res);
	return rc;
}

int fs_hist_open(struct fs *fs, const char *key, size_t key_len,
                 struct fs_hist **out)
{
	struct fs_hist *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->key = malloc(key_len + 1);
	if (!h->key) {
		free(h);
		return -ENOMEM;
	}
	memcpy(h->key, key, key_len);
	h->key_len = key_len;
	h->fs = fs;
	pthread_mutex_init(&h->lock, NULL);
	*out = h;
	return 0;
}

ssize_t fs_hist_read(struct fs_hist *h, char *buf, size_t size, off_t off)
{
	ssize_t rc = 0;
	size_t got = 0;

	pthread_mutex_lock(&h->lock);
	if (!h->started || off < h->text_off) {
		free(h->text);
		h->text = NULL;
		h->text_len = 0;
		h->text_off = 0;
		h->next = 0;
		h->done = false;
		rc = next_page(h);
		if (rc < 0)
			goto out;
	}
	while (got < size) {
		off_t at = off + (off_t)got;

		if (at >= h->text_off + (off_t)h->text_len) {
			if (h->done)
				break;
			rc = next_page(h);
			if (rc < 0)
				goto out;
			continue;
		}
		size_t from = (size_t)(at - h->text_off);
		size_t n = h->text_len - from;

		if (n > size - got)
			n = size - got;
		memcpy(buf + got, h->text + from, n);
		got += n;
	}
	rc = (ssize_t)got;
out:
	pthread_mutex_unlock(&h->lock);
	return rc;
}

void fs_hist_free(struct fs_hist *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->lock);
	free(h->text);
	free(h->key);
	free(h);
}
