/*
 * watch.c — the watch hub (temporary placeholder so the local core links;
 * the real hub replaces it).  Every call fails or does nothing.
 */
#include "eng_int.h"

#include <stdlib.h>

int watch_hub_new(struct local *l, const struct eng_options *opt,
                  eng_rev_t current_rev, struct watch_hub **out)
{
	*out = NULL;
	return 0;
}

void watch_hub_shutdown(struct watch_hub *h)
{
}

void watch_hub_free(struct watch_hub *h)
{
}

void watch_hub_publish(struct watch_hub *h, eng_rev_t rev,
                       const struct eng_event *evs, size_t n)
{
}

void watch_hub_advance(struct watch_hub *h, eng_rev_t rev)
{
}

int64_t watch_hub_count(struct watch_hub *h)
{
	return 0;
}

int watch_hub_open(struct watch_hub *h, const void *key, size_t key_len,
                   const void *end, size_t end_len, eng_rev_t start,
                   eng_watch_notify_fn notify, void *arg, eng_watch **out)
{
	return ENG_E_INTERNAL;
}
