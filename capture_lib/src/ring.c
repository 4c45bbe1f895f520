// SPDX-License-Identifier: BSD-2-Clause
/*
 * The consumer side of a per-CPU ring (BPF ring buffer layout, see
 * syscap_backend.h). Records are read where the producer wrote them; the
 * consumer position is published once per batch, not per record, so the
 * producer sees space freed in steps and the consumer writes one cache line
 * per batch instead of one per record. The drain loop itself is inline in
 * drain.h; this file has its callable form and the counter clock.
 */
#include <string.h>
#include "drain.h"

void syscap_clock_set(struct syscap_clock *c, const char *source, uint64_t hz,
		      uint64_t ref_ticks, uint64_t ref_ns)
{
	size_t n = strnlen(source, sizeof(c->source) - 1);

	memset(c, 0, sizeof(*c));
	memcpy(c->source, source, n);
	if (!hz)
		return;
	c->hz = hz;
	c->ref_ticks = c->last_ticks = ref_ticks;
	c->ref_ns = c->last_ns = ref_ns;
	c->mult = (uint64_t)((((unsigned __int128)1000000000 << 32) + hz / 2) / hz);
	c->seg[0] = (struct syscap_clock_seg){ ref_ticks, ref_ns, c->mult };
	c->nseg = 1;
}

uint64_t syscap_clock_dur(const struct syscap_clock *c, uint64_t ticks)
{
	if (!c->hz)
		return ticks;
	return syscap_clock_scale(ticks, c->mult);
}

/*
 * The segment a tick falls in: the newest that starts at or before it (most
 * times are recent: the search starts there). Ticks before the oldest count
 * back from it.
 */
uint64_t syscap_clock_ns(const struct syscap_clock *c, uint64_t ticks)
{
	const struct syscap_clock_seg *g;
	uint32_t i;

	if (!c->hz)
		return ticks;
	for (i = c->nseg; i-- > 0;) {
		g = &c->seg[i];
		if (ticks >= g->ticks)
			return g->ns + syscap_clock_scale(ticks - g->ticks, g->mult);
	}
	g = &c->seg[0];
	return g->ns - syscap_clock_scale(g->ticks - ticks, g->mult);
}

void syscap_clock_anchor(struct syscap_clock *c, uint64_t ticks, uint64_t ns)
{
	/* the slew's length in ticks, at least one */
	uint64_t slew = (uint64_t)((unsigned __int128)c->hz * SYSCAP_CLOCK_SLEW_NS / 1000000000) + 1;
	__int128 adj, lim;
	uint64_t at, rate, lo, hi;
	unsigned __int128 m;
	int64_t err;

	if (!c->hz || ticks <= c->last_ticks || ns <= c->last_ns)
		return;		/* no counter, or not a newer reading */
	/* the rate between the last two readings, within MAX_PPM of hz's */
	m = ((unsigned __int128)(ns - c->last_ns) << 32) / (ticks - c->last_ticks);
	lo = c->mult - c->mult / 1000000 * SYSCAP_CLOCK_MAX_PPM;
	hi = c->mult + c->mult / 1000000 * SYSCAP_CLOCK_MAX_PPM;
	rate = m < lo ? lo : m > hi ? hi : (uint64_t)m;
	c->last_ticks = ticks;
	c->last_ns = ns;
	at = syscap_clock_ns(c, ticks);
	err = (int64_t)(ns - at);
	if (err > (int64_t)SYSCAP_CLOCK_STEP_NS) {
		at = ns;	/* far behind: catch up at once, forward */
		err = 0;
	}
	/* and err away over the slew, at most MAX_PPM faster or slower */
	adj = ((__int128)err * ((__int128)1 << 32)) / (__int128)slew;
	lim = (__int128)(rate / 1000000 * SYSCAP_CLOCK_MAX_PPM);
	adj = adj < -lim ? -lim : adj > lim ? lim : adj;
	rate = (uint64_t)((__int128)rate + adj);
	if (c->nseg == SYSCAP_CLOCK_SEGS) {
		memmove(&c->seg[0], &c->seg[1], (SYSCAP_CLOCK_SEGS - 1) * sizeof(c->seg[0]));
		c->nseg--;
	}
	c->seg[c->nseg++] = (struct syscap_clock_seg){ ticks, at, rate };
}

uint64_t syscap_ring_used(const struct syscap_ring *r)
{
	uint64_t prod = syscap_load_acquire(r->producer_pos);
	uint64_t cons = syscap_load_acquire(r->consumer_pos);

	return prod - cons;
}

long syscap_ring_drain(struct syscap_ring *r, syscap_rec_fn fn, void *ctx, long max_records)
{
	return syscap_ring_drain_inline(r, fn, ctx, max_records, 0);
}
