// SPDX-License-Identifier: BSD-2-Clause
/*
 * The consumer side of a per-CPU ring (BPF ring buffer layout, see
 * syscap_backend.h). Records are read where the producer wrote them; the
 * consumer position is published once per batch, not per record, so the
 * producer sees space freed in steps and the consumer writes one cache line
 * per batch instead of one per record.
 */
#include "syscap_backend.h"

static inline uint64_t load_acquire(const volatile uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint32_t load_acquire32(const volatile uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

uint64_t syscap_ring_used(const struct syscap_ring *r)
{
	uint64_t prod = load_acquire(r->producer_pos);
	uint64_t cons = load_acquire(r->consumer_pos);

	return prod - cons;
}

long syscap_ring_drain(struct syscap_ring *r, syscap_rec_fn fn, void *ctx, long max_records)
{
	uint64_t cons = *r->consumer_pos;	/* only we write it */
	uint64_t prod = load_acquire(r->producer_pos);
	uint64_t mask = r->size - 1;
	long n = 0;

	/* read by other threads for snapshots and totals; only we write it */
	if (prod - cons > r->max_used)
		__atomic_store_n(&r->max_used, prod - cons, __ATOMIC_RELAXED);

	while (cons < prod && n < max_records) {
		const volatile uint32_t *hdr =
			(const volatile uint32_t *)(r->data + (cons & mask));
		uint32_t len = load_acquire32(hdr);

		if (len & SYSCAP_RB_BUSY_BIT)
			break;	/* still being written: stop, keep order */
		len &= ~SYSCAP_RB_BUSY_BIT;
		if (!(len & SYSCAP_RB_DISCARD_BIT) && len >= SYSCAP_REC_SIZE) {
			const uint8_t *rec = (const uint8_t *)hdr + SYSCAP_RB_HDR_SZ;

			fn(ctx, (const struct syscap_rec *)rec,
			   len >= SYSCAP_RING_ARGS_LEN ?
			   (const uint64_t *)(rec + SYSCAP_RING_ARGS_OFF) : NULL);
			n++;
		}
		len &= ~SYSCAP_RB_DISCARD_BIT;
		cons += (len + SYSCAP_RB_HDR_SZ + 7) & ~(uint64_t)7;
		if (cons >= prod)
			prod = load_acquire(r->producer_pos);
	}
	/* One release store per batch: everything before it is consumed. */
	__atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
	return n;
}
