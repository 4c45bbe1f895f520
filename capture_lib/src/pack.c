// SPDX-License-Identifier: BSD-2-Clause
/*
 * Packed records (trace record version 3, layout in syscap_trace.h): each
 * struct syscap_rec as its differences from the one before it in the block
 * (the encoder, inline, is in pack.h; this is the decoder).
 * A syscall record takes about 8 bytes instead of 48, so the recorder hands
 * the kernel's page cache a sixth of the bytes; that copy and the file
 * system's work per page were most of what recording to a file cost the
 * traced machine's CPUs after the probes (docs/capture.md).
 */
#include <string.h>
#include "internal.h"

/* A varint of at most 64 bits from [*p, end), or -1. */
static int get_u(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		/* the tenth byte holds bit 63 only */
		if (shift == 63 && b > 1)
			return -1;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

static int get_u32(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
	uint64_t v;

	if (get_u(p, end, &v) || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int get_u16(const uint8_t **p, const uint8_t *end, uint16_t *out)
{
	uint64_t v;

	if (get_u(p, end, &v) || v > UINT16_MAX)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int get_s(const uint8_t **p, const uint8_t *end, int64_t *v)
{
	uint64_t u;

	if (get_u(p, end, &u))
		return -1;
	*v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
	return 0;
}

long syscap_unpack_rec(struct syscap_pack *st, const uint8_t *in, size_t len,
		       struct syscap_rec *r, uint64_t *args)
{
	const uint8_t *p = in + 1, *end = in + len;
	uint64_t v;
	int64_t d;
	uint8_t tag;

	if (!len)
		return -1;
	tag = in[0];
	memset(r, 0, sizeof(*r));
	if (args)
		memset(args, 0, 6 * sizeof(*args));
	if (!(tag & SYSCAP_PACK_KIND)) {
		size_t n = sizeof(*r) + (st->args ? 6 * sizeof(*args) : 0);

		if (tag || (size_t)(end - p) < n)
			return -1;
		memcpy(r, p, sizeof(*r));
		if (st->args && args)
			memcpy(args, p + sizeof(*r), 6 * sizeof(*args));
		p += n;
		goto done;
	}
	r->kind = tag & SYSCAP_PACK_KIND;
	if (r->kind > SYSCAP_EV_EXIT || tag & 0x80 ||
	    (r->kind != SYSCAP_EV_SYSCALL && tag & SYSCAP_PACK_NO_RAW))
		return -1;
	if (get_s(&p, end, &d))
		return -1;
	r->ts_ns = st->prev.ts_ns + (uint64_t)d;
	if (tag & SYSCAP_PACK_SAME_TASK) {
		r->tgid = (uint32_t)st->prev.task;
		r->tid = (uint32_t)(st->prev.task >> 32);
	} else if (get_u32(&p, end, &r->tgid) || get_u32(&p, end, &r->tid)) {
		return -1;
	}
	if (tag & SYSCAP_PACK_NEXT_SEQ) {
		r->cpu = (uint16_t)st->prev.place;
		r->seq = (uint32_t)(st->prev.place >> 16) + 1;
	} else if (get_u16(&p, end, &r->cpu) || get_u32(&p, end, &r->seq)) {
		return -1;
	}
	if (!(tag & SYSCAP_PACK_NO_FLAGS)) {
		if (p >= end)
			return -1;
		r->flags = *p++;
	}
	if (r->kind == SYSCAP_EV_SYSCALL) {
		if (get_s(&p, end, &d))
			return -1;
		r->sys.ret = d;
		if (get_u(&p, end, &v) || get_u16(&p, end, &r->sys.nr))
			return -1;
		r->sys.dur_ns = v;
		if (!(tag & SYSCAP_PACK_NO_RAW) &&
		    (get_u32(&p, end, &r->sys.raw_nr) || get_u16(&p, end, &r->sys.reserved)))
			return -1;
		if (st->args)
			for (int i = 0; i < 6; i++) {
				if (get_u(&p, end, &v))
					return -1;
				if (args)
					args[i] = v;
			}
	} else {
		/* then the comm's length, at most 16, and that many bytes */
		if (get_u32(&p, end, &r->proc.parent_tgid) ||
		    get_u32(&p, end, &r->proc.parent_tid) || p >= end ||
		    *p > SYSCAP_COMM_LEN || (size_t)(end - p - 1) < *p)
			return -1;
		memcpy(r->proc.comm, p + 1, *p);
		p += 1 + *p;
	}
done:
	syscap_pack_prev(st, r);
	return (long)(p - in);
}
