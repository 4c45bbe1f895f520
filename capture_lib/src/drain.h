/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The drain loop of a per-CPU ring (ring.c), inline: a caller that passes
 * its own per-record function (session.c's on_event) gets it inlined into
 * the loop, with no indirect call a record. That path runs for every record
 * the recorder takes, on the traced machine's CPUs; under an emulator each
 * call and return costs a lookup of the next block of translated code.
 */
#ifndef SYSCAP_DRAIN_H
#define SYSCAP_DRAIN_H

#include <string.h>
#include "syscap_backend.h"

static inline uint64_t syscap_load_acquire(const volatile uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint32_t syscap_load_acquire32(const volatile uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* ticks x mult / 2^32, rounded (ring.c's conversions) */
static inline uint64_t syscap_clock_scale(uint64_t ticks, uint64_t mult)
{
	return (uint64_t)(((unsigned __int128)ticks * mult + (1U << 31)) >> 32);
}

/*
 * A record's time and (a syscall's) duration in nanoseconds: c, the ring's
 * clock if its records are in counter ticks, converts them. Nearly every tick
 * falls in the newest segment: that case is inline, with no call and return
 * a record (under an emulator each costs a lookup).
 */
static inline void syscap_rec_times(const struct syscap_clock *c, const struct syscap_rec *rec,
				    uint64_t *ts_ns, uint64_t *dur_ns)
{
	uint64_t ticks = rec->ts_ns;
	const struct syscap_clock_seg *g;

	*dur_ns = rec->kind == SYSCAP_EV_SYSCALL ? rec->sys.dur_ns : 0;
	if (!c) {
		*ts_ns = ticks;
		return;
	}
	g = &c->seg[c->nseg - 1];
	if (__builtin_expect(ticks >= g->ticks, 1))
		*ts_ns = g->ns + syscap_clock_scale(ticks - g->ticks, g->mult);
	else
		*ts_ns = syscap_clock_ns(c, ticks);
	*dur_ns = syscap_clock_scale(*dur_ns, c->mult);
}

/*
 * syscap_ring_drain (syscap_backend.h), for a caller that wants fn inlined.
 * With in_place, fn gets every record where the ring holds it, in the ring's
 * clock: the caller takes its times with syscap_rec_times(r->clock, ...).
 * Without, a counter clock's records reach fn as converted copies.
 */
static inline __attribute__((always_inline)) long
syscap_ring_drain_inline(struct syscap_ring *r, syscap_rec_fn fn, void *ctx, long max_records,
			 int in_place)
{
	uint64_t cons = *r->consumer_pos;	/* only we write it */
	uint64_t prod = syscap_load_acquire(r->producer_pos);
	uint64_t mask = r->size - 1;
	long n = 0;

	/* read by other threads for snapshots and totals; only we write it */
	if (prod - cons > r->max_used)
		__atomic_store_n(&r->max_used, prod - cons, __ATOMIC_RELAXED);

	while (cons < prod && n < max_records) {
		const volatile uint32_t *hdr =
			(const volatile uint32_t *)(r->data + (cons & mask));
		uint32_t len = syscap_load_acquire32(hdr);

		if (len & SYSCAP_RB_BUSY_BIT)
			break;	/* still being written: stop, keep order */
		len &= ~SYSCAP_RB_BUSY_BIT;
		if (!(len & SYSCAP_RB_DISCARD_BIT) && len >= SYSCAP_REC_SIZE) {
			const uint8_t *rec = (const uint8_t *)hdr + SYSCAP_RB_HDR_SZ;
			const uint64_t *args = len >= SYSCAP_RING_ARGS_LEN ?
				(const uint64_t *)(rec + SYSCAP_RING_ARGS_OFF) : NULL;
			const struct syscap_rec *out = (const struct syscap_rec *)rec;
			struct syscap_rec copy;

			if (!in_place && r->clock) {
				uint64_t ts, dur;

				memcpy(&copy, rec, sizeof(copy));
				syscap_rec_times(r->clock, out, &ts, &dur);
				copy.ts_ns = ts;
				if (copy.kind == SYSCAP_EV_SYSCALL)
					copy.sys.dur_ns = dur;
				out = &copy;
			}
			fn(ctx, out, args);	/* one call: a caller's fn inlines once */
			n++;
		}
		len &= ~SYSCAP_RB_DISCARD_BIT;
		cons += (len + SYSCAP_RB_HDR_SZ + 7) & ~(uint64_t)7;
		if (cons >= prod)
			prod = syscap_load_acquire(r->producer_pos);
	}
	/* One release store per batch: everything before it is consumed. */
	__atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
	return n;
}

#endif /* SYSCAP_DRAIN_H */
