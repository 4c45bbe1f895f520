// SPDX-License-Identifier: BSD-2-Clause
/*
 * The compact record (struct syscap_rec, record version 2) of the rings and
 * traces, decoded into struct syscap_event, so every reader above them sees
 * one record type whatever a file holds.
 */
#include <stddef.h>
#include <string.h>
#include "internal.h"

_Static_assert(sizeof(struct syscap_rec) == SYSCAP_REC_SIZE, "syscap_rec size");
_Static_assert(offsetof(struct syscap_rec, sys.ret) == 24, "syscap_rec layout");
_Static_assert(offsetof(struct syscap_rec, proc.comm) == 32, "syscap_rec layout");
_Static_assert(sizeof(((struct syscap_event *)0)->args) == SYSCAP_REC_ARGS_SIZE - SYSCAP_REC_SIZE,
	       "syscap_rec arguments");

void syscap_rec_decode(const struct syscap_rec *in, const uint64_t *args,
		       struct syscap_event *ev)
{
	struct syscap_rec r;

	memcpy(&r, in, sizeof(r));
	memset(ev, 0, sizeof(*ev));
	ev->ts_ns = r.ts_ns;
	ev->tgid = r.tgid;
	ev->tid = r.tid;
	ev->kind = r.kind;
	ev->flags = r.flags;
	ev->cpu = r.cpu;
	if (r.kind == SYSCAP_EV_SYSCALL) {
		ev->seq = r.seq;
		ev->ret = r.sys.ret;
		ev->dur_ns = r.sys.dur_ns;
		ev->nr = r.sys.nr;
		ev->raw_nr = r.sys.raw_nr;
		if (args)
			memcpy(ev->args, args, sizeof(ev->args));
	} else {
		ev->ret = r.code;
		ev->proc.parent_tgid = r.proc.parent_tgid;
		ev->proc.parent_tid = r.proc.parent_tid;
		memcpy(ev->proc.comm, r.proc.comm, SYSCAP_COMM_LEN);
	}
}
