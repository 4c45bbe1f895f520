// SPDX-License-Identifier: BSD-2-Clause
/*
 * The consumer side of a per-CPU ring (BPF ring buffer layout, see
 * syscap_backend.h). Records are read where the producer wrote them; the
 * consumer position is published once per batch, not per record, so the
 * producer sees space freed in steps and the consumer writes one cache line
 * per batch instead of one per record.
 */
#include <string.h>
#include "syscap_backend.h"

static inline uint64_t load_acquire(const volatile uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint32_t load_acquire32(const volatile uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

void syscap_clock_set(struct syscap_clock *c, const char *source, uint64_t hz,
		      uint64_t ref_ticks, uint64_t ref_ns)
{
	size_t n = strnlen(source, sizeof(c->source) - 1);

	memset(c, 0, sizeof(*c));
	memcpy(c->source, source, n);
	if (!hz)
		return;
	c->hz = hz;
	c->ref_ticks = ref_ticks;
	c->ref_ns = ref_ns;
	c->mult = (uint64_t)((((unsigned __int128)1000000000 << 32) + hz / 2) / hz);
}

uint64_t syscap_clock_dur(const struct syscap_clock *c, uint64_t ticks)
{
	if (!c->hz)
		return ticks;
	return (uint64_t)(((unsigned __int128)ticks * c->mult + (1U << 31)) >> 32);
}

/* Ticks before the reference reading count back from it. */
uint64_t syscap_clock_ns(const struct syscap_clock *c, uint64_t ticks)
{
	if (!c->hz)
		return ticks;
	if (ticks >= c->ref_ticks)
		return c->ref_ns + syscap_clock_dur(c, ticks - c->ref_ticks);
	return c->ref_ns - syscap_clock_dur(c, c->ref_ticks - ticks);
}

/* A record in ticks, as one in nanoseconds. */
static void rec_to_ns(const struct syscap_clock *c, struct syscap_rec *rec)
{
	rec->ts_ns = syscap_clock_ns(c, rec->ts_ns);
	if (rec->kind == SYSCAP_EV_SYSCALL)
		rec->sys.dur_ns = syscap_clock_dur(c, rec->sys.dur_ns);
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
			const uint64_t *args = len >= SYSCAP_RING_ARGS_LEN ?
				(const uint64_t *)(rec + SYSCAP_RING_ARGS_OFF) : NULL;

			if (r->clock) {
				struct syscap_rec copy;

				memcpy(&copy, rec, sizeof(copy));
				rec_to_ns(r->clock, &copy);
				fn(ctx, &copy, args);
			} else {
				fn(ctx, (const struct syscap_rec *)rec, args);
			}
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
