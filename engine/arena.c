/*
 * arena.c — a bump allocator for result memory (see eng_int.h): many small
 * copies of keys and values are freed at once by a single release.
 *
 * Invariant: a chunk is never moved, so pointers handed out stay valid until
 * eng_arena_free().  Large requests get a chunk of their own.
 */
#include "eng_int.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 4096

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t cap;
	max_align_t data[]; /* cap bytes */
};

struct eng_arena {
	struct arena_chunk *head;
};

struct eng_arena *eng_arena_new(void)
{
	return calloc(1, sizeof(struct eng_arena));
}

void *eng_arena_alloc(struct eng_arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t need = (n + 7) & ~(size_t)7;
	size_t cap;

	if (need == 0)
		need = 8;
	if (c && c->cap - c->used >= need) {
		void *p = (char *)c->data + c->used;

		c->used += need;
		return p;
	}
	cap = need > ARENA_CHUNK / 4 ? need : ARENA_CHUNK;
	c = malloc(sizeof(*c) + cap);
	if (!c)
		return NULL;
	c->cap = cap;
	c->used = need;
	/* A dedicated big chunk goes behind the head so the head keeps its
	 * free space for the small copies that follow. */
	if (cap == need && a->head) {
		c->next = a->head->next;
		a->head->next = c;
	} else {
		c->next = a->head;
		a->head = c;
	}
	return c->data;
}

void *eng_arena_dup(struct eng_arena *a, const void *p, size_t n)
{
	void *d = eng_arena_alloc(a, n);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

void eng_arena_free(struct eng_arena *a)
{
	struct arena_chunk *c, *next;

	if (!a)
		return;
	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}
