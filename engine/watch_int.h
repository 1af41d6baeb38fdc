/*
 * watch_int.h — private knobs of the watch hub (engine/watch.c) that are not
 * part of the seams in eng_int.h.  Only tests use them.
 */
#ifndef REVFS_WATCH_INT_H
#define REVFS_WATCH_INT_H

#include <stddef.h>

/*
 * The hub's memory bounds.  The window keeps at most window_events events
 * and window_bytes bytes of recent events shared by every watcher; each
 * watcher queues at most queue_events events / queue_bytes bytes (plus one
 * revision) before it is switched to catch-up.
 */
struct watch_limits {
	size_t window_events;
	size_t window_bytes;
	size_t queue_events;
	size_t queue_bytes;
};

/*
 * For tests: the limits used by every hub created from now on (NULL restores
 * the defaults).  Not thread-safe: call it before eng_open().
 */
void watch_set_test_limits(const struct watch_limits *lim);

/*
 * For tests: the next n publishes act as if memory ran out (their events
 * are not kept), so the hub's recovery path runs: live watchers replay the
 * lost revisions from the store.
 */
void watch_test_fail_publishes(int n);

/*
 * For tests: what watch w (opened on a hub: the local or the etcd backend)
 * holds queued for its reader now — events, and their accounted bytes
 * (each event's header, key and value).  The bound a reader that stops
 * reading is held to.
 */
struct eng_watch;
void watch_test_queued(struct eng_watch *w, size_t *events, size_t *bytes);

#endif /* REVFS_WATCH_INT_H */
