/*
 * fs_main.c — the filesystem's state and its operations table.
 *
 * struct fs ties the engine, the configuration (prefix normalised to end
 * in '/'), the inode table and the notifier together; the daemon creates it
 * over an open engine, passes fs_lowlevel_ops() and the fs to
 * fuse_session_new(), and frees it after the session ends and before
 * eng_close().
 */
#include "fs_int.h"
#include "fs_lease.h"
#include "fs_replay.h"
#include "fs_watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct fuse_lowlevel_ops ops = {
    .init = fs_op_init,
    .destroy = fs_op_destroy,
    .lookup = fs_op_lookup,
    .forget = fs_op_forget,
    .forget_multi = fs_op_forget_multi,
    .getattr = fs_op_getattr,
    .setattr = fs_op_setattr,
    .mknod = fs_op_mknod,
    .mkdir = fs_op_mkdir,
    .unlink = fs_op_unlink,
    .rmdir = fs_op_rmdir,
    .rename = fs_op_rename,
    .open = fs_op_open,
    .read = fs_op_read,
    .write = fs_op_write,
    .flush = fs_op_flush,
    .release = fs_op_release,
    .fsync = fs_op_fsync,
    .opendir = fs_op_opendir,
    .readdir = fs_op_readdir,
    .readdirplus = fs_op_readdirplus,
    .releasedir = fs_op_releasedir,
    .statfs = fs_op_statfs,
    .setxattr = fs_op_setxattr,
    .getxattr = fs_op_getxattr,
    .listxattr = fs_op_listxattr,
    .removexattr = fs_op_removexattr,
    .create = fs_op_create,
    .poll = fs_op_poll,
};

const struct fuse_lowlevel_ops *fs_lowlevel_ops(void)
{
	return &ops;
}

void fs_handle_link(struct fs *fs, struct fs_hlink *head, struct fs_hlink *h)
{
	pthread_mutex_lock(&fs->handles_lock);
	h->next = head->next;
	h->prev = head;
	head->next->prev = h;
	head->next = h;
	pthread_mutex_unlock(&fs->handles_lock);
}

void fs_handle_unlink(struct fs *fs, struct fs_hlink *h)
{
	pthread_mutex_lock(&fs->handles_lock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	h->prev = h->next = h;
	pthread_mutex_unlock(&fs->handles_lock);
}

int fs_new(eng *e, const struct fs_config *cfg, struct fs **out)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	size_t plen = cfg->prefix ? strlen(cfg->prefix) : 0;
	int rc;

	if (!fs)
		return -ENOMEM;
	fs->e = e;
	fs->cfg = *cfg;
	fs->notify_efd = -1;
	pthread_mutex_init(&fs->inval_lock, NULL);
	pthread_mutex_init(&fs->handles_lock, NULL);
	pthread_mutex_init(&fs->acommit_lock, NULL);
	pthread_cond_init(&fs->acommit_cond, NULL);
	fs->file_handles.prev = fs->file_handles.next = &fs->file_handles;
	fs->dir_handles.prev = fs->dir_handles.next = &fs->dir_handles;
	fs->prefix = malloc(plen + 2);
	if (!fs->prefix) {
		free(fs);
		return -ENOMEM;
	}
	if (plen)
		memcpy(fs->prefix, cfg->prefix, plen);
	if (plen && fs->prefix[plen - 1] != '/')
		fs->prefix[plen++] = '/';
	fs->prefix[plen] = '\0';
	fs->prefix_len = plen;
	fs->cfg.prefix = fs->prefix;
	clock_gettime(CLOCK_REALTIME, &fs->start_time);
	fs->own_revs = calloc(FS_OWN_REVS, sizeof(*fs->own_revs));
	rc = fs->own_revs ? fs_itab_init(fs) : -ENOMEM;
	if (rc < 0) {
		fs_free(fs);
		return rc;
	}
	*out = fs;
	return 0;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	fs_acommit_drain(fs);
	fs_stop_notifier(fs);
	if (fs->by_ino) {
		fs_commit_all(fs);
		fs_file_release_all(fs);
		fs_dir_release_all(fs); /* their snapshots, before eng_close */
	}
	fs_watch_free(fs); /* after the streams' handles were released */
	fs_lease_free(fs);
	fs_replay_free(fs);
	fs_itab_free(fs);
	pthread_mutex_destroy(&fs->inval_lock);
	pthread_mutex_destroy(&fs->handles_lock);
	pthread_mutex_destroy(&fs->acommit_lock);
	pthread_cond_destroy(&fs->acommit_cond);
	free(fs->own_revs);
	free(fs->prefix);
	free(fs);
}
