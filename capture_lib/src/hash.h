/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The consumer's hash tables (aggregates per process x syscall, process
 * tables, count mode's last readings): open addressing with linear probing,
 * load kept under 3/4, no allocation per lookup. An entry is `size` bytes
 * and starts with its uint64_t key; key 0 marks an empty slot, so callers
 * never use it. There is no single delete (it would break probe chains):
 * hash_rebuild() keeps what its callback keeps.
 */
#ifndef SYSCAP_HASH_H
#define SYSCAP_HASH_H

#include <stddef.h>
#include <stdint.h>

struct hash_table {
	unsigned char *slots;
	uint32_t cap;			/* power of two */
	uint32_t used;
	size_t size;			/* bytes per entry */
};

/* An empty table of cap (a power of two) entries of size bytes: 0 or -ENOMEM. */
int hash_init(struct hash_table *h, uint32_t cap, size_t size);
void hash_free(struct hash_table *h);
/* Slot i (0 .. cap-1), for walking the table: empty when its key is 0. */
static inline void *hash_slot(const struct hash_table *h, uint32_t i)
{
	return h->slots + (size_t)i * h->size;
}

static inline uint64_t hash_mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

/* The slot holding key, or the empty slot where it would go. */
static inline uint64_t *hash_probe(const struct hash_table *h, uint64_t key)
{
	for (uint32_t i = (uint32_t)hash_mix(key) & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
		uint64_t *k = hash_slot(h, i);

		if (*k == key || !*k)
			return k;
	}
}

/* The entry with key, or NULL. */
static inline void *hash_find(const struct hash_table *h, uint64_t key)
{
	uint64_t *k = hash_probe(h, key);

	return *k ? k : NULL;
}

/* Add key (absent) as a zeroed entry, growing the table first if needed:
 * pointers into the table are then stale. NULL when memory runs out. */
void *hash_insert(struct hash_table *h, uint64_t key);

/* The entry with key, added zeroed if absent (see hash_insert). */
static inline void *hash_get(struct hash_table *h, uint64_t key)
{
	uint64_t *k = hash_probe(h, key);

	return *k ? k : hash_insert(h, key);
}

/* Move the entries into a fresh table of cap slots, leaving out those
 * keep() refuses (keep NULL: all stay). 0, or -ENOMEM with h unchanged. */
int hash_rebuild(struct hash_table *h, uint32_t cap, int (*keep)(const void *entry));
/* Empty the table, the capacity kept, given its n used entries (as a walk of
 * hash_slot found them): only those are written, unless n is not the count
 * of used entries, when every slot is. */
void hash_clear_listed(struct hash_table *h, void *const *entries, uint32_t n);

#endif /* SYSCAP_HASH_H */
