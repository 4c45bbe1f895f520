// SPDX-License-Identifier: BSD-2-Clause
/*
 * Count mode's consumer half. The kernel keeps cumulative calls and errors
 * per process x syscall; each poll reads them all, hands the differences
 * since the previous poll to the aggregator, and removes the counters of
 * processes that are gone.
 *
 * A process is gone when kill(tgid, 0) says ESRCH: its pid is freed only
 * after every thread passed its exit hooks, so the poll that first sees
 * ESRCH (checked before the map is read) also reads the final counts, and
 * nothing is lost by deleting them right after. Candidates are the
 * processes whose last thread exited (GROUP_DEAD records) and, every
 * SWEEP_EVERY polls, every process in the table (in case such a record was
 * dropped).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define SWEEP_EVERY	16

struct count_entry {
	uint64_t key;			/* tgid << 32 | 1 << 31 | nr; 0 = empty */
	uint64_t calls;
	uint64_t errors;
	int gone;			/* its process is gone: delete after this poll */
};

struct count_table {
	struct count_entry *tab;
	uint32_t cap;			/* power of two */
	uint32_t used;
	uint32_t *exited;		/* candidates: tgids whose last thread exited */
	uint32_t nexited, cexited;
	uint32_t *dead;			/* confirmed gone in this poll, sorted */
	uint32_t ndead, cdead;
	uint32_t polls;
	struct syscap_agg *agg;		/* for the poll in progress */
	int err;
};

static inline uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

static inline uint64_t key_of(uint32_t tgid, uint32_t nr)
{
	return (uint64_t)tgid << 32 | 1ULL << 31 | nr;
}

struct count_table *count_table_new(void)
{
	struct count_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cap = 1024;
	t->tab = calloc(t->cap, sizeof(*t->tab));
	if (!t->tab) {
		free(t);
		return NULL;
	}
	return t;
}

void count_table_free(struct count_table *t)
{
	if (!t)
		return;
	free(t->tab);
	free(t->exited);
	free(t->dead);
	free(t);
}

static int push(uint32_t **arr, uint32_t *n, uint32_t *cap, uint32_t v)
{
	if (*n == *cap) {
		uint32_t ncap = *cap ? *cap * 2 : 64;
		uint32_t *na = realloc(*arr, ncap * sizeof(*na));

		if (!na)
			return -ENOMEM;
		*arr = na;
		*cap = ncap;
	}
	(*arr)[(*n)++] = v;
	return 0;
}

void count_table_exited(struct count_table *t, uint32_t tgid)
{
	push(&t->exited, &t->nexited, &t->cexited, tgid);
}

/* Rebuild into a table of cap entries, leaving out the gone ones. */
static int rebuild(struct count_table *t, uint32_t cap)
{
	struct count_entry *nt = calloc(cap, sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	t->used = 0;
	for (uint32_t i = 0; i < t->cap; i++) {
		struct count_entry *e = &t->tab[i];
		uint32_t j;

		if (!e->key || e->gone)
			continue;
		for (j = mix(e->key) & (cap - 1); nt[j].key; j = (j + 1) & (cap - 1))
			;
		nt[j] = *e;
		t->used++;
	}
	free(t->tab);
	t->tab = nt;
	t->cap = cap;
	return 0;
}

static struct count_entry *find(struct count_table *t, uint64_t key)
{
	uint32_t i;

	for (i = mix(key) & (t->cap - 1); t->tab[i].key; i = (i + 1) & (t->cap - 1))
		if (t->tab[i].key == key)
			return &t->tab[i];
	if ((t->used + 1) * 4 > t->cap * 3) {	/* keep load under 3/4 */
		if (rebuild(t, t->cap * 2))
			return NULL;
		return find(t, key);
	}
	t->used++;
	t->tab[i].key = key;
	return &t->tab[i];
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int is_dead(struct count_table *t, uint32_t tgid)
{
	return t->ndead && bsearch(&tgid, t->dead, t->ndead, sizeof(tgid), cmp_u32);
}

static int gone(uint32_t tgid)
{
	return kill((pid_t)tgid, 0) && errno == ESRCH;
}

/* Fill t->dead with the candidates that are gone; zombies stay candidates. */
static void find_dead(struct count_table *t)
{
	uint32_t keep = 0;

	t->ndead = 0;
	for (uint32_t i = 0; i < t->nexited; i++) {
		uint32_t tgid = t->exited[i];

		if (gone(tgid))
			push(&t->dead, &t->ndead, &t->cdead, tgid);
		else
			t->exited[keep++] = tgid;
	}
	t->nexited = keep;
	if (++t->polls % SWEEP_EVERY == 0) {
		uint32_t last = 0;

		for (uint32_t i = 0; i < t->cap; i++) {
			uint32_t tgid = (uint32_t)(t->tab[i].key >> 32);

			/* consecutive entries of one process are common: skip repeats */
			if (t->tab[i].key && tgid != last && gone(tgid))
				push(&t->dead, &t->ndead, &t->cdead, tgid);
			last = tgid;
		}
	}
	if (t->ndead > 1)
		qsort(t->dead, t->ndead, sizeof(*t->dead), cmp_u32);
}

static void on_count(void *ctx, const struct syscap_count_key *k, const struct syscap_count_val *v)
{
	struct count_table *t = ctx;
	struct count_entry *e = find(t, key_of(k->tgid, k->nr));

	if (!e) {
		t->err = -ENOMEM;
		return;
	}
	/* counters only grow; unsigned differences survive a wrap */
	syscap_agg_add_count(t->agg, k->tgid, k->nr, v->calls - e->calls, v->errors - e->errors);
	e->calls = v->calls;
	e->errors = v->errors;
	e->gone = is_dead(t, k->tgid);
}

int count_table_poll(struct count_table *t, struct syscap_backend *b, struct syscap_agg *agg)
{
	int ret, removed = 0;

	find_dead(t);
	t->agg = agg;
	t->err = 0;
	ret = b->ops->read_counts(b, on_count, t);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < t->cap; i++) {
		struct count_entry *e = &t->tab[i];
		struct syscap_count_key k;

		if (!e->key || !e->gone)
			continue;
		k.tgid = (uint32_t)(e->key >> 32);
		k.nr = (uint32_t)(e->key & 0x7fffffff);
		b->ops->forget_count(b, &k);
		removed = 1;
	}
	if (removed)
		ret = rebuild(t, t->cap);
	return ret ? ret : t->err;
}
