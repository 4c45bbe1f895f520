/* The consumer's hash table (src/hash.c): lookups across growth, rebuilds
 * that leave entries out, clearing. */
#include <string.h>
#include "check.h"
#include "hash.h"

struct entry {
	uint64_t key;
	uint64_t value;
};

static int odd_value(const void *e)
{
	return ((const struct entry *)e)->value & 1;
}

static void test_entries_survive_growth(void)
{
	struct hash_table h;
	struct entry *e;
	int fresh = 0, missing = 0;

	CHECK_EQ(hash_init(&h, 8, sizeof(struct entry)), 0);
	CHECK(hash_find(&h, 7) == NULL);
	for (uint64_t k = 1; k <= 10000; k++) {
		e = hash_get(&h, k * 0x10001);
		fresh += e && e->value == 0;
		if (e)
			e->value = k;
	}
	CHECK_EQ(fresh, 10000);	/* each added zeroed */
	CHECK_EQ(h.used, 10000);
	CHECK(h.cap >= 10000 * 4 / 3);
	CHECK_EQ(h.cap & (h.cap - 1), 0);	/* a power of two */
	for (uint64_t k = 1; k <= 10000; k++) {
		e = hash_find(&h, k * 0x10001);
		missing += !e || e->value != k;
	}
	CHECK_EQ(missing, 0);
	e = hash_get(&h, 5 * 0x10001);
	CHECK(e != NULL && e->value == 5);	/* found, not added again */
	CHECK_EQ(h.used, 10000);
	hash_free(&h);
}

static void test_rebuild_keeps_what_keep_keeps(void)
{
	struct hash_table h;
	uint32_t cap;
	int wrong = 0;

	CHECK_EQ(hash_init(&h, 64, sizeof(struct entry)), 0);
	for (uint64_t k = 1; k <= 40; k++)
		((struct entry *)hash_get(&h, k))->value = k;
	cap = h.cap;
	CHECK_EQ(hash_rebuild(&h, cap, odd_value), 0);
	CHECK_EQ(h.used, 20);
	CHECK_EQ(h.cap, cap);
	for (uint64_t k = 1; k <= 40; k++) {
		struct entry *e = hash_find(&h, k);

		wrong += (k & 1) ? !e || e->value != k : e != NULL;
	}
	CHECK_EQ(wrong, 0);
	hash_free(&h);
}

/* Clearing writes the listed entries, or every slot when the list is short. */
static void test_clear_listed_empties_the_table(void)
{
	struct hash_table h;
	void *listed[64];
	uint32_t n = 0, left = 0;

	CHECK_EQ(hash_init(&h, 64, sizeof(struct entry)), 0);
	for (uint64_t k = 1; k <= 40; k++)
		((struct entry *)hash_insert(&h, k))->value = k;
	for (uint32_t i = 0; i < h.cap; i++)
		if (*(uint64_t *)hash_slot(&h, i))
			listed[n++] = hash_slot(&h, i);
	CHECK_EQ(n, 40);
	hash_clear_listed(&h, listed, n);
	CHECK_EQ(h.used, 0);
	for (uint32_t i = 0; i < h.cap; i++)
		left += ((struct entry *)hash_slot(&h, i))->key != 0 ||
			((struct entry *)hash_slot(&h, i))->value != 0;
	CHECK_EQ(left, 0);

	for (uint64_t k = 1; k <= 10; k++)
		((struct entry *)hash_insert(&h, k))->value = k;
	hash_clear_listed(&h, listed, 3);	/* not all of them: every slot */
	CHECK_EQ(h.used, 0);
	for (uint64_t k = 1; k <= 10; k++)
		left += hash_find(&h, k) != NULL;
	CHECK_EQ(left, 0);
	hash_free(&h);
}

int main(void)
{
	test_entries_survive_growth();
	test_rebuild_keeps_what_keep_keeps();
	test_clear_listed_empties_the_table();
	return check_report("test_hash");
}
