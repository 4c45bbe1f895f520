/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The eBPF backend's per-CPU rings: fixed slots in a BPF_F_MMAPABLE array
 * that the probes fill and the consumer reads in place, with no helper call,
 * no lock and no wake-up per record.
 *
 * Each CPU owns 2^slots_shift consecutive slots of the `ring_slots` array and
 * one struct syscap_ring_pos in `ring_pos`. Only the probes running on that
 * CPU write its slots and its producer position, and they cannot interleave:
 * the kernel runs BPF programs on tracepoints with preemption disabled
 * (syscall tracepoints included, which may fault since 6.14: their BPF probe
 * takes guard(preempt_notrace)), so one CPU's ring has a single producer.
 *
 * A slot starts with the header of a BPF ring buffer record (len, pg_off) so
 * that the one consumer of syscap_backend.h drains it unchanged: len covers
 * the rest of the slot and the consumer steps exactly one slot per record.
 * A record with arguments takes two slots: the second holds them, and len
 * covers both (syscap_record.h: SYSCAP_RING_ARGS_OFF). Two slots never wrap
 * around the end of a CPU's ring: a discarded slot pads to its start first.
 * The producer writes the record, then publishes producer + its slots with
 * release ordering; the consumer publishes what it has read the same way.
 */
#ifndef SYSCAP_SLOTS_H
#define SYSCAP_SLOTS_H

#include "syscap_record.h"

#define SYSCAP_SLOT_SHIFT	6
#define SYSCAP_SLOT_SIZE	(1U << SYSCAP_SLOT_SHIFT)	/* 64 */
#define SYSCAP_SLOT_HDR		8
#define SYSCAP_SLOT_LEN		(SYSCAP_SLOT_SIZE - SYSCAP_SLOT_HDR)
#define SYSCAP_SLOT_ARGS_LEN	(2 * SYSCAP_SLOT_SIZE - SYSCAP_SLOT_HDR)
#define SYSCAP_SLOT_DISCARD	(1U << 30)	/* in len: skip this slot (the
						 * ring header's discard bit) */

struct syscap_slot {
	__u32 len;		/* SYSCAP_SLOT_LEN, SYSCAP_SLOT_ARGS_LEN, or
				 * SYSCAP_SLOT_LEN | the discard bit */
	__u32 pg_off;		/* zero */
	struct syscap_rec rec;
	__u64 pad;		/* unused */
};

/* The second slot of a record with arguments. */
struct syscap_args_slot {
	__u64 args[6];
	__u64 pad[2];
};

/*
 * One CPU's positions, in bytes since the start (they only grow; the offset
 * in the ring is pos & (ring size - 1)). The producer's and the consumer's
 * halves sit in separate 128-byte lines, so neither side's writes evict the
 * other's line (128: the line of some arm64 cores).
 */
struct syscap_ring_pos {
	__u64 producer;		/* the probes: end of the last record */
	__u64 consumer_seen;	/* the probes' copy of consumer, refreshed
				 * only when the ring looks full */
	__u64 pad0[14];
	__u64 consumer;		/* the consumer: end of what it has read */
	__u64 pad1[15];
};

#endif /* SYSCAP_SLOTS_H */
