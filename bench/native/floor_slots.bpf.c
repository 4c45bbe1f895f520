// SPDX-License-Identifier: GPL-2.0
/*
 * The record floor of syscap's own design: what floor_record.bpf.c does
 * (two timestamps and a 96-byte record per syscall, nothing else), the way
 * syscap's probe does it. The running task's entry lives in a per-CPU slot
 * that sched_switch writes back into task storage when the task leaves the
 * CPU mid-syscall; the record goes into this CPU's ring of 128-byte slots in
 * a mmapable array (syscap_slots.h's design before record version 2), published by a store
 * of the producer position. No filters, counters or wake-ups. floor_loader
 * sizes the rings and empties them every 10 ms without reading them.
 *
 * Built a second time with -DFLOOR_COMPACT (floor_compact.bpf.o): the same
 * with the record syscap writes since record version 2 (struct syscap_rec:
 * 48 bytes, no arguments) in 64-byte slots, to measure what the record's
 * size costs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "floor_common.h"
#include "syscap_slots.h"

char LICENSE[] SEC("license") = "GPL";

#define SLOTS_SHIFT	15	/* 4 MiB per CPU (2 MiB compact) */

#ifdef FLOOR_COMPACT
#define SLOT_SHIFT	SYSCAP_SLOT_SHIFT
#define slot		syscap_slot
#else
#define SLOT_SHIFT	7
struct slot {
	__u32 len;
	__u32 pg_off;
	__u64 r[15];
};
#endif
#define SLOT_SIZE	(1U << SLOT_SHIFT)

struct cur {
	__u32 tid;
	__u32 pad;
	struct entry e;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct entry);
} entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cur);
} current_entry SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);		/* CPUs << SLOTS_SHIFT, set by floor_loader */
	__type(key, __u32);
	__type(value, struct slot);
} ring_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);		/* CPUs, set by floor_loader */
	__type(key, __u32);
	__type(value, struct syscap_ring_pos);
} ring_pos SEC(".maps");

static __always_inline struct entry *cur_entry(struct task_struct *t)
{
	__u32 zero = 0;
	struct cur *c = bpf_map_lookup_elem(&current_entry, &zero);
	struct entry *st;

	if (!c)
		return 0;
	if (c->tid != t->pid) {
		st = bpf_task_storage_get(&entries, t, 0, 0);
		if (st) {
			c->e = *st;
		} else {
			c->e.ts = 0;
			c->e.nr = 0;
			c->e.pending = 0;
		}
		c->tid = t->pid;
	}
	return &c->e;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(slots_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 zero = 0;
	struct cur *c = bpf_map_lookup_elem(&current_entry, &zero);
	struct entry *st;

	if (!c || !c->tid)
		return 0;
	if (c->tid == prev->pid) {
		st = bpf_task_storage_get(&entries, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (st)
			*st = c->e;
	}
	c->tid = 0;
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(slots_enter, struct pt_regs *regs, long id)
{
	struct entry *e = cur_entry(bpf_get_current_task_btf());

	if (e)
		floor_enter(e, id);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(slots_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct entry *e = cur_entry(t);
	__u32 cpu = bpf_get_smp_processor_id(), idx;
	struct syscap_ring_pos *pos;
	struct slot *slot;
	__u64 now, prod, *r;

	if (!e || !e->pending)
		return 0;
	e->pending = 0;
	now = bpf_ktime_get_ns();
	pos = bpf_map_lookup_elem(&ring_pos, &cpu);
	if (!pos)
		return 0;
	prod = pos->producer;
	if (prod - pos->consumer >= ((__u64)SLOT_SIZE << SLOTS_SHIFT))
		return 0;
	idx = cpu << SLOTS_SHIFT | ((__u32)(prod >> SLOT_SHIFT) & ((1U << SLOTS_SHIFT) - 1));
	slot = bpf_map_lookup_elem(&ring_slots, &idx);
	if (!slot)
		return 0;
	slot->len = SLOT_SIZE - 8;
	slot->pg_off = 0;
#ifdef FLOOR_COMPACT
	r = (__u64 *)&slot->rec;
	r[0] = e->ts;
	r[1] = (__u64)t->pid << 32 | t->tgid;
	r[2] = (__u64)cpu << 16 | SYSCAP_EV_SYSCALL;
	r[3] = ret;
	r[4] = now - e->ts;
	r[5] = e->nr;
#else
	r = slot->r;
	floor_fill(r, e, now, ret, regs, t);
#endif
#if defined(__TARGET_ARCH_x86)
	asm volatile("" ::: "memory");
	pos->producer = prod + SLOT_SIZE;
#else
	__sync_fetch_and_add(&pos->producer, SLOT_SIZE);
#endif
	return 0;
}
