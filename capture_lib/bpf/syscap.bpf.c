// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * syscap eBPF probe: one record per syscall, written at sys_exit.
 *
 * The order of work in the probes is the point of this file: the cheap
 * syscall-bitmap test and the cached per-task verdict come first, so a
 * filtered-out syscall costs a few loads. Totals are kept in per-CPU counters
 * (exact even when a ring is full); records go to this CPU's ring of slots
 * (syscap_slots.h) with plain stores: no helper call, no lock, no wake-up,
 * except a doorbell when the ring passes the watermark.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#define SYSCAP_PROBE_INLINE static __always_inline
/*
 * Count slots (syscap_count_add): x86 keeps stores in order, so a compiler
 * barrier on each side of the increment orders it; elsewhere an atomic add
 * whose result is used (BPF_FETCH) is a full barrier.
 */
#if defined(__TARGET_ARCH_x86)
#define SYSCAP_BUMP(p)	do {							\
		asm volatile("" ::: "memory");					\
		*(volatile __typeof__(*(p)) *)(p) += 1;				\
		asm volatile("" ::: "memory");					\
	} while (0)
#else
#define SYSCAP_BUMP(p)	do {							\
		__typeof__(*(p)) __old = __sync_fetch_and_add((p), 1);		\
		asm volatile("" :: "r"(__old) : "memory");			\
	} while (0)
#endif
#include "syscap_probe.h"
#include "syscap_slots.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Written by user space through the mmaped .bss; generation tells the
 * probes that cached per-task verdicts are stale. */
struct syscap_filter filter;
__u64 wakeup_watermark;	/* bytes of unread data that justify a wakeup */
/* Set by the loader: each CPU's ring has 2^slots_shift slots. */
const volatile __u32 slots_shift = 10;
/* Calls are counted in the kernel (count and sampled modes): sys_exit_count
 * is attached instead of sys_exit. */
__u32 counted;
__u32 whoami_tgid;	/* written by whoami */
/* Syscall records carry their arguments (a second slot); set while detached. */
__u32 with_args;

/*
 * Sampled mode: count mode plus sys_enter_sample, which takes one syscall
 * in about sample_mask + 1 (at random gaps, so a loop of period N is not
 * aliased) and keeps its entry time in the task's storage. Its exit then sends one
 * record for the duration. The exit cannot afford a storage lookup on every
 * call, so sample_gate counts, per hash of the thread id, the samples taken
 * and not yet seen at exit: a zero says "not this thread" with one load. The
 * storage follows the task across CPUs, so a syscall that migrates is
 * sampled like any other. Samples taken before start_ns belong to an
 * earlier run (the gate was zeroed since) and are dropped.
 */
#define SAMPLE_GATE	1024
__u32 sample_mask;		/* user space may change it while attached */
__u64 start_ns;		/* when the probes were last attached: an entry
			 * older than that may belong to another call */
__u32 sample_gate[SAMPLE_GATE];
__u64 sample_mismatch;		/* exits whose number differed from the entry's */

/*
 * Run once by the loader (BPF_PROG_TEST_RUN runs a raw_tp program in the
 * caller's context): the consumer's tgid as the probes see it, numbered in
 * the initial pid namespace. getpid() inside a container gives another
 * number, and the consumer would then trace itself.
 */
SEC("raw_tp")
int whoami(void *ctx)
{
	whoami_tgid = bpf_get_current_pid_tgid() >> 32;
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct syscap_task_state);
} tasks SEC(".maps");

/*
 * Records mode keeps the running task's state in a per-CPU slot instead of
 * its task storage: a per-CPU array lookup is a few instructions, a storage
 * lookup a hash of the task's storage list. The slot belongs to the task
 * that runs on the CPU (tid; 0 when empty): sched_switch writes it back into
 * the task's storage when the task leaves the CPU and empties it, and the
 * task's first syscall event after it comes back loads it again. A syscall
 * that sleeps or migrates therefore finds its entry in the storage, and one
 * that does not never touches the storage at all.
 */
struct cur_state {
	__u32 tid;
	__u32 pad;
	struct syscap_task_state st;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cur_state);
} current_state SEC(".maps");

/* Process set, keyed by tgid: SYSCAP_PID_INCLUDE or SYSCAP_PID_EXCLUDE. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} pidset SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syscap_cpu_stats);
} stats SEC(".maps");

/* Every CPU's slots, CPU after CPU; max_entries is set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syscap_slot);
} ring_slots SEC(".maps");

/* Each CPU's positions; max_entries is set to the CPU count at load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syscap_ring_pos);
} ring_pos SEC(".maps");

/* Wakes the consumer (through epoll) when a ring passes the watermark:
 * rung at most once until the consumer has emptied it. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} doorbell SEC(".maps");

/*
 * Count mode: calls and errors per process x syscall, in one table of
 * 2^count_bits slots per CPU and the list of those used (syscap_probe.h),
 * which user space reads in place. The loader sets the value size to
 * SYSCAP_COUNT_TABLE_BYTES(count_bits) and max_entries to the CPU count.
 */
#define COUNT_BITS_DEFAULT	10
const volatile __u32 count_bits = COUNT_BITS_DEFAULT;

struct count_table {
	struct syscap_count_slot slot[1 << COUNT_BITS_DEFAULT];
	/* the list of used slots (struct syscap_count_used), sized for them */
	__u8 used[sizeof(struct syscap_count_used) + (sizeof(__u32) << COUNT_BITS_DEFAULT)];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct count_table);
} count_tables SEC(".maps");


/* The process part of the filter for one task (glue for syscap_task_passes). */
static __always_inline int task_passes(struct task_struct *task, __u32 tgid)
{
	char comm[SYSCAP_COMM_LEN];
	__u8 *v;

	v = bpf_map_lookup_elem(&pidset, &tgid);
	bpf_probe_read_kernel(comm, sizeof(comm), task->comm);
	return syscap_task_passes(&filter, tgid, v ? *v : 0, comm);
}

static __always_inline struct syscap_task_state *state_of(struct task_struct *task, __u32 tgid,
						   __u64 create)
{
	struct syscap_task_state *st;

	__u32 gen;

	st = bpf_task_storage_get(&tasks, task, 0, create);
	if (!st)
		return 0;
	/* One read of the generation, before the filter and the process set
	 * (user space stores the generation last): see syscap_verdict_stale. */
	gen = *(volatile __u32 *)&filter.generation;
	if (syscap_verdict_stale(st, gen)) {
		asm volatile("" ::: "memory");
		syscap_verdict_store(st, gen, task_passes(task, tgid));
	}
	return st;
}

/*
 * Arguments as syscall_get_arguments() sees them. regs is a trusted BTF
 * pointer here, so plain loads work (no probe_read helper calls); at exit
 * the entry registers are still in pt_regs for everything but exec and
 * sigreturn, whose arguments are then the new image's. A 32-bit x86 call
 * passes them in the i386 registers.
 */
static __always_inline void read_args(__u64 *a, struct pt_regs *regs, int compat)
{
#if defined(__TARGET_ARCH_x86)
	if (compat) {
		a[0] = (__u32)regs->bx;
		a[1] = (__u32)regs->cx;
		a[2] = (__u32)regs->dx;
		a[3] = (__u32)regs->si;
		a[4] = (__u32)regs->di;
		a[5] = (__u32)regs->bp;
		return;
	}
	a[0] = regs->di;
	a[1] = regs->si;
	a[2] = regs->dx;
	a[3] = regs->r10;
	a[4] = regs->r8;
	a[5] = regs->r9;
#elif defined(__TARGET_ARCH_arm64)
	(void)compat;		/* a compat task's arguments are in x0..x5 too */
	a[0] = regs->orig_x0;	/* x0 already holds the return value */
	a[1] = regs->regs[1];
	a[2] = regs->regs[2];
	a[3] = regs->regs[3];
	a[4] = regs->regs[4];
	a[5] = regs->regs[5];
#else
#error "syscap: unsupported architecture"
#endif
}

/* The syscall number as syscall_get_nr() sees it (-1 outside a syscall). */
static __always_inline long syscall_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return regs->orig_ax;
#elif defined(__TARGET_ARCH_arm64)
	return regs->syscallno;
#endif
}

/*
 * A 32-bit compat task's syscall numbers come from another table: its calls
 * are counted under SYSCAP_NR_COMPAT, the number in raw_nr.
 */
static __always_inline int in_compat_syscall(struct task_struct *task)
{
#if defined(__TARGET_ARCH_x86)
	return task->thread_info.status & 0x0002;	/* TS_COMPAT */
#elif defined(__TARGET_ARCH_arm64)
	return !!(task->thread_info.flags & (1UL << 22));	/* TIF_32BIT */
#endif
}

/*
 * Records mode: the running task's state, in this CPU's slot. Loaded from the
 * task's storage (or zero: a task never seen) when the slot holds no task.
 * With refresh, the verdict is brought up to date as state_of does; the
 * exits do not, as they do not with the storage: a verdict of an older
 * generation there says that the call may have entered under another filter
 * (syscap_entry_skipped).
 */
static __always_inline struct syscap_task_state *cur_state_of(struct task_struct *task,
							      int refresh)
{
	struct syscap_task_state *st;
	struct cur_state *c;
	__u32 zero = 0, gen;

	c = bpf_map_lookup_elem(&current_state, &zero);
	if (!c)
		return 0;
	if (c->tid != task->pid) {
		st = bpf_task_storage_get(&tasks, task, 0, 0);
		if (st) {
			c->st = *st;
		} else {
			c->st.ts = 0;
			c->st.gen = 0;
			c->st.nr = 0;
			c->st.traced = 0;
			c->st.pending = 0;
		}
		c->tid = task->pid;
	}
	if (!refresh)
		return &c->st;
	gen = *(volatile __u32 *)&filter.generation;
	if (syscap_verdict_stale(&c->st, gen)) {
		asm volatile("" ::: "memory");
		syscap_verdict_store(&c->st, gen, task_passes(task, task->tgid));
	}
	return &c->st;
}

/*
 * A task leaves its CPU: its slot goes back into its storage. Attached
 * before, and detached after, the syscall probes (bpf_start), so no slot
 * outlives the task it belongs to. An entry that finds no room in the storage
 * is a record lost, counted as a drop.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct syscap_task_state *st;
	struct cur_state *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&current_state, &zero);
	if (!c || !c->tid)
		return 0;
	if (c->tid == prev->pid) {
		st = bpf_task_storage_get(&tasks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (st) {
			*st = c->st;
		} else if (c->st.pending) {
			struct syscap_cpu_stats *s = bpf_map_lookup_elem(&stats, &zero);

			if (s)
				s->drops++;
		}
	}
	c->tid = 0;
	return 0;
}

/* The current task's state if the process filters let it through. */
static __always_inline struct syscap_task_state *traced_state(struct task_struct *task)
{
	struct syscap_task_state *st;

	st = state_of(task, task->tgid, BPF_LOCAL_STORAGE_GET_F_CREATE);
	return st && st->traced ? st : 0;
}

static __always_inline struct syscap_cpu_stats *cpu_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

/*
 * The next free slots of this CPU's ring: one, or two when args is given (it
 * then points at the second). 0 when the ring is full. The consumer's
 * position is read from its cache line only when the ring looks full by the
 * last copy: most records touch only this CPU's producer line. Two slots
 * never straddle the ring's end: a discarded slot fills the last one first.
 * *bytes: what the record takes in the ring, for slot_commit.
 */
static __always_inline struct syscap_rec *slot_reserve(__u32 cpu, struct syscap_ring_pos **posp,
						       __u64 **args, __u32 *bytes)
{
	__u32 nslots = 1U << slots_shift, first = cpu << slots_shift;
	__u64 size = (__u64)SYSCAP_SLOT_SIZE << slots_shift;
	struct syscap_args_slot *a;
	struct syscap_ring_pos *pos;
	struct syscap_slot *slot;
	__u32 i, idx, pad;
	__u64 prod, need;

	pos = bpf_map_lookup_elem(&ring_pos, &cpu);
	if (!pos)
		return 0;
	prod = pos->producer;
	i = (__u32)(prod >> SYSCAP_SLOT_SHIFT) & (nslots - 1);
	pad = args && i == nslots - 1;
	need = (__u64)((args ? 2 : 1) + pad) << SYSCAP_SLOT_SHIFT;
	if (prod + need - pos->consumer_seen > size) {
		pos->consumer_seen = *(volatile __u64 *)&pos->consumer;
		if (prod + need - pos->consumer_seen > size)
			return 0;
	}
	if (pad) {
		idx = first | i;
		slot = bpf_map_lookup_elem(&ring_slots, &idx);
		if (!slot)
			return 0;
		slot->len = SYSCAP_SLOT_LEN | SYSCAP_SLOT_DISCARD;
		slot->pg_off = 0;
		i = 0;
	}
	idx = first | i;
	slot = bpf_map_lookup_elem(&ring_slots, &idx);
	if (!slot)
		return 0;
	if (args) {
		idx = first | ((i + 1) & (nslots - 1));
		a = bpf_map_lookup_elem(&ring_slots, &idx);
		if (!a)
			return 0;
		*args = a->args;
	}
	slot->len = args ? SYSCAP_SLOT_ARGS_LEN : SYSCAP_SLOT_LEN;
	slot->pg_off = 0;
	*posp = pos;
	*bytes = need;
	return &slot->rec;
}

/*
 * Publish the reserved slots: every store into them before the new producer
 * position (x86 keeps stores in order, so a compiler barrier is enough;
 * elsewhere an atomic add with fetch is a full barrier). Every 64th record
 * looks at the fill and rings the doorbell past the watermark.
 */
static __always_inline void slot_commit(struct syscap_ring_pos *pos, __u32 cpu, __u32 seq,
					__u32 bytes)
{
	__u64 prod;

#if defined(__TARGET_ARCH_x86)
	prod = pos->producer + bytes;
	asm volatile("" ::: "memory");
	pos->producer = prod;
#else
	prod = __sync_fetch_and_add(&pos->producer, bytes) + bytes;
#endif
	if ((seq & 63) == 0 && prod - *(volatile __u64 *)&pos->consumer > wakeup_watermark &&
	    !bpf_ringbuf_query(&doorbell, BPF_RB_AVAIL_DATA))
		bpf_ringbuf_output(&doorbell, &cpu, sizeof(cpu), BPF_RB_FORCE_WAKEUP);
}

static __always_inline void emit_syscall(struct syscap_task_state *st, __u64 now, long ret,
					 struct pt_regs *regs, struct task_struct *task,
					 __u8 flags)
{
	struct syscap_cpu_stats *s = cpu_stats();
	__u32 cpu = bpf_get_smp_processor_id();
	__u32 nr = syscap_slot_index(st->nr);
	__u64 dur = now - st->ts;
	struct syscap_ring_pos *pos;
	struct syscap_rec *e;
	__u64 *args = 0;
	__u32 seq, bytes;

	if (!s)
		return;
	seq = s->events++;
	s->calls[nr]++;
	s->total_ns[nr] += dur;
	if (syscap_is_error(ret))
		s->errors[nr]++;

	e = slot_reserve(cpu, &pos, with_args ? &args : 0, &bytes);
	if (!e) {
		s->drops++;
		return;
	}
	if (nr == SYSCAP_NR_COMPAT)
		flags |= SYSCAP_F_COMPAT;
	syscap_fill_syscall(e, st->ts, dur, ret, task->tgid, task->pid, seq, nr,
			    regs ? syscall_nr(regs) : 0, flags, cpu);
	if (args) {
		if (regs)
			read_args(args, regs, nr == SYSCAP_NR_COMPAT);
		else
			__builtin_memset(args, 0, 6 * sizeof(*args));
	}
	slot_commit(pos, cpu, seq, bytes);
}

/*
 * Count mode: one call counted for tgid x nr in this CPU's table, whose
 * slots are the per-CPU totals too (read by syscap_count_totals). A call the
 * table cannot take goes to the per-CPU counters, so the totals stay exact;
 * only its split by process is lost, counted as a drop.
 */
static __always_inline void count_syscall(__u32 tgid, __u32 nr, long ret)
{
	__u32 cpu = bpf_get_smp_processor_id();
	int err = syscap_is_error(ret);
	struct syscap_cpu_stats *s;
	struct count_table *tbl;

	nr = syscap_slot_index(nr);
	tbl = bpf_map_lookup_elem(&count_tables, &cpu);
	/* the value is 2^count_bits slots and their list, not the slots declared */
	if (tbl && !syscap_count_add((struct syscap_count_slot *)(void *)tbl, count_bits,
				     syscap_count_key(tgid, nr), err))
		return;	/* the totals are the table's (syscap_count_totals) */
	s = cpu_stats();
	if (!s)
		return;
	s->events++;
	s->calls[nr]++;
	if (err)
		s->errors[nr]++;
	s->drops++;	/* no free slot near the key's */
}

/* A sample's record: like emit_syscall's, but its call is counted already. */
static __always_inline void emit_sample(__u64 ts, long ret, struct pt_regs *regs,
					struct task_struct *task, __u32 slot, long id)
{
	struct syscap_cpu_stats *s = cpu_stats();
	__u32 cpu = bpf_get_smp_processor_id();
	__u8 flags = SYSCAP_F_SAMPLED;
	struct syscap_ring_pos *pos;
	struct syscap_rec *e;
	__u64 *args = 0;
	__u32 bytes;

	if (!s)
		return;
	e = slot_reserve(cpu, &pos, with_args ? &args : 0, &bytes);
	if (!e) {
		s->drops++;	/* a duration lost; the counts stay exact */
		return;
	}
	if (slot == SYSCAP_NR_COMPAT)
		flags |= SYSCAP_F_COMPAT;
	syscap_fill_syscall(e, ts, bpf_ktime_get_ns() - ts, ret, task->tgid, task->pid, 0, slot,
			    id, flags, cpu);
	if (args)
		read_args(args, regs, slot == SYSCAP_NR_COMPAT);
	slot_commit(pos, cpu, 1, bytes);
}

/*
 * The thread's sample, if it has one from this run: its entry time, and the
 * gate released. 0 when there is none.
 */
static __always_inline __u64 take_sample(struct syscap_task_state *st, __u32 tid)
{
	if (!st || !st->pending)
		return 0;
	st->pending = 0;
	if (st->ts < start_ns)
		return 0;
	__sync_fetch_and_add(&sample_gate[tid & (SAMPLE_GATE - 1)], -1);
	return st->ts;
}

/*
 * Count mode's only syscall probe: everything it needs is at exit (the
 * number is still in pt_regs), so it attaches no sys_enter program and
 * takes no timestamps: the cheapest exact per-process count there is. In
 * sampled mode it also ends the samples sys_enter_sample took.
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_count, struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	long id = syscall_nr(regs);
	int compat = in_compat_syscall(task);
	__u32 slot = syscap_nr_slot(id, compat);
	struct syscap_task_state *st = 0;
	__u64 sample_ts = 0;
	int traced;

	if (sample_gate[task->pid & (SAMPLE_GATE - 1)]) {
		st = bpf_task_storage_get(&tasks, task, 0, 0);
		sample_ts = take_sample(st, task->pid);
		if (sample_ts && st->nr != slot) {
			sample_mismatch++;
			sample_ts = 0;
		}
	}
	if (!syscap_syscall_wanted(&filter, slot) || !syscap_ret_wanted(&filter, ret))
		return 0;
	if (syscap_is_new_task_return(id, ret, compat))
		return 0;	/* the child's return: the parent's call counts */
	if (syscap_needs_verdict(&filter))
		traced = !!traced_state(task);
	else
		traced = task->tgid != filter.self_tgid;
	if (!traced)
		return 0;
	count_syscall(task->tgid, slot, ret);
	if (sample_ts)
		emit_sample(sample_ts, ret, regs, task, slot, id);
	return 0;
}

/* Sampled mode: calls left on this CPU until its next sample. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sample_left SEC(".maps");

/*
 * Sampled mode's entry probe: one call in about sample_mask + 1. A per-CPU
 * countdown picks the calls; each sample draws the gap to the next at random,
 * 1 to 2 x period - 1 (a fixed 1 in N would alias with a loop of period N),
 * so an unsampled call costs a decrement, not a random number.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_sample, struct pt_regs *regs, long id)
{
	struct task_struct *task;
	struct syscap_task_state *st;
	__u32 zero = 0, *left;
	__u32 slot;

	left = bpf_map_lookup_elem(&sample_left, &zero);
	if (!left)
		return 0;
	if (*left > 1) {
		(*left)--;
		return 0;
	}
	*left = 1 + bpf_get_prandom_u32() % (2 * sample_mask + 1);
	task = bpf_get_current_task_btf();
	slot = syscap_nr_slot(id, in_compat_syscall(task));
	if (!syscap_syscall_wanted(&filter, slot))
		return 0;
	if (syscap_needs_verdict(&filter)) {
		st = traced_state(task);
	} else {
		if (task->tgid == filter.self_tgid)
			return 0;
		st = bpf_task_storage_get(&tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	}
	if (!st || (st->pending && st->ts >= start_ns))
		return 0;
	st->nr = slot;
	st->ts = bpf_ktime_get_ns();
	st->pending = 1;
	__sync_fetch_and_add(&sample_gate[task->pid & (SAMPLE_GATE - 1)], 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 slot = syscap_nr_slot(id, in_compat_syscall(task));
	struct syscap_task_state *st;

	if (!syscap_syscall_wanted(&filter, slot))
		return 0;
	st = cur_state_of(task, 1);
	if (!st || !st->traced)
		return 0;
	syscap_note_entry(st, slot, bpf_ktime_get_ns());
	return 0;
}

/*
 * A syscall whose entry the kernel skipped (syscap_entry_skipped): seccomp
 * denied it before sys_enter. It is recorded at its exit, with no duration.
 */
static __always_inline void exit_without_entry(struct syscap_task_state *st,
					       struct task_struct *task, struct pt_regs *regs,
					       long ret)
{
	long id = syscall_nr(regs);
	int compat = in_compat_syscall(task);
	__u32 slot = syscap_nr_slot(id, compat);
	__u64 now;

	if (!syscap_syscall_wanted(&filter, slot) || !syscap_ret_wanted(&filter, ret) ||
	    syscap_is_new_task_return(id, ret, compat))
		return;
	now = bpf_ktime_get_ns();
	st->nr = slot;
	st->ts = now;
	emit_syscall(st, now, ret, regs, task, SYSCAP_F_NOENTRY);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syscap_task_state *st;

	st = cur_state_of(task, 0);
	if (st && st->pending) {
		st->pending = 0;
		if (st->ts >= start_ns && syscap_ret_wanted(&filter, ret))
			emit_syscall(st, bpf_ktime_get_ns(), ret, regs, task, 0);
		return 0;
	}
	if (syscap_entry_skipped(st, filter.generation))
		exit_without_entry(st, task, regs, ret);
	return 0;
}

static __always_inline void emit_proc(struct task_struct *task, __u8 kind, __u32 ptgid,
				      __u32 ptid, long ret, __u8 flags)
{
	struct syscap_cpu_stats *s = cpu_stats();
	__u32 cpu = bpf_get_smp_processor_id();
	struct syscap_ring_pos *pos;
	struct syscap_rec *e;
	__u32 bytes;

	if (!s)
		return;
	s->proc_events++;
	e = slot_reserve(cpu, &pos, 0, &bytes);
	if (!e) {
		s->proc_drops++;
		return;
	}
	syscap_fill_proc(e, kind, bpf_ktime_get_ns(), ret, task->tgid, task->pid, ptgid, ptid,
			 flags, cpu);
	bpf_probe_read_kernel(e->proc.comm, sizeof(e->proc.comm), task->comm);
	slot_commit(pos, cpu, 1, bytes);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct syscap_task_state *st;
	__u8 *v;

	/* The process set follows children: a new process inherits its
	 * parent's membership before it can make its first syscall. */
	if (ptgid != ctgid) {
		v = bpf_map_lookup_elem(&pidset, &ptgid);
		if (v) {
			__u8 val = *v;

			bpf_map_update_elem(&pidset, &ctgid, &val, BPF_ANY);
		}
	}
	st = state_of(child, ctgid, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (st && st->traced)
		emit_proc(child, SYSCAP_EV_FORK, ptgid, parent->pid, 0, 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct syscap_task_state *st;
	struct cur_state *c;
	__u32 zero = 0;

	/* comm changed: recompute the verdict. A thread that is not the
	 * leader took over the leader's tid: its slot follows it. */
	c = bpf_map_lookup_elem(&current_state, &zero);
	if (c && c->tid == (__u32)old_pid) {
		c->tid = task->pid;
		c->st.gen = 0;
	}
	st = bpf_task_storage_get(&tasks, task, 0, 0);
	if (st)
		st->gen = 0;
	st = counted ? state_of(task, task->tgid, BPF_LOCAL_STORAGE_GET_F_CREATE) :
		       cur_state_of(task, 1);
	if (st && st->traced)
		emit_proc(task, SYSCAP_EV_EXEC, task->tgid, old_pid, 0, 0);
	return 0;
}

/*
 * exit and exit_group (native or 32-bit) never reach sys_exit: count or
 * record them when the task dies, so every syscall it entered is seen once.
 * The call it died in comes from its user registers (bpf_task_pt_regs, from
 * 5.15, where the loader offers count mode); before, records mode knows it
 * only from the pending native slot, which is the number.
 */
static __always_inline void exit_syscall(struct syscap_task_state *st, struct task_struct *task,
					 __u32 tgid)
{
	int compat = in_compat_syscall(task);
	struct pt_regs *regs = 0;
	long id = -1;
	__u32 slot;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
		regs = (struct pt_regs *)bpf_task_pt_regs(task);
		id = syscall_nr(regs);
	} else if (st && !compat) {
		id = st->nr;
	}
	if (!syscap_is_exit_call(id, compat))
		return;
	if (!counted) {
		if (st && st->pending) {
			st->pending = 0;
			if (st->ts >= start_ns)
				emit_syscall(st, bpf_ktime_get_ns(), 0, regs, task, SYSCAP_F_NORETURN);
		}
		return;
	}
	slot = syscap_nr_slot(id, compat);
	if (syscap_syscall_wanted(&filter, slot))
		count_syscall(tgid, slot, 0);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task)
{
	struct syscap_task_state *st;
	__u32 tgid = task->tgid;
	int group_dead;
	__u8 flags = 0;

	group_dead = BPF_CORE_READ(task, signal, live.counter) == 0;
	if (group_dead)
		flags = SYSCAP_F_GROUP_DEAD;
	st = counted ? bpf_task_storage_get(&tasks, task, 0, 0) : cur_state_of(task, 0);
	if (counted && sample_gate[task->pid & (SAMPLE_GATE - 1)])
		take_sample(st, task->pid);	/* it died inside the sampled call */
	if (counted && !syscap_needs_verdict(&filter) ? tgid != filter.self_tgid :
	    st && st->traced) {
		if (syscap_ret_wanted(&filter, 0))
			exit_syscall(st, task, tgid);
		emit_proc(task, SYSCAP_EV_EXIT, tgid, task->pid, task->exit_code, flags);
	}
	if (group_dead)
		bpf_map_delete_elem(&pidset, &tgid);
	if (!counted) {
		struct cur_state *c;
		__u32 zero = 0;

		/* nothing of a dead task's state is needed again */
		c = bpf_map_lookup_elem(&current_state, &zero);
		if (c && c->tid == task->pid)
			c->tid = 0;
	}
	return 0;
}
