/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The consumer's view of a capture backend (eBPF or kernel module).
 *
 * Both backends expose per-CPU rings with the memory layout of a BPF ring
 * buffer, so one consumer drains both (the eBPF backend's rings are fixed
 * slots that keep this layout, see syscap_slots.h):
 *   page 0            consumer position (u64 at offset 0), mapped read-write
 *   page 1            producer position (u64 at offset 0), mapped read-only
 *   data (size bytes) mapped twice back to back, read-only, so a record never
 *                     wraps for the reader
 * Each record is an 8-byte header { u32 len; u32 pg_off; } followed by len
 * bytes of payload, the whole rounded up to 8 bytes. Bit 31 of len marks a
 * record still being written (stop there), bit 30 one the producer discarded
 * (skip it). Positions only grow; offset = pos & (size - 1).
 */
#ifndef SYSCAP_BACKEND_H
#define SYSCAP_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "syscap_record.h"

#define SYSCAP_RB_BUSY_BIT	(1U << 31)
#define SYSCAP_RB_DISCARD_BIT	(1U << 30)
#define SYSCAP_RB_HDR_SZ	8

/*
 * The clock of a backend's times (records' ts_ns and dur_ns, the per-CPU
 * total_ns). hz 0: CLOCK_MONOTONIC nanoseconds, used as they are. Otherwise
 * ticks of a counter, which the consumer converts to CLOCK_MONOTONIC
 * nanoseconds, starting from one paired reading of the two clocks
 * (syscap_clock_set): ref_ns + (ticks - ref_ticks) x mult / 2^32.
 *
 * Over a long capture the two clocks part: the counter runs at the rate the
 * kernel calibrated, CLOCK_MONOTONIC at the one NTP steers. The consumer
 * takes a new paired reading now and then (syscap_clock_anchor), and a time
 * then comes from a line of segments: each starts where the line was at its
 * first tick, at the rate measured between the last two readings, and slews
 * onto the newest reading over SYSCAP_CLOCK_SLEW_NS, at most
 * SYSCAP_CLOCK_MAX_PPM off that rate. The times it gives never jump back and
 * never jump forward but to catch up more than SYSCAP_CLOCK_STEP_NS.
 * Durations keep the calibrated rate (mult).
 */
#define SYSCAP_CLOCK_SEGS	64
#define SYSCAP_CLOCK_SLEW_NS	1000000000ULL	/* 1 s */
#define SYSCAP_CLOCK_MAX_PPM	500		/* NTP's own limit */
#define SYSCAP_CLOCK_STEP_NS	1000000ULL	/* 1 ms */

struct syscap_clock_seg {
	uint64_t ticks;		/* its first tick */
	uint64_t ns;		/* the time there */
	uint64_t mult;		/* nanoseconds per tick, x 2^32 */
};

struct syscap_clock {
	char source[16];	/* what the probes read: "monotonic", "tsc", "cntvct" */
	uint64_t hz;		/* ticks per second, or 0 */
	uint64_t ref_ticks;	/* the first paired reading */
	uint64_t ref_ns;
	uint64_t mult;		/* nanoseconds per tick at hz, x 2^32 */
	uint64_t last_ticks;	/* the newest paired reading */
	uint64_t last_ns;
	uint32_t nseg;		/* seg[0..nseg), oldest first */
	struct syscap_clock_seg seg[SYSCAP_CLOCK_SEGS];
};

void syscap_clock_set(struct syscap_clock *c, const char *source, uint64_t hz,
		      uint64_t ref_ticks, uint64_t ref_ns);
/* A new paired reading: ticks of the counter at CLOCK_MONOTONIC ns. */
void syscap_clock_anchor(struct syscap_clock *c, uint64_t ticks, uint64_t ns);
uint64_t syscap_clock_ns(const struct syscap_clock *c, uint64_t ticks);
uint64_t syscap_clock_dur(const struct syscap_clock *c, uint64_t ticks);

struct syscap_ring {
	int cpu;
	uint64_t size;				/* data bytes, a power of two */
	volatile uint64_t *consumer_pos;	/* mapped read-write */
	const volatile uint64_t *producer_pos;	/* mapped read-only */
	const uint8_t *data;			/* mapped twice */
	uint64_t max_used;			/* highest fill seen by drain */
	const struct syscap_clock *clock;	/* records in ticks, or NULL */
	void *map_base;				/* for munmap */
	size_t map_len;
};

struct syscap_backend;

typedef void (*syscap_count_fn)(void *ctx, const struct syscap_count_key *k,
				const struct syscap_count_val *v);

struct syscap_backend_ops {
	/* Replace the filter; bumps nothing itself: callers set generation. */
	int (*set_filter)(struct syscap_backend *b, const struct syscap_filter *f);
	/* Process set: value SYSCAP_PID_INCLUDE/EXCLUDE, or 0 to remove. */
	int (*set_pid)(struct syscap_backend *b, uint32_t tgid, int value);
	/* Fill out[0..ncpu) with each CPU's counters since start. */
	int (*read_stats)(struct syscap_backend *b, struct syscap_cpu_stats *out, int ncpu);
	/* Probe runs the kernel skipped (e.g. BPF recursion protection). */
	uint64_t (*missed)(struct syscap_backend *b);
	/*
	 * Choose the mode while stopped: a SYSCAP_MODE_* of syscap.h. NULL:
	 * records only; -ENOTSUP for a mode the backend or kernel lacks.
	 */
	int (*set_mode)(struct syscap_backend *b, int mode);
	/* Sampled mode: about one syscall in period (a power of two) gets a
	 * duration. Allowed while attached. NULL when there is no sampled mode. */
	int (*set_sample_period)(struct syscap_backend *b, uint32_t period);
	/* Sampled mode, while attached: attach (open) or detach the entry probe
	 * that takes the samples. start() opens the first window. NULL: the
	 * entry probe stays attached while the probes are. */
	int (*sample_window)(struct syscap_backend *b, int open);
	/* While stopped: syscall records carry their arguments (and take twice
	 * the ring space) or not. NULL: they never do. */
	int (*set_args)(struct syscap_backend *b, int on);
	/* While stopped: the probes' clock, a SYSCAP_CLOCK_* of syscap.h;
	 * b->clock then says which it is. NULL: CLOCK_MONOTONIC only. */
	int (*set_clock)(struct syscap_backend *b, int clock);
	/* A counter clock: take a new paired reading into b->clock
	 * (syscap_clock_anchor), between drains. NULL: nothing to do. */
	int (*clock_anchor)(struct syscap_backend *b);
	/* Hand fn every process x syscall counter, summed over the CPUs. */
	int (*read_counts)(struct syscap_backend *b, syscap_count_fn fn, void *ctx);
	/* Remove one counter (its process is gone). */
	int (*forget_count)(struct syscap_backend *b, const struct syscap_count_key *k);
	int (*start)(struct syscap_backend *b);
	int (*stop)(struct syscap_backend *b);
	/* The consumer woke on wait_fd: re-arm it (NULL: nothing to do). */
	void (*woken)(struct syscap_backend *b);
	void (*close)(struct syscap_backend *b);
};

struct syscap_backend {
	const char *name;		/* "bpf" or "kmod" */
	const struct syscap_backend_ops *ops;
	int ncpu;			/* possible CPUs: stats arrays have this many */
	int nrings;			/* rings[] used (one per possible CPU) */
	struct syscap_ring *rings;
	int wait_fd;			/* readable when a ring wants draining, or -1 */
	uint32_t record_bytes;		/* ring bytes one syscall record takes */
	struct syscap_clock clock;	/* of the records and total_ns */
	void *priv;
};

/*
 * Open a backend with ring_size bytes per CPU (a power of two, at least one
 * page). On failure return a negative errno and write one actionable line
 * (what is missing and how to fix it) into err.
 */
int syscap_bpf_open(struct syscap_backend **out, uint64_t ring_size, char *err, size_t errlen);
int syscap_kmod_open(struct syscap_backend **out, uint64_t ring_size, char *err, size_t errlen);

/* A record in place, and its arguments (NULL when the capture has none). */
typedef void (*syscap_rec_fn)(void *ctx, const struct syscap_rec *rec, const uint64_t *args);

/*
 * Hand every complete record of the ring to fn, in place (no copy), in
 * order; advance the consumer position once, after the batch. Stops at a
 * record still being written or after max_records. Returns records handed.
 */
long syscap_ring_drain(struct syscap_ring *r, syscap_rec_fn fn, void *ctx, long max_records);

/* Bytes written and not yet consumed. */
uint64_t syscap_ring_used(const struct syscap_ring *r);

#endif /* SYSCAP_BACKEND_H */
