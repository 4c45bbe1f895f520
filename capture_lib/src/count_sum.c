// SPDX-License-Identifier: BSD-2-Clause
/*
 * Both backends keep count mode's counters per CPU, so a process x syscall
 * comes once per CPU that counted it: one sum for both (the module's
 * READ_COUNTS copies, the eBPF tables read in place).
 */
#include <stdlib.h>
#include "internal.h"
#include "syscap_kmod.h"

static int by_key(const void *a, const void *b)
{
	const struct syscap_kmod_count *x = a, *y = b;

	if (x->tgid != y->tgid)
		return x->tgid < y->tgid ? -1 : 1;
	return x->nr < y->nr ? -1 : x->nr > y->nr;
}

void syscap_count_sum(struct syscap_kmod_count *v, size_t n, syscap_count_fn fn, void *ctx)
{
	size_t i, j;

	qsort(v, n, sizeof(*v), by_key);
	for (i = 0; i < n; i = j) {
		struct syscap_count_key k = { .tgid = v[i].tgid, .nr = v[i].nr };
		struct syscap_count_val sum = { 0, 0 };

		for (j = i; j < n && !by_key(&v[i], &v[j]); j++) {
			sum.calls += v[j].calls;
			sum.errors += v[j].errors;
		}
		fn(ctx, &k, &sum);
	}
}
