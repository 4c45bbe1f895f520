// SPDX-License-Identifier: GPL-2.0
/*
 * The record floor: the least a tracer that records every syscall with its
 * duration must do, and nothing else. sys_enter keeps the entry time in
 * task storage; sys_exit takes the second timestamp and writes a 96-byte
 * record (times, return value, arguments, tgid, number) into one BPF ring
 * buffer, with no filters, counters, wakeups or per-CPU rings. floor_loader
 * empties the ring every 10 ms without reading it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "floor_common.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct entry);
} entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);
} records SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(record_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct entry *e = bpf_task_storage_get(&entries, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (e)
		floor_enter(e, id);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(record_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct entry *e = bpf_task_storage_get(&entries, t, 0, 0);
	__u64 now, *r;

	if (!e || !e->pending)
		return 0;
	e->pending = 0;
	now = bpf_ktime_get_ns();
	r = bpf_ringbuf_reserve(&records, 96, 0);
	if (!r)
		return 0;
	floor_fill(r, e, now, ret, regs, t);
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}
