/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Packing records (record version 3, layout in syscap_trace.h): the encoder,
 * inline so that the consumer's per-record path (session.c's on_event, the
 * trace writer) runs without a call for it; the decoder is in pack.c. Under
 * an emulator every call and return costs a lookup of the next block of
 * translated code, and the recorder shares the traced machine's CPUs
 * (docs/capture.md).
 */
#ifndef SYSCAP_PACK_H
#define SYSCAP_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "syscap.h"

/*
 * The packer's state: the previous record of the block; zero it at each
 * block's start. Its task (tgid, tid) and its place (cpu, seq) are each kept
 * as one word, which the packer compares whole. args: whether records carry
 * their 6 arguments.
 */
struct syscap_pack {
	int args;
	struct {
		uint64_t ts_ns;
		uint64_t task;		/* syscap_pack_task() */
		uint64_t place;		/* syscap_pack_place() */
	} prev;
};

static inline uint64_t syscap_pack_task(uint32_t tgid, uint32_t tid)
{
	return (uint64_t)tid << 32 | tgid;
}

static inline uint64_t syscap_pack_place(uint16_t cpu, uint32_t seq)
{
	return (uint64_t)seq << 16 | cpu;
}

/* r becomes the record the next one is packed (or unpacked) against. */
static inline void syscap_pack_prev(struct syscap_pack *st, const struct syscap_rec *r)
{
	st->prev.ts_ns = r->ts_ns;
	st->prev.task = syscap_pack_task(r->tgid, r->tid);
	st->prev.place = syscap_pack_place(r->cpu, r->seq);
}

static inline uint8_t *syscap_put_u(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint8_t *syscap_put_s(uint8_t *p, int64_t v)
{
	return syscap_put_u(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* A syscall record's ret (zigzag), duration and nr, in the layout's order. */
static inline uint8_t *syscap_put_call(uint8_t *p, const struct syscap_rec *r, uint64_t dur_ns)
{
	p = syscap_put_s(p, r->sys.ret);
	p = syscap_put_u(p, dur_ns);
	return syscap_put_u(p, r->sys.nr);
}

/* A syscall's 6 arguments (zeros if args is NULL), when records carry them. */
static inline uint8_t *syscap_put_args(const struct syscap_pack *st, uint8_t *p,
				       const uint64_t *args)
{
	if (st->args)
		for (int i = 0; i < 6; i++)
			p = syscap_put_u(p, args ? args[i] : 0);
	return p;
}

/*
 * Record in, at time ts_ns and (a syscall) lasting dur_ns, with its arguments
 * from args (zeros if NULL), into out, which has room for
 * SYSCAP_PACK_MAX_BYTES; returns the bytes written. The time and duration
 * are the caller's, not in's: a record read in place from a ring in counter
 * ticks needs no converted copy (syscap_rec_times).
 */
static inline size_t syscap_pack_rec(struct syscap_pack *st, const struct syscap_rec *in,
				     uint64_t ts_ns, uint64_t dur_ns, const uint64_t *args,
				     uint8_t *out)
{
	/* the place next to the previous record's: its CPU, seq + 1 (mod 2^32) */
	uint64_t next = (st->prev.place + (1U << 16)) & 0xffffffffffffULL;
	struct syscap_rec r;
	uint8_t *p = out + 1;
	uint8_t tag;

	/* Nearly every record: a syscall of the previous record's task, next
	 * on its CPU, with no flags and no raw number. One test, no copy, and
	 * only its four numbers to write. */
	if (in->kind == SYSCAP_EV_SYSCALL && !in->flags && !in->sys.reserved &&
	    !in->sys.raw_nr && syscap_pack_task(in->tgid, in->tid) == st->prev.task &&
	    syscap_pack_place(in->cpu, in->seq) == next) {
		out[0] = SYSCAP_EV_SYSCALL | SYSCAP_PACK_SAME_TASK | SYSCAP_PACK_NEXT_SEQ |
			 SYSCAP_PACK_NO_FLAGS | SYSCAP_PACK_NO_RAW;
		p = syscap_put_s(p, (int64_t)(ts_ns - st->prev.ts_ns));
		p = syscap_put_call(p, in, dur_ns);
		p = syscap_put_args(st, p, args);
		st->prev.ts_ns = ts_ns;
		st->prev.place = next;
		return (size_t)(p - out);
	}
	memcpy(&r, in, sizeof(r));
	r.ts_ns = ts_ns;
	if (r.kind == SYSCAP_EV_SYSCALL)
		r.sys.dur_ns = dur_ns;
	if (r.kind < SYSCAP_EV_SYSCALL || r.kind > SYSCAP_EV_EXIT) {
		out[0] = 0;	/* a kind this version does not know: as is */
		memcpy(p, &r, sizeof(r));
		p += sizeof(r);
		if (st->args) {
			if (args)
				memcpy(p, args, 6 * sizeof(*args));
			else
				memset(p, 0, 6 * sizeof(*args));
			p += 6 * sizeof(*args);
		}
		goto done;
	}
	tag = r.kind;
	p = syscap_put_s(p, (int64_t)(r.ts_ns - st->prev.ts_ns));
	if (syscap_pack_task(r.tgid, r.tid) == st->prev.task) {
		tag |= SYSCAP_PACK_SAME_TASK;
	} else {
		p = syscap_put_u(p, r.tgid);
		p = syscap_put_u(p, r.tid);
	}
	if (syscap_pack_place(r.cpu, r.seq) == next) {
		tag |= SYSCAP_PACK_NEXT_SEQ;
	} else {
		p = syscap_put_u(p, r.cpu);
		p = syscap_put_u(p, r.seq);
	}
	if (!r.flags)
		tag |= SYSCAP_PACK_NO_FLAGS;
	else
		*p++ = r.flags;
	if (r.kind == SYSCAP_EV_SYSCALL) {
		p = syscap_put_call(p, &r, r.sys.dur_ns);
		if (!r.sys.raw_nr && !r.sys.reserved) {
			tag |= SYSCAP_PACK_NO_RAW;
		} else {
			p = syscap_put_u(p, r.sys.raw_nr);
			p = syscap_put_u(p, r.sys.reserved);
		}
		p = syscap_put_args(st, p, args);
	} else {
		size_t n = strnlen(r.proc.comm, SYSCAP_COMM_LEN);

		p = syscap_put_u(p, r.proc.parent_tgid);
		p = syscap_put_u(p, r.proc.parent_tid);
		*p++ = (uint8_t)n;
		memcpy(p, r.proc.comm, n);
		p += n;
	}
	out[0] = tag;
done:
	syscap_pack_prev(st, &r);
	return (size_t)(p - out);
}

/* One record from the len bytes at in into *rec and args (6, may be NULL);
 * returns the bytes it took, or -1 if they are not a packed record. */
long syscap_unpack_rec(struct syscap_pack *st, const uint8_t *in, size_t len,
		       struct syscap_rec *rec, uint64_t *args);

#endif /* SYSCAP_PACK_H */
