/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the two record floors (floor_record.bpf.c, floor_slots.bpf.c) do alike:
 * the entry a task keeps from sys_enter to sys_exit, taking it, and filling
 * the 96-byte record (times, return value, the six syscall arguments as
 * syscall_get_arguments() sees them at exit, ids, number). Each floor keeps
 * what it measures, where the entry lives and where the record goes, itself.
 */
#ifndef FLOOR_COMMON_H
#define FLOOR_COMMON_H

struct entry {
	__u64 ts;
	__u32 nr;
	__u32 pending;
};

static __always_inline void floor_enter(struct entry *e, long id)
{
	e->nr = id;
	e->pending = 1;
	e->ts = bpf_ktime_get_ns();
}

static __always_inline void floor_args(__u64 *a, struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	a[0] = regs->di;
	a[1] = regs->si;
	a[2] = regs->dx;
	a[3] = regs->r10;
	a[4] = regs->r8;
	a[5] = regs->r9;
#elif defined(__TARGET_ARCH_arm64)
	a[0] = regs->orig_x0;
	a[1] = regs->regs[1];
	a[2] = regs->regs[2];
	a[3] = regs->regs[3];
	a[4] = regs->regs[4];
	a[5] = regs->regs[5];
#endif
}

static __always_inline void floor_fill(__u64 *r, const struct entry *e, __u64 now, long ret,
				       struct pt_regs *regs, struct task_struct *t)
{
	r[0] = e->ts;
	r[1] = now - e->ts;
	r[2] = ret;
	floor_args(&r[3], regs);
	r[9] = (__u64)t->tgid << 32 | t->pid;
	r[10] = e->nr;
	r[11] = 0;
}

#endif /* FLOOR_COMMON_H */
