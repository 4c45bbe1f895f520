// SPDX-License-Identifier: BSD-2-Clause
/* The consumer's hash table: see hash.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"

int hash_init(struct hash_table *h, uint32_t cap, size_t size)
{
	h->slots = calloc(cap, size);
	h->cap = h->slots ? cap : 0;
	h->used = 0;
	h->size = size;
	return h->slots ? 0 : -ENOMEM;
}

void hash_free(struct hash_table *h)
{
	free(h->slots);
	h->slots = NULL;
	h->cap = h->used = 0;
}

int hash_rebuild(struct hash_table *h, uint32_t cap, int (*keep)(const void *entry))
{
	struct hash_table n;

	if (hash_init(&n, cap, h->size))
		return -ENOMEM;
	for (uint32_t i = 0; i < h->cap; i++) {
		const uint64_t *e = hash_slot(h, i);

		if (!*e || (keep && !keep(e)))
			continue;
		memcpy(hash_probe(&n, *e), e, h->size);
		n.used++;
	}
	free(h->slots);
	*h = n;
	return 0;
}

void *hash_insert(struct hash_table *h, uint64_t key)
{
	uint64_t *k;

	if ((h->used + 1) * 4 > h->cap * 3 && hash_rebuild(h, h->cap * 2, NULL))
		return NULL;
	k = hash_probe(h, key);
	*k = key;
	h->used++;
	return k;
}

void hash_clear_listed(struct hash_table *h, void *const *entries, uint32_t n)
{
	if (n != h->used) {
		memset(h->slots, 0, (size_t)h->cap * h->size);
	} else {
		for (uint32_t i = 0; i < n; i++)
			memset(entries[i], 0, h->size);
	}
	h->used = 0;
}
