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
 * block's start. args: whether records carry their 6 arguments.
 */
struct syscap_pack {
	int args;
	struct {
		uint64_t ts_ns;
		uint32_t tgid, tid, seq;
		uint16_t cpu;
	} prev;
};

/* r becomes the record the next one is packed (or unpacked) against. */
static inline void syscap_pack_prev(struct syscap_pack *st, const struct syscap_rec *r)
{
	st->prev.ts_ns = r->ts_ns;
	st->prev.tgid = r->tgid;
	st->prev.tid = r->tid;
	st->prev.cpu = r->cpu;
	st->prev.seq = r->seq;
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

/* rec (its arguments from args, zeros if NULL) into out, which has room for
 * SYSCAP_PACK_MAX_BYTES; returns the bytes written. */
static inline size_t syscap_pack_rec(struct syscap_pack *st, const struct syscap_rec *in,
				     const uint64_t *args, uint8_t *out)
{
	struct syscap_rec r;
	uint8_t *p = out + 1;
	uint8_t tag;

	memcpy(&r, in, sizeof(r));
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
	if (r.tgid == st->prev.tgid && r.tid == st->prev.tid) {
		tag |= SYSCAP_PACK_SAME_TASK;
	} else {
		p = syscap_put_u(p, r.tgid);
		p = syscap_put_u(p, r.tid);
	}
	if (r.cpu == st->prev.cpu && r.seq == (uint32_t)(st->prev.seq + 1)) {
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
		p = syscap_put_s(p, r.sys.ret);
		p = syscap_put_u(p, r.sys.dur_ns);
		p = syscap_put_u(p, r.sys.nr);
		if (!r.sys.raw_nr && !r.sys.reserved) {
			tag |= SYSCAP_PACK_NO_RAW;
		} else {
			p = syscap_put_u(p, r.sys.raw_nr);
			p = syscap_put_u(p, r.sys.reserved);
		}
		if (st->args)
			for (int i = 0; i < 6; i++)
				p = syscap_put_u(p, args ? args[i] : 0);
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
