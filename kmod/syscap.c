// SPDX-License-Identifier: GPL-2.0-only
/*
 * syscap: syscall capture into per-CPU rings, read in place through mmap.
 *
 * Probes on sys_enter/sys_exit and sched_process_fork/exec/exit write one
 * record per finished syscall (at sys_exit, with the entry time and duration)
 * plus process events into this CPU's ring. The rings use the BPF ring buffer
 * memory layout (syscap_backend.h), so capture_lib drains them with the same
 * loop as the eBPF backend. The ABI is in syscap_kmod.h.
 *
 * The order of work in the probes is the point: the syscall bitmap and the
 * consumer's tgid are tested first, then the task's cached verdict; only a
 * traced syscall takes a timestamp. Totals go to per-CPU counters, exact even
 * when a ring is full. Nothing on the probe path sleeps, locks, faults or
 * wakes anyone: a reader is woken through irq_work when a ring crosses its
 * watermark.
 *
 * Probes are registered only while capture runs (START .. STOP), so the module
 * costs nothing when idle, and everything they touch is freed only after
 * tracepoint_synchronize_unregister().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/hash.h>
#include <linux/irq_work.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/poll.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/timex.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <asm/syscall.h>
#include <asm/unistd.h>
#ifdef CONFIG_X86
#include <asm/cpufeature.h>
#include <asm/tsc.h>
#endif
#ifdef CONFIG_ARM64
#include <asm/arch_timer.h>
#endif
#include <trace/events/sched.h>
#include <trace/events/syscalls.h>

#include "syscap_kmod.h"
#define SYSCAP_PROBE_INLINE static inline
/* count slots: an increment between stores (syscap_count_add) */
#define SYSCAP_BUMP(p)		do { smp_wmb(); WRITE_ONCE(*(p), *(p) + 1); smp_wmb(); } while (0)
#define SYSCAP_RMB()		smp_rmb()
/* a count: one store, in one instruction where there is one (the probe's
 * every call runs it) */
#ifdef CONFIG_X86_64
#define SYSCAP_INC(p)		asm volatile("incq %0" : "+m"(*(p)))
#endif
#include "syscap_probe.h"

/*
 * ------------------------------------------------------------ older kernels
 *
 * What kernels older than the newest need, in one place (the oldest kept
 * building is 4.19). Tested by feature where the kernel defines a macro;
 * otherwise by version, never by 4.19.y sublevel: from 4.19.256 on
 * LINUX_VERSION_CODE stays at 4.19.255.
 */

/* The fallthrough pseudo-keyword came in 5.4. */
#ifndef fallthrough
#ifdef __has_attribute
#if __has_attribute(__fallthrough__)
#define fallthrough	__attribute__((__fallthrough__))
#endif
#endif
#endif
#ifndef fallthrough
#define fallthrough	do {} while (0)
#endif

/*
 * Before 5.0 (and its backport to 4.19.y) module_init() declares its alias
 * without its target's attributes (__copy): gcc 9 and later warn, for every
 * module, that the alias lacks the __cold of __init.
 */
#if !defined(__copy) && defined(__GNUC__) && __GNUC__ >= 9
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#endif

/*
 * The syscall probes run with preemption off, which their per-CPU state and
 * the RCU-sched filter pointer need. The tracepoint itself disables it around
 * its probes, except where syscall tracepoints may fault
 * (DECLARE_TRACE_SYSCALL, 6.14): there it calls them preemptible, under RCU
 * tasks trace, and the probes disable preemption themselves.
 */
#ifdef DECLARE_TRACE_SYSCALL
#define syscall_probe_begin()	preempt_disable_notrace()
#define syscall_probe_end()	preempt_enable_notrace()
#else
#define syscall_probe_begin()	do { } while (0)
#define syscall_probe_end()	do { } while (0)
#endif

/* Before 5.1 syscall_get_arguments() took a first index and a count. */
static inline void syscap_syscall_args(struct pt_regs *regs, unsigned long *a)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 1, 0)
	syscall_get_arguments(current, regs, 0, 6, a);
#else
	syscall_get_arguments(current, regs, a);
#endif
}

/*
 * compat_ptr_ioctl() came in 5.5: before, the module passes a 32-bit
 * caller's pointer on itself (the ioctl numbers and structures are the same
 * for both ABIs).
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 5, 0)
#define syscap_compat_ioctl	compat_ptr_ioctl
#elif defined(CONFIG_COMPAT)
static long syscap_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

static long syscap_compat_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	return syscap_ioctl(file, cmd, (unsigned long)compat_ptr(arg));
}
#else
#define syscap_compat_ioctl	NULL
#endif

#define SYSCAP_PID_SLOTS	16384	/* process set entries, a power of 2 */
#define SYSCAP_PROBE_MAX	64	/* hash probes before giving up */
#define SYSCAP_TASK_GONE	((struct task_struct *)1UL)	/* released slot */

static unsigned long ring_size = 8UL << 20;
module_param(ring_size, ulong, 0444);
MODULE_PARM_DESC(ring_size, "Default ring size per CPU in bytes (power of two, default 8 MiB)");

static unsigned int task_slots = 32768;
module_param(task_slots, uint, 0444);
MODULE_PARM_DESC(task_slots, "Threads followed at once (rounded up to a power of two)");

static unsigned int count_slots = 16384;
module_param(count_slots, uint, 0444);
MODULE_PARM_DESC(count_slots,
		 "Count mode: process x syscall counters per CPU (rounded up to a power of two)");

/* One CPU's ring: BPF ring buffer layout, single producer (that CPU). */
struct syscap_kring {
	u64 *consumer_pos;		/* in cons_page, written by the reader */
	u64 *producer_pos;		/* in prod_page */
	u8 *data;			/* data pages mapped twice, back to back */
	u64 mask;			/* size - 1 */
	u64 watermark;
	u64 prod;			/* the producer's own position */
	struct page *cons_page;
	struct page *prod_page;
	struct page **pages;		/* npages data pages */
	unsigned int npages;
	struct irq_work wakeup;
	wait_queue_head_t *wq;
};

/* Per-thread state, found by hashing the task pointer. Once a slot is owned,
 * only its task touches it (its fork tracepoint, before the task first runs,
 * and its own sched_process_exit included). */
struct syscap_task {
	struct task_struct *owner;	/* NULL: never used; SYSCAP_TASK_GONE */
	struct syscap_task_state st;
};

/*
 * An immutable copy of the filter, replaced as a whole (RCU). f.generation is
 * the module's own: each copy gets a new one, also when only the process set
 * changed, so a probe that loaded one pointer has one consistent filter and
 * the generation that belongs to it.
 */
struct syscap_kfilter {
	struct syscap_filter f;
	struct rcu_head rcu;
};

struct syscap_pcpu {
	struct syscap_cpu_stats st;	/* copied out by READ_STATS */
	struct syscap_kring *ring;	/* this CPU's, while running: the probes */
	u32 cpu;			/* find it and its CPU in one place */
	u64 missed;
	u64 pidset_full;
	u32 sample_left;		/* sampled mode: calls to the next sample */
};

/*
 * Sampled mode: the counters of samples taken and not yet ended, by hash of
 * the thread id, so that the exit probe looks up a task's slot only when a
 * sample may be its own (as the eBPF probe does).
 */
#define SYSCAP_SAMPLE_GATE	1024

struct syscap_probe_ref {
	struct tracepoint **tp;
	void *probe;
};

/* Everything one open file owns; the probes get it as their data pointer. */
struct syscap_ksession {
	struct mutex lock;		/* ioctl, mmap, release */
	bool running;
	atomic_t nmaps;			/* live vmas */
	u64 ring_size;
	u64 watermark;
	struct syscap_kring **rings;	/* [nr_cpu_ids], NULL until needed */
	struct syscap_pcpu __percpu *pcpu;
	struct syscap_kfilter __rcu *filter;
	u32 gen;			/* the newest filter copy's generation */
	/* process set: u64 entries (value << 32 | tgid); value 0: removed */
	u64 *pidset;
	raw_spinlock_t pidset_lock;	/* writers only */
	int npids;			/* entries with a value */
	struct syscap_task *tasks;	/* task_slots entries while running */
	unsigned int task_bits;
	bool count_mode;		/* SET_MODE: counters instead of records */
	bool sampled;			/* ... and the durations of a sample */
	bool with_args;			/* SET_ARGS: records carry arguments */
	bool counter;			/* SET_CLOCK: times in counter ticks */
	u32 sample_mask;		/* period - 1; read by the probes */
	atomic_t *sample_gate;		/* [SYSCAP_SAMPLE_GATE] while running */
	/*
	 * All that count mode's probe reads of its own on its common path:
	 * neither the filter copy nor the per-CPU area is a page it touches
	 * there (under an emulator each page may miss its TLB)
	 */
	u32 filter_flags;		/* the filter's, copied by filter_publish */
	unsigned int count_shift;	/* 64 - count_bits */
	void *counts;			/* count mode: each CPU's table (count_table) */
	size_t count_stride;		/* bytes from one CPU's table to the next */
	/* [nr_cpu_ids] with counts; the ioctls, under lock, use them */
	struct syscap_count_retired *retired;
	unsigned int count_bits;
	struct syscap_probe_ref probes[5];	/* registered, in order */
	int nprobes;
	bool sampler_on;		/* probe_sys_enter_sample is registered */
	wait_queue_head_t wq;
};

/*
 * A long: arm64's cmpxchg before 5.1 accesses any operand as a long, which
 * gcc 12 reports as out of bounds of a 4-byte atomic_t (-Warray-bounds).
 */
static atomic_long_t syscap_busy = ATOMIC_LONG_INIT(0);

/* The tracepoints, found by name at load. */
static struct tracepoint *tp_sys_enter, *tp_sys_exit;
static struct tracepoint *tp_fork, *tp_exec, *tp_exit;

/* ------------------------------------------------------------ clock */

/*
 * The CPU's cycle counter as get_cycles() reads it (the TSC; arm64's virtual
 * counter, through the kernel's erratum-aware accessor): its ticks per
 * second, 0 where there is none.
 */
static u64 counter_hz(void)
{
#if defined(CONFIG_X86)
	return boot_cpu_has(X86_FEATURE_TSC) ? (u64)tsc_khz * 1000 : 0;
#elif defined(CONFIG_ARM64)
	return arch_timer_get_cntfrq();
#else
	return 0;
#endif
}

#if defined(CONFIG_X86)
/*
 * The kernel keeps its own time with the TSC: its clocksource's reading is
 * the very value get_cycles() returns. Three readings must each fall between
 * two reads of the TSC around them, ordered as the TSC clocksource's own are
 * (a plain RDTSC may run before the instructions ahead of it): another
 * clocksource's value (HPET, kvm-clock, ACPI PM) does not, except by a
 * coincidence that does not repeat.
 */
static bool counter_is_clocksource(void)
{
	struct system_time_snapshot snap;
	unsigned long flags;
	u64 t0, t1;
	int i;

	for (i = 0; i < 3; i++) {
		local_irq_save(flags);
		t0 = rdtsc_ordered();
		ktime_get_snapshot(&snap);
		t1 = rdtsc_ordered();
		local_irq_restore(flags);
		if (snap.cycles < t0 || snap.cycles > t1)
			return false;
	}
	return true;
}
#endif

/*
 * The counter is a clock across CPUs: it runs at one rate whatever the
 * CPU's state, and the kernel found the CPUs' counters in step (its own
 * check of the TSC, which a hypervisor or firmware can fail). On x86 either
 * the CPU says its TSC is constant and nonstop, or the kernel times itself
 * with the TSC: it leaves that clocksource when it sees the TSC change rate
 * (cpufreq), stop in idle or drift between CPUs, and marks the TSC unstable
 * then. Where the CPU does not say so but the administrator vouched for the
 * TSC (tsc=reliable, as in a TCG guest), the kernel's clock is the TSC and
 * so is the probes'. arm64's counter is architecturally one for the whole
 * system. The consumer follows CLOCK_MONOTONIC's rate either way
 * (syscap_clock_anchor).
 */
static bool counter_trusted(void)
{
#if defined(CONFIG_X86)
	if (check_tsc_unstable())
		return false;
	return (boot_cpu_has(X86_FEATURE_CONSTANT_TSC) &&
		boot_cpu_has(X86_FEATURE_NONSTOP_TSC)) || counter_is_clocksource();
#else
	return true;
#endif
}

/*
 * The probes' clock: a counter read costs a few instructions where the
 * monotonic clock also goes through the clocksource's read function and its
 * conversion (and, where the clocksource is a device such as the HPET, a
 * device read). The consumer converts ticks to nanoseconds.
 */
/* Whether a SYSCAP_KMOD_CLOCK_* choice (checked) means the counter. */
static bool clock_is_counter(u32 clock)
{
	return clock == SYSCAP_KMOD_CLOCK_COUNTER ||
	       (clock == SYSCAP_KMOD_CLOCK_AUTO && counter_hz() && counter_trusted());
}

static __always_inline u64 syscap_clock(bool counter)
{
	return counter ? (u64)get_cycles() : ktime_get_mono_fast_ns();
}

static __always_inline u64 syscap_now(const struct syscap_ksession *s)
{
	return syscap_clock(s->counter);
}

/* ------------------------------------------------------------ process set */

static u32 pidset_lookup(struct syscap_ksession *s, u32 tgid)
{
	unsigned int i, h = hash_32(tgid, ilog2(SYSCAP_PID_SLOTS));

	for (i = 0; i < SYSCAP_PROBE_MAX; i++) {
		u64 e = READ_ONCE(s->pidset[(h + i) & (SYSCAP_PID_SLOTS - 1)]);

		if (!e)
			return 0;
		if ((u32)e == tgid)
			return e >> 32;
	}
	return 0;
}

/* value 0 removes. Returns -ENOSPC when the set is full. */
static int pidset_store(struct syscap_ksession *s, u32 tgid, u32 value)
{
	unsigned int i, h = hash_32(tgid, ilog2(SYSCAP_PID_SLOTS));
	u64 *free = NULL, *slot = NULL;
	unsigned long flags;
	int ret = 0;

	raw_spin_lock_irqsave(&s->pidset_lock, flags);
	for (i = 0; i < SYSCAP_PROBE_MAX; i++) {
		u64 *p = &s->pidset[(h + i) & (SYSCAP_PID_SLOTS - 1)];

		if ((u32)*p == tgid && *p) {
			slot = p;
			break;
		}
		if (!free && !(*p >> 32))
			free = p;	/* empty or removed: reusable */
		if (!*p)
			break;
	}
	if (slot) {
		if (!(*slot >> 32) && value)
			s->npids++;
		else if ((*slot >> 32) && !value)
			s->npids--;
		WRITE_ONCE(*slot, (u64)value << 32 | tgid);
	} else if (value) {
		if (free) {
			WRITE_ONCE(*free, (u64)value << 32 | tgid);
			s->npids++;
		} else {
			ret = -ENOSPC;
		}
	}
	raw_spin_unlock_irqrestore(&s->pidset_lock, flags);
	return ret;
}

/* ------------------------------------------------------------ per-task state */

/* The process part of the filter (glue for syscap_task_passes). */
static bool task_passes(struct syscap_ksession *s, const struct syscap_filter *f,
			struct task_struct *task)
{
	u32 v = READ_ONCE(s->npids) ? pidset_lookup(s, task->tgid) : 0;
	char comm[SYSCAP_COMM_LEN];

	memcpy(comm, task->comm, sizeof(comm));
	return syscap_task_passes(f, task->tgid, v, comm);
}

/*
 * The slot of task, or NULL. With create, claim one (only the task itself,
 * or its creator before it first runs, creates its slot, so a task is never
 * in the table twice). Released slots are reused but do not end a search; a
 * never-used one does.
 */
static struct syscap_task *task_slot(struct syscap_ksession *s, struct task_struct *task,
				     bool create)
{
	unsigned int i, tries, h = hash_ptr(task, s->task_bits);
	unsigned int mask = (1U << s->task_bits) - 1;
	struct syscap_task *t, *cand;
	struct task_struct *owner, *old;

	for (tries = 0; tries < 4; tries++) {
		cand = NULL;
		old = NULL;
		for (i = 0; i < SYSCAP_PROBE_MAX; i++) {
			t = &s->tasks[(h + i) & mask];
			owner = READ_ONCE(t->owner);
			if (owner == task)
				return t;
			if (!owner) {
				if (!cand)
					cand = t;
				break;
			}
			if (owner == SYSCAP_TASK_GONE && !cand) {
				cand = t;
				old = SYSCAP_TASK_GONE;
			}
		}
		if (!create || !cand)
			return NULL;	/* absent, or the table is full here */
		/* another task may claim cand first: then look again */
		if (cmpxchg(&cand->owner, old, task) == old) {
			memset(&cand->st, 0, sizeof(cand->st));
			return cand;
		}
	}
	return NULL;
}

/* current's first place in the task table, whoever holds it. */
static __always_inline struct syscap_task *home_slot(struct syscap_ksession *s)
{
	return &s->tasks[hash_ptr(current, s->task_bits)];
}

/* Whether current holds slot t. */
static __always_inline bool holds_slot(const struct syscap_task *t)
{
	return READ_ONCE(t->owner) == current;
}

/*
 * current's first place in the task table if current holds it, else NULL:
 * nearly always the answer, so the probes look there inline.
 */
static __always_inline struct syscap_task *first_slot(struct syscap_ksession *s)
{
	struct syscap_task *t = home_slot(s);

	return likely(holds_slot(t)) ? t : NULL;
}

/* current's slot, or NULL: the probes' lookup; the search only past first_slot. */
static __always_inline struct syscap_task *current_slot(struct syscap_ksession *s, bool create)
{
	struct syscap_task *t = first_slot(s);

	return likely(t) ? t : task_slot(s, current, create);
}

/* The cached verdict, recomputed under f's own generation when stale. */
static bool task_traced(struct syscap_ksession *s, const struct syscap_filter *f,
			struct syscap_task *t, struct task_struct *task)
{
	if (syscap_verdict_stale(&t->st, f->generation)) {
		/* the process set as of this filter copy: pairs with the
		 * release in filter_publish() */
		smp_rmb();
		syscap_verdict_store(&t->st, f->generation, task_passes(s, f, task));
	}
	return t->st.traced;
}

/*
 * current's slot if the process part of the filter admits it, else NULL; a
 * full task table counts as a missed syscall.
 */
static noinline struct syscap_task *traced_slot_slow(struct syscap_ksession *s,
						     const struct syscap_filter *f)
{
	struct syscap_task *t = current_slot(s, true);

	if (!t) {
		this_cpu_inc(s->pcpu->missed);
		return NULL;
	}
	return task_traced(s, f, t, current) ? t : NULL;
}

/*
 * Whether current holds its home slot t with a verdict under f: the probes'
 * common case, one branch (t's verdict is read whoever holds it).
 */
static __always_inline bool holds_fresh(const struct syscap_filter *f, struct syscap_task *t)
{
	return !(((unsigned long)READ_ONCE(t->owner) ^ (unsigned long)current) |
		 syscap_verdict_stale(&t->st, f->generation));
}

/* traced_slot_slow's answer, looked for inline first (holds_fresh). */
static __always_inline struct syscap_task *traced_slot(struct syscap_ksession *s,
							const struct syscap_filter *f)
{
	struct syscap_task *t = home_slot(s);

	if (likely(holds_fresh(f, t)))
		return t->st.traced ? t : NULL;
	return traced_slot_slow(s, f);
}

/* ------------------------------------------------------------ rings */

/* A record's place in a ring, reserved: ring_commit() publishes it. */
struct syscap_kslot {
	struct syscap_rec *rec;		/* behind its 8-byte header */
	u64 prod;			/* the header's position */
	u64 used;			/* bytes the ring held before it */
};

/*
 * Room for a record of len bytes (SYSCAP_REC_SIZE, or SYSCAP_RING_ARGS_LEN
 * with arguments) behind its 8-byte header: false when the ring is full. The
 * data is mapped twice in a row, so a record may run past the end. Inline,
 * with the slot's fields in registers: the producer position is loaded once.
 */
static __always_inline bool ring_reserve(struct syscap_kring *r, u32 len, struct syscap_kslot *k)
{
	u64 cons = smp_load_acquire(r->consumer_pos);

	/* The reader owns consumer_pos and may write anything there: a
	 * position ahead of ours or too far behind only makes the ring look
	 * full. Offsets come from our own position alone. */
	k->prod = r->prod;
	k->used = k->prod - cons;
	k->rec = (struct syscap_rec *)(r->data + (k->prod & r->mask) + 8);
	return k->used <= r->mask + 1 - (8 + len);
}

/* The arguments' place in a record reserved with SYSCAP_RING_ARGS_LEN. */
static u64 *ring_args(struct syscap_rec *rec)
{
	*(u64 *)(rec + 1) = 0;		/* the 8 bytes before them */
	return (u64 *)((u8 *)rec + SYSCAP_RING_ARGS_OFF);
}

static __always_inline void ring_commit(struct syscap_kring *r, const struct syscap_kslot *k,
					u32 len)
{
	u32 bytes = 8 + ALIGN(len, 8);
	u64 prod = k->prod + bytes;

	/* the header, length then zero, as one store (little-endian) */
	*((u64 *)k->rec - 1) = len;
	r->prod = prod;
	smp_store_release(r->producer_pos, prod);
	/* Wake only on crossing the watermark (used < watermark <= used +
	 * bytes, one unsigned compare): a reader above it is awake. */
	if (r->watermark - k->used - 1 < bytes)
		irq_work_queue(&r->wakeup);
}

static void ring_wakeup(struct irq_work *work)
{
	struct syscap_kring *r = container_of(work, struct syscap_kring, wakeup);

	wake_up_interruptible(r->wq);
}

static void ring_free(struct syscap_kring *r)
{
	unsigned int i;

	if (!r)
		return;
	irq_work_sync(&r->wakeup);
	if (r->data)
		vunmap(r->data);
	for (i = 0; i < r->npages; i++)
		if (r->pages[i])
			__free_page(r->pages[i]);
	kvfree(r->pages);
	if (r->cons_page)
		__free_page(r->cons_page);
	if (r->prod_page)
		__free_page(r->prod_page);
	kfree(r);
}

static struct syscap_kring *ring_alloc(int cpu, u64 size, u64 watermark, wait_queue_head_t *wq)
{
	unsigned int i, n = size >> PAGE_SHIFT;
	int node = cpu_to_node(cpu);
	struct page **map = NULL;
	struct syscap_kring *r;

	r = kzalloc_node(sizeof(*r), GFP_KERNEL, node);
	if (!r)
		return NULL;
	init_irq_work(&r->wakeup, ring_wakeup);
	r->wq = wq;
	r->mask = size - 1;
	r->watermark = watermark;
	r->pages = kvcalloc(n, sizeof(*r->pages), GFP_KERNEL);
	map = kvcalloc(2 * n, sizeof(*map), GFP_KERNEL);
	if (!r->pages || !map)
		goto fail;
	r->npages = n;
	r->cons_page = alloc_pages_node(node, GFP_KERNEL | __GFP_ZERO, 0);
	r->prod_page = alloc_pages_node(node, GFP_KERNEL | __GFP_ZERO, 0);
	if (!r->cons_page || !r->prod_page)
		goto fail;
	for (i = 0; i < n; i++) {
		r->pages[i] = alloc_pages_node(node, GFP_KERNEL | __GFP_ZERO, 0);
		if (!r->pages[i])
			goto fail;
		map[i] = map[i + n] = r->pages[i];
	}
	r->data = vmap(map, 2 * n, VM_MAP, PAGE_KERNEL);
	if (!r->data)
		goto fail;
	kvfree(map);
	r->consumer_pos = page_address(r->cons_page);
	r->producer_pos = page_address(r->prod_page);
	return r;
fail:
	kvfree(map);
	ring_free(r);
	return NULL;
}

static void rings_free(struct syscap_ksession *s)
{
	int cpu;

	if (!s->rings)
		return;
	for (cpu = 0; cpu < nr_cpu_ids; cpu++)
		ring_free(s->rings[cpu]);
	kfree(s->rings);
	s->rings = NULL;
}

static int rings_alloc(struct syscap_ksession *s)
{
	int cpu;

	if (s->rings)
		return 0;
	s->rings = kcalloc(nr_cpu_ids, sizeof(*s->rings), GFP_KERNEL);
	if (!s->rings)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		s->rings[cpu] = ring_alloc(cpu, s->ring_size, s->watermark, &s->wq);
		if (!s->rings[cpu]) {
			rings_free(s);
			return -ENOMEM;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ probes */

static void read_args(struct pt_regs *regs, u64 *out)
{
	unsigned long a[6];
	int i;

	syscap_syscall_args(regs, a);
	for (i = 0; i < 6; i++)
		out[i] = a[i];
}

/*
 * Count a finished syscall and write its record of len bytes (SYSCAP_REC_SIZE,
 * or SYSCAP_RING_ARGS_LEN with the arguments from regs); preemption is off.
 * Inlined, with len a constant: the probe's common path then makes no call
 * (the arguments' case is emit_syscall_args, out of line).
 */
static __always_inline void emit_syscall(struct syscap_ksession *s, struct syscap_task *t,
					 u64 now, long ret, struct pt_regs *regs, u8 flags,
					 u32 len)
{
	struct syscap_pcpu *pc = this_cpu_ptr(s->pcpu);
	struct syscap_kring *r = pc->ring;
	u64 dur = now - t->st.ts;
	struct syscap_kslot k;
	u32 nr = t->st.nr, seq;

	seq = pc->st.events++;
	pc->st.calls[nr]++;
	pc->st.total_ns[nr] += dur;
	if (syscap_is_error(ret))
		pc->st.errors[nr]++;

	if (unlikely(!ring_reserve(r, len, &k))) {
		pc->st.drops++;
		return;
	}
	if (nr == SYSCAP_NR_COMPAT)
		flags |= SYSCAP_F_COMPAT;
	syscap_fill_syscall(k.rec, t->st.ts, dur, ret, current->tgid, current->pid, seq, nr,
			    syscall_get_nr(current, regs), flags, pc->cpu);
	if (len == SYSCAP_RING_ARGS_LEN)
		read_args(regs, ring_args(k.rec));
	ring_commit(r, &k, len);
}

/* emit_syscall of a record with arguments: out of line, a tail call. */
static noinline void emit_syscall_args(struct syscap_ksession *s, struct syscap_task *t,
				       u64 now, long ret, struct pt_regs *regs, u8 flags)
{
	emit_syscall(s, t, now, ret, regs, flags, SYSCAP_RING_ARGS_LEN);
}

/* emit_syscall with the session's record length: arguments or not. */
static __always_inline void emit_syscall_any(struct syscap_ksession *s, struct syscap_task *t,
					     u64 now, long ret, struct pt_regs *regs, u8 flags)
{
	if (unlikely(s->with_args))
		emit_syscall_args(s, t, now, ret, regs, flags);
	else
		emit_syscall(s, t, now, ret, regs, flags, SYSCAP_REC_SIZE);
}

static void emit_proc(struct syscap_ksession *s, struct task_struct *task, u8 kind,
		      u32 ptgid, u32 ptid, long ret, u8 flags)
{
	struct syscap_pcpu *pc = this_cpu_ptr(s->pcpu);
	struct syscap_kring *r = pc->ring;
	struct syscap_kslot k;

	pc->st.proc_events++;
	if (!ring_reserve(r, SYSCAP_REC_SIZE, &k)) {
		pc->st.proc_drops++;
		return;
	}
	syscap_fill_proc(k.rec, kind, syscap_now(s), ret, task->tgid, task->pid, ptgid,
			 ptid, flags, pc->cpu);
	memcpy(k.rec->proc.comm, task->comm, sizeof(k.rec->proc.comm));
	ring_commit(r, &k, SYSCAP_REC_SIZE);
}

/* probe_sys_enter when holds_fresh says no: out of line, a tail call. */
static noinline void enter_slow(struct syscap_ksession *s, const struct syscap_filter *f,
				u32 slot)
{
	struct syscap_task *t = traced_slot_slow(s, f);

	if (t)
		syscap_note_entry(&t->st, slot, syscap_now(s));
}

/*
 * The record probes come in one pair per clock (s->counter, fixed while the
 * capture runs), each with its clock inline: the counter's pair then makes
 * no call on its common path, so it saves no registers.
 */
static __always_inline void sys_enter(void *data, long id, bool counter)
{
	u32 slot = syscap_nr_slot(id, in_compat_syscall());
	struct syscap_ksession *s = data;
	const struct syscap_filter *f;
	struct syscap_task *t;

	syscall_probe_begin();
	f = &rcu_dereference_sched(s->filter)->f;
	if (!syscap_syscall_wanted(f, slot) || current->tgid == f->self_tgid)
		goto out;
	t = home_slot(s);
	if (unlikely(!holds_fresh(f, t)))
		enter_slow(s, f, slot);
	else if (t->st.traced)
		syscap_note_entry(&t->st, slot, syscap_clock(counter));
out:
	syscall_probe_end();
}

static void probe_sys_enter(void *data, struct pt_regs *regs, long id)
{
	sys_enter(data, id, false);
}

static void probe_sys_enter_counter(void *data, struct pt_regs *regs, long id)
{
	sys_enter(data, id, true);
}

/*
 * A syscall whose entry the kernel skipped (syscap_entry_skipped): seccomp
 * denied it before sys_enter. It is recorded at its exit, with no duration.
 */
static noinline void exit_without_entry(struct syscap_ksession *s,
					const struct syscap_filter *f, struct syscap_task *t,
					struct pt_regs *regs, long ret)
{
	long id = syscall_get_nr(current, regs);
	int compat = in_compat_syscall();
	u32 slot = syscap_nr_slot(id, compat);
	u64 now;

	if (!syscap_syscall_wanted(f, slot) || !syscap_ret_wanted(f, ret) ||
	    syscap_is_new_task_return(id, ret, compat))
		return;
	now = syscap_now(s);
	t->st.nr = slot;
	t->st.ts = now;
	emit_syscall_any(s, t, now, ret, regs, SYSCAP_F_NOENTRY);
}

/* The exit of a task that holds slot t: its pending syscall's record. */
static __always_inline void exit_task(struct syscap_ksession *s, const struct syscap_filter *f,
				      struct syscap_task *t, struct pt_regs *regs, long ret,
				      bool counter)
{
	if (unlikely(!t->st.pending)) {
		if (syscap_entry_skipped(&t->st, f->generation))
			exit_without_entry(s, f, t, regs, ret);
		return;
	}
	t->st.pending = 0;
	if (syscap_ret_wanted(f, ret))
		emit_syscall_any(s, t, syscap_clock(counter), ret, regs, 0);
}

/* sys_exit when current's slot is not the first it looks at: a tail call. */
static noinline void exit_search(struct syscap_ksession *s, const struct syscap_filter *f,
				 struct pt_regs *regs, long ret)
{
	struct syscap_task *t = task_slot(s, current, false);

	if (t)
		exit_task(s, f, t, regs, ret, s->counter);
}

static __always_inline void sys_exit(void *data, struct pt_regs *regs, long ret, bool counter)
{
	struct syscap_ksession *s = data;
	const struct syscap_filter *f;
	struct syscap_task *t;

	syscall_probe_begin();
	f = &rcu_dereference_sched(s->filter)->f;
	if (current->tgid == f->self_tgid)
		goto out;
	t = home_slot(s);
	if (likely(holds_slot(t)))
		exit_task(s, f, t, regs, ret, counter);
	else
		exit_search(s, f, regs, ret);
out:
	syscall_probe_end();
}

static void probe_sys_exit(void *data, struct pt_regs *regs, long ret)
{
	sys_exit(data, regs, ret, false);
}

static void probe_sys_exit_counter(void *data, struct pt_regs *regs, long ret)
{
	sys_exit(data, regs, ret, true);
}

/* ------------------------------------------------------------ count mode */

/* CPU cpu's count table (counts_alloc), while s->counts is set. */
static __always_inline struct syscap_count_slot *count_table(const struct syscap_ksession *s,
							     int cpu)
{
	return s->counts + (size_t)(u32)cpu * s->count_stride;
}

/*
 * One call of key in this CPU's table tbl, whose first slot for it was not
 * the key's. A call the table could not take stays in the per-CPU totals, so
 * they stay exact; only its split by process is lost, counted as a drop.
 * Out of line: count mode's probe stays a leaf without it.
 */
static noinline void count_slow(struct syscap_ksession *s, struct syscap_count_slot *tbl,
				u64 key, long ret)
{
	struct syscap_pcpu *pc;
	u32 nr = key & (SYSCAP_MAX_SYSCALLS - 1);
	int err = syscap_is_error(ret);

	/* the consumer's calls: the readers leave them out */
	if (!syscap_count_add(tbl, s->count_bits, key, err) ||
	    key >> 32 == rcu_dereference_sched(s->filter)->f.self_tgid)
		return;
	pc = this_cpu_ptr(s->pcpu);
	pc->st.events++;
	pc->st.calls[nr]++;
	pc->st.errors[nr] += err;
	pc->st.drops++;
}

/*
 * One call of tgid x nr in this CPU's table; preemption is off. The per-CPU
 * totals are the table's (count_totals) unless it is full. The first slot
 * looked at is nearly always the key's: the probe looks there inline.
 */
static __always_inline void count_syscall(struct syscap_ksession *s, u32 tgid, u32 nr,
					  long ret)
{
	struct syscap_count_slot *tbl = count_table(s, smp_processor_id()), *e;
	u64 key = syscap_count_key(tgid, nr);

	e = syscap_count_first(tbl, s->count_shift, key);
	if (likely(syscap_count_holds(e, key)))
		syscap_count_hit(e, syscap_is_error(ret));
	else
		count_slow(s, tbl, key, ret);
}

/*
 * Whether count mode counts this exit, the task's verdict aside: the call and
 * its return pass the filter, and it is a call of its own (a new task's
 * first return is not) by another process than the consumer.
 */
static __always_inline bool count_wanted(const struct syscap_filter *f, long id, int compat,
					 u32 slot, long ret, u32 tgid)
{
	return syscap_syscall_wanted(f, slot) && syscap_ret_wanted(f, ret) &&
	       !syscap_is_new_task_return(id, ret, compat) && tgid != f->self_tgid;
}

/*
 * Sampled mode: the entry time of the task's sample, if it has one, and the
 * gate released; 0 if it has none. t: the task's slot, if already found.
 */
static u64 take_sample(struct syscap_ksession *s, struct syscap_task *t, u32 slot)
{
	atomic_t *gate = &s->sample_gate[current->pid & (SYSCAP_SAMPLE_GATE - 1)];

	if (!atomic_read(gate))
		return 0;
	if (!t)
		t = task_slot(s, current, false);
	if (!t || !t->st.pending)
		return 0;
	t->st.pending = 0;
	atomic_dec(gate);
	return t->st.nr == slot ? t->st.ts : 0;
}

/* A sample's record: like emit_syscall's, but its call is counted already. */
static void emit_sample(struct syscap_ksession *s, u64 ts, long ret, struct pt_regs *regs,
			u32 slot)
{
	struct syscap_pcpu *pc = this_cpu_ptr(s->pcpu);
	struct syscap_kring *r = pc->ring;
	u32 len = s->with_args ? SYSCAP_RING_ARGS_LEN : SYSCAP_REC_SIZE;
	u8 flags = SYSCAP_F_SAMPLED;
	struct syscap_kslot k;

	if (!ring_reserve(r, len, &k)) {
		pc->st.drops++;	/* a duration lost; counts stay */
		return;
	}
	if (slot == SYSCAP_NR_COMPAT)
		flags |= SYSCAP_F_COMPAT;
	syscap_fill_syscall(k.rec, ts, syscap_now(s) - ts, ret, current->tgid,
			    current->pid, 0, slot, syscall_get_nr(current, regs), flags, pc->cpu);
	if (s->with_args)
		read_args(regs, ring_args(k.rec));
	ring_commit(r, &k, len);
}

/*
 * Count mode's exit when the filter needs the task's verdict or the session
 * takes samples: the count, and the end of the task's sample if
 * probe_sys_enter_sample took one. Out of line and entered by a tail call,
 * so that count mode's probe saves no registers for it.
 */
static noinline void exit_count_slow(struct syscap_ksession *s, struct pt_regs *regs, long ret)
{
	const struct syscap_filter *f = &rcu_dereference_sched(s->filter)->f;
	long id = syscall_get_nr(current, regs);
	int compat = in_compat_syscall();
	u32 slot = syscap_nr_slot(id, compat);
	u64 sample_ts = s->sampled ? take_sample(s, NULL, slot) : 0;
	u32 tgid = current->tgid;

	if (!count_wanted(f, id, compat, slot, ret, tgid) ||
	    (syscap_needs_verdict(f) && !traced_slot(s, f)))
		return;
	count_syscall(s, tgid, slot, ret);
	if (sample_ts)
		emit_sample(s, sample_ts, ret, regs, slot);
}

/*
 * Count mode's only syscall probe: everything it needs is at exit (the
 * number is still in pt_regs), so it takes no timestamps and needs no
 * sys_enter probe. Its every call runs this, so it makes no call but tail
 * calls (exit_count_slow, count_slow) and keeps no value across one: it
 * saves no registers. A filter or a compat call takes exit_count_slow; the
 * common case tests with bitwise ors, not chains of branches (under an
 * emulator each branch ends a block of translated code).
 */
static void probe_sys_exit_count(void *data, struct pt_regs *regs, long ret)
{
	struct syscap_ksession *s = data;
	struct task_struct *task = current;
	long id;

	syscall_probe_begin();
	if (unlikely((READ_ONCE(s->filter_flags) != 0) | in_compat_syscall())) {
		exit_count_slow(s, regs, ret);
		goto out;
	}
	/* no filter, a native call: what count_wanted checks is left but the
	 * consumer, whose calls the readers leave out (count_read). The
	 * shared test's own first test, ret != 0, stands here too: with it
	 * gcc keeps the common path in line (one translated block less). */
	id = syscall_get_nr(task, regs);
	if (likely(ret != 0) || !syscap_is_new_task_return(id, ret, 0))
		count_syscall(s, task->tgid, syscap_nr_slot(id, 0), ret);
out:
	syscall_probe_end();
}

/* Sampled mode's exit probe: count mode's, and the end of a sample. */
static void probe_sys_exit_sampled(void *data, struct pt_regs *regs, long ret)
{
	struct syscap_ksession *s = data;

	syscall_probe_begin();
	exit_count_slow(s, regs, ret);
	syscall_probe_end();
}

/*
 * Sampled mode's entry probe. A per-CPU countdown picks the calls: each
 * sample draws the gap to the next one at random, 1 to 2 x period - 1 (a
 * fixed 1 in N would alias with a loop of period N), so one call in about
 * period is timed and the others cost a decrement.
 */
static void probe_sys_enter_sample(void *data, struct pt_regs *regs, long id)
{
	u32 slot = syscap_nr_slot(id, in_compat_syscall());
	struct syscap_ksession *s = data;
	const struct syscap_filter *f;
	struct syscap_pcpu *pc;
	struct syscap_task *t;
	u32 mask;

	syscall_probe_begin();
	pc = this_cpu_ptr(s->pcpu);
	if (pc->sample_left > 1) {
		pc->sample_left--;
		goto out;
	}
	mask = READ_ONCE(s->sample_mask);
	pc->sample_left = 1 + get_random_u32() % (2 * mask + 1);
	f = &rcu_dereference_sched(s->filter)->f;
	if (!syscap_syscall_wanted(f, slot) || current->tgid == f->self_tgid)
		goto out;
	t = traced_slot(s, f);
	if (!t || t->st.pending)
		goto out;
	t->st.nr = slot;
	t->st.ts = syscap_now(s);
	t->st.pending = 1;
	atomic_inc(&s->sample_gate[current->pid & (SYSCAP_SAMPLE_GATE - 1)]);
out:
	syscall_probe_end();
}

static void probe_fork(void *data, struct task_struct *parent, struct task_struct *child)
{
	struct syscap_ksession *s = data;
	const struct syscap_filter *f;
	u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct syscap_task *t;
	bool traced;

	preempt_disable_notrace();
	f = &rcu_dereference_sched(s->filter)->f;
	/* The process set follows children: a new process inherits its
	 * parent's membership before it can make its first syscall. */
	if (ptgid != ctgid && READ_ONCE(s->npids)) {
		u32 v = pidset_lookup(s, ptgid);

		if (v && pidset_store(s, ctgid, v))
			this_cpu_inc(s->pcpu->pidset_full);
	}
	/*
	 * The child's slot and verdict exist before it runs (it is woken after
	 * this tracepoint, so it cannot claim a slot of its own meanwhile): a
	 * first syscall that seccomp denies is then still seen at its exit.
	 */
	t = task_slot(s, child, true);
	if (t)
		traced = task_traced(s, f, t, child);
	else
		traced = task_passes(s, f, child);
	if (traced)
		emit_proc(s, child, SYSCAP_EV_FORK, ptgid, parent->pid, 0, 0);
	preempt_enable_notrace();
}

static void probe_exec(void *data, struct task_struct *task, pid_t old_pid,
		       struct linux_binprm *bprm)
{
	struct syscap_ksession *s = data;
	const struct syscap_filter *f;
	struct syscap_task *t;
	bool traced;

	preempt_disable_notrace();
	f = &rcu_dereference_sched(s->filter)->f;
	/* comm changed: the verdict is recomputed now */
	traced = task_passes(s, f, task);
	t = task == current ? task_slot(s, task, false) : NULL;
	if (t)
		syscap_verdict_store(&t->st, f->generation, traced);
	if (traced)
		emit_proc(s, task, SYSCAP_EV_EXEC, task->tgid, old_pid, 0, 0);
	preempt_enable_notrace();
}

/*
 * exit and exit_group (native or 32-bit) never reach sys_exit: the dying
 * task's hook records or counts them, so every syscall it entered is counted
 * once. The call it died in is in its user registers.
 */
static void exit_call(struct syscap_ksession *s, const struct syscap_filter *f,
		      struct syscap_task *t)
{
	struct pt_regs *regs = task_pt_regs(current);
	long id = syscall_get_nr(current, regs);
	int compat = in_compat_syscall();
	u32 slot = syscap_nr_slot(id, compat);

	if (!syscap_is_exit_call(id, compat))
		return;
	if (s->count_mode) {
		if (syscap_syscall_wanted(f, slot))
			count_syscall(s, current->tgid, slot, 0);
	} else if (t && t->st.pending) {
		t->st.pending = 0;
		emit_syscall_any(s, t, syscap_now(s), 0, regs, SYSCAP_F_NORETURN);
	}
}

static void probe_exit(void *data, struct task_struct *task)
{
	struct syscap_ksession *s = data;
	const struct syscap_filter *f;
	struct syscap_task *t = NULL;
	bool group_dead, traced;

	preempt_disable_notrace();
	f = &rcu_dereference_sched(s->filter)->f;
	group_dead = atomic_read(&task->signal->live) == 0;
	if (task == current)
		t = task_slot(s, task, false);
	traced = t ? task_traced(s, f, t, task) : task_passes(s, f, task);
	if (s->sampled && t && t->st.pending) {
		/* it dies inside its sampled call */
		t->st.pending = 0;
		atomic_dec(&s->sample_gate[task->pid & (SYSCAP_SAMPLE_GATE - 1)]);
	}
	if (traced && task == current && syscap_ret_wanted(f, 0))
		exit_call(s, f, t);
	if (traced)
		emit_proc(s, task, SYSCAP_EV_EXIT, task->tgid, task->pid, task->exit_code,
			  group_dead ? SYSCAP_F_GROUP_DEAD : 0);
	if (t)
		smp_store_release(&t->owner, SYSCAP_TASK_GONE);
	if (group_dead && READ_ONCE(s->npids) && pidset_lookup(s, task->tgid))
		pidset_store(s, task->tgid, 0);
	preempt_enable_notrace();
}

/* The probes match this kernel's tracepoint prototypes (a compile error if not). */
static void __maybe_unused check_probe_types(void)
{
	check_trace_callback_type_sys_enter(probe_sys_enter);
	check_trace_callback_type_sys_enter(probe_sys_enter_counter);
	check_trace_callback_type_sys_exit(probe_sys_exit);
	check_trace_callback_type_sys_exit(probe_sys_exit_counter);
	check_trace_callback_type_sys_exit(probe_sys_exit_count);
	check_trace_callback_type_sys_exit(probe_sys_exit_sampled);
	check_trace_callback_type_sched_process_fork(probe_fork);
	check_trace_callback_type_sched_process_exec(probe_exec);
	check_trace_callback_type_sched_process_exit(probe_exit);
}

/* ------------------------------------------------------------ start / stop */

static void probes_unregister(struct syscap_ksession *s)
{
	/* reverse order of registration: process exit goes last */
	if (s->sampler_on)
		tracepoint_probe_unregister(tp_sys_enter, probe_sys_enter_sample, s);
	s->sampler_on = false;
	while (s->nprobes > 0) {
		struct syscap_probe_ref *p = &s->probes[--s->nprobes];

		tracepoint_probe_unregister(*p->tp, p->probe, s);
	}
	tracepoint_synchronize_unregister();
}

static void counts_free(struct syscap_ksession *s)
{
	vfree(s->retired);	/* allocated with counts, freed even if they were not */
	s->retired = NULL;
	vfree(s->counts);
	s->counts = NULL;
}

/*
 * Zeroed count tables for CPUs 0 to nr_cpu_ids - 1 (START resets the
 * counters), in one allocation: the probe finds its CPU's from the CPU's
 * number, with no pointer of its own to load.
 */
static int counts_alloc(struct syscap_ksession *s)
{
	counts_free(s);
	s->count_bits = ilog2(roundup_pow_of_two(clamp(count_slots, 1024U, 1U << 22)));
	s->count_shift = 64 - s->count_bits;
	s->count_stride = SYSCAP_COUNT_TABLE_BYTES(s->count_bits);
	s->counts = vzalloc(array_size(nr_cpu_ids, s->count_stride));
	s->retired = vzalloc(array_size(nr_cpu_ids, sizeof(*s->retired)));
	if (!s->counts || !s->retired) {
		counts_free(s);
		return -ENOMEM;
	}
	return 0;
}

static int capture_start(struct syscap_ksession *s)
{
	struct syscap_probe_ref want[6];
	int cpu, i, n = 0, err;

	if (s->running)
		return 0;
	err = rings_alloc(s);
	if (err)
		return err;
	if (s->count_mode) {
		err = counts_alloc(s);
		if (err)
			return err;
	}
	if (s->sampled) {
		s->sample_gate = kcalloc(SYSCAP_SAMPLE_GATE, sizeof(*s->sample_gate), GFP_KERNEL);
		if (!s->sample_gate)
			return -ENOMEM;
	}
	s->task_bits = ilog2(roundup_pow_of_two(clamp(task_slots, 1024U, 1U << 22)));
	s->tasks = vzalloc(sizeof(*s->tasks) << s->task_bits);
	if (!s->tasks) {
		kfree(s->sample_gate);
		s->sample_gate = NULL;
		return -ENOMEM;
	}
	for_each_possible_cpu(cpu) {
		struct syscap_pcpu *pc = per_cpu_ptr(s->pcpu, cpu);

		memset(pc, 0, sizeof(*pc));
		pc->ring = s->rings[cpu];
		pc->cpu = cpu;
	}

	/* process exit first and last: a slot claimed in sys_enter is always
	 * released when its task exits; count mode needs no sys_enter */
	want[n++] = (struct syscap_probe_ref){ &tp_exit, probe_exit };
	want[n++] = (struct syscap_probe_ref){ &tp_fork, probe_fork };
	want[n++] = (struct syscap_probe_ref){ &tp_exec, probe_exec };
	if (s->sampled) {
		want[n++] = (struct syscap_probe_ref){ &tp_sys_exit, probe_sys_exit_sampled };
	} else if (s->count_mode) {
		want[n++] = (struct syscap_probe_ref){ &tp_sys_exit, probe_sys_exit_count };
	} else if (s->counter) {
		want[n++] = (struct syscap_probe_ref){ &tp_sys_exit, probe_sys_exit_counter };
		want[n++] = (struct syscap_probe_ref){ &tp_sys_enter, probe_sys_enter_counter };
	} else {
		want[n++] = (struct syscap_probe_ref){ &tp_sys_exit, probe_sys_exit };
		want[n++] = (struct syscap_probe_ref){ &tp_sys_enter, probe_sys_enter };
	}
	for (i = 0; i < n; i++) {
		err = tracepoint_probe_register(*want[i].tp, want[i].probe, s);
		if (err)
			break;
		s->probes[s->nprobes++] = want[i];
	}
	/* sampled mode's first sampling window */
	if (!err && s->sampled) {
		err = tracepoint_probe_register(tp_sys_enter, probe_sys_enter_sample, s);
		s->sampler_on = !err;
	}
	if (!err) {
		s->running = true;
		return 0;
	}
	probes_unregister(s);
	vfree(s->tasks);
	s->tasks = NULL;
	kfree(s->sample_gate);
	s->sample_gate = NULL;
	return err;
}

static void capture_stop(struct syscap_ksession *s)
{
	if (!s->running)
		return;
	probes_unregister(s);
	vfree(s->tasks);
	s->tasks = NULL;
	kfree(s->sample_gate);
	s->sample_gate = NULL;
	s->running = false;
	wake_up_interruptible(&s->wq);	/* the reader drains the rest */
}

/* ------------------------------------------------------------ ioctls */

/*
 * The device node's mode is one gate, the caller's capability the other: a
 * descriptor handed to an unprivileged process lets it do nothing. Tracing
 * every process's syscalls is what CAP_PERFMON (or CAP_SYS_ADMIN) allows.
 */
static bool syscap_capable(void)
{
#ifdef CAP_PERFMON
	return perfmon_capable();
#else
	return capable(CAP_SYS_ADMIN);
#endif
}

static long ioc_get_info(struct syscap_ksession *s, void __user *arg)
{
	struct syscap_kmod_info info;
	int cpu;

	memset(&info, 0, sizeof(info));
	info.abi = SYSCAP_KMOD_ABI;
	info.record_version = SYSCAP_REC_VERSION;
	info.record_size = SYSCAP_REC_SIZE;
	info.page_size = PAGE_SIZE;
	info.nr_cpu_ids = nr_cpu_ids;
	info.running = s->running;
	info.ring_size = s->ring_size;
	info.watermark = s->watermark;
	info.cpu_stride = 2 * PAGE_SIZE + 2 * s->ring_size;
	info.count_slots = 1ULL << ilog2(roundup_pow_of_two(clamp(count_slots, 1024U, 1U << 22)));
	for_each_possible_cpu(cpu)
		info.possible[cpu / 64] |= 1ULL << (cpu % 64);
	for_each_possible_cpu(cpu) {
		info.missed += per_cpu_ptr(s->pcpu, cpu)->missed;
		info.pidset_full += per_cpu_ptr(s->pcpu, cpu)->pidset_full;
	}
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long ioc_set_ring(struct syscap_ksession *s, void __user *arg)
{
	struct syscap_kmod_ring req;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.size < SYSCAP_KMOD_RING_MIN || req.size > SYSCAP_KMOD_RING_MAX ||
	    !is_power_of_2(req.size) || req.size < PAGE_SIZE || req.watermark > req.size)
		return -EINVAL;
	if (s->running || atomic_read(&s->nmaps))
		return -EBUSY;
	rings_free(s);
	s->ring_size = req.size;
	s->watermark = req.watermark ? req.watermark : req.size / 4;
	return 0;
}

/*
 * Publish a copy of f under the next generation (the lock is held). Every
 * process-set store made before it is visible to a probe that sees the copy.
 */
static int filter_publish(struct syscap_ksession *s, const struct syscap_filter *f)
{
	struct syscap_kfilter *nf, *old;

	nf = kmalloc(sizeof(*nf), GFP_KERNEL);
	if (!nf)
		return -ENOMEM;
	nf->f = *f;
	/* entries appear only through SET_PID (which publishes) and by
	 * inheritance from an entry: a set empty now stays empty until then */
	nf->f.flags &= ~SYSCAP_FILTER_PIDSET;
	if (s->npids)
		nf->f.flags |= SYSCAP_FILTER_PIDSET;
	if (!++s->gen)
		s->gen = 1;	/* 0 is the never-computed verdict */
	nf->f.generation = s->gen;
	old = rcu_dereference_protected(s->filter, lockdep_is_held(&s->lock));
	rcu_assign_pointer(s->filter, nf);
	/* count mode's probe tests this copy, not the filter's: for a moment
	 * after the new filter it may still go by the old one, as a probe
	 * that loaded the old pointer does */
	WRITE_ONCE(s->filter_flags, nf->f.flags);
	kfree_rcu(old, rcu);
	return 0;
}

static long ioc_set_filter(struct syscap_ksession *s, void __user *arg)
{
	const u32 known = SYSCAP_FILTER_SYSCALLS | SYSCAP_FILTER_PIDS | SYSCAP_FILTER_COMM |
			  SYSCAP_FILTER_COMM_EXCLUDE | SYSCAP_FILTER_FAILED;
	struct syscap_filter f;
	int i;

	if (copy_from_user(&f, arg, sizeof(f)))
		return -EFAULT;
	if ((f.flags & ~known) || f.ncomm > SYSCAP_MAX_COMMS ||
	    ((f.flags & SYSCAP_FILTER_COMM) && (f.flags & SYSCAP_FILTER_COMM_EXCLUDE)))
		return -EINVAL;
	for (i = 0; i < SYSCAP_MAX_COMMS; i++)
		f.comm[i][SYSCAP_COMM_LEN - 1] = '\0';
	/* the caller is the consumer: its tgid as the probes number it, which
	 * getpid() inside a pid namespace is not */
	f.self_tgid = current->tgid;
	return filter_publish(s, &f);
}

static long ioc_set_pid(struct syscap_ksession *s, void __user *arg)
{
	struct syscap_kmod_pid req;
	int err, ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (!req.tgid || req.tgid > PID_MAX_LIMIT ||
	    (req.value != 0 && req.value != SYSCAP_PID_INCLUDE && req.value != SYSCAP_PID_EXCLUDE))
		return -EINVAL;
	err = pidset_store(s, req.tgid, req.value);
	/* cached verdicts include the process set: a new generation */
	ret = filter_publish(s, &rcu_dereference_protected(s->filter,
							     lockdep_is_held(&s->lock))->f);
	return err ? err : ret;
}

/* The consumer's tgid, whose calls the readers leave out. Under the session's lock. */
static u32 consumer_tgid(struct syscap_ksession *s)
{
	return rcu_dereference_protected(s->filter, lockdep_is_held(&s->lock))->f.self_tgid;
}

/* Count mode: one CPU's totals (syscap_count_totals). */
static void count_totals(struct syscap_ksession *s, int cpu, struct syscap_cpu_stats *st)
{
	memcpy(st, &per_cpu_ptr(s->pcpu, cpu)->st, sizeof(*st));
	syscap_count_totals(count_table(s, cpu), s->count_bits, &s->retired[cpu],
			    consumer_tgid(s), st);
}

static long ioc_read_stats(struct syscap_ksession *s, void __user *arg)
{
	struct syscap_kmod_stats req;
	struct syscap_cpu_stats __user *out;
	struct syscap_cpu_stats *st = NULL;
	u32 cpu;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.entry_size != sizeof(struct syscap_cpu_stats) || !req.ncpu ||
	    req.ncpu > SYSCAP_MAX_CPUS)
		return -EINVAL;
	out = u64_to_user_ptr(req.buf);
	if (s->counts) {
		st = kvmalloc(sizeof(*st), GFP_KERNEL);
		if (!st)
			return -ENOMEM;
	}
	for (cpu = 0; cpu < req.ncpu; cpu++) {
		unsigned long left;

		if (cpu < nr_cpu_ids && cpu_possible(cpu) && st) {
			count_totals(s, cpu, st);
			left = copy_to_user(&out[cpu], st, sizeof(out[cpu]));
		} else if (cpu < nr_cpu_ids && cpu_possible(cpu)) {
			left = copy_to_user(&out[cpu], &per_cpu_ptr(s->pcpu, cpu)->st,
					    sizeof(out[cpu]));
		} else {
			left = clear_user(&out[cpu], sizeof(out[cpu]));
		}
		if (left) {
			kvfree(st);
			return -EFAULT;
		}
	}
	kvfree(st);
	return 0;
}

static long ioc_set_mode(struct syscap_ksession *s, void __user *arg)
{
	u32 mode;

	if (get_user(mode, (u32 __user *)arg))
		return -EFAULT;
	if (mode != SYSCAP_KMOD_MODE_RECORDS && mode != SYSCAP_KMOD_MODE_COUNTS &&
	    mode != SYSCAP_KMOD_MODE_SAMPLED)
		return -EINVAL;
	if (s->running)
		return -EBUSY;
	s->count_mode = mode != SYSCAP_KMOD_MODE_RECORDS;
	s->sampled = mode == SYSCAP_KMOD_MODE_SAMPLED;
	if (!s->count_mode)
		counts_free(s);
	return 0;
}

/* Syscall records with their arguments (1) or without (0); while stopped. */
static long ioc_set_args(struct syscap_ksession *s, void __user *arg)
{
	u32 on;

	if (get_user(on, (u32 __user *)arg))
		return -EFAULT;
	if (on > 1)
		return -EINVAL;
	if (s->running)
		return -EBUSY;
	s->with_args = on;
	return 0;
}

/* The probes' clock, SYSCAP_KMOD_CLOCK_*; while stopped. */
static long ioc_set_clock(struct syscap_ksession *s, void __user *arg)
{
	u32 clock;

	if (get_user(clock, (u32 __user *)arg))
		return -EFAULT;
	if (clock > SYSCAP_KMOD_CLOCK_COUNTER)
		return -EINVAL;
	if (s->running)
		return -EBUSY;
	if (clock == SYSCAP_KMOD_CLOCK_COUNTER && !counter_hz())
		return -EOPNOTSUPP;
	s->counter = clock_is_counter(clock);
	return 0;
}

/*
 * The clock in use and, for the counter, one reading of it paired with the
 * monotonic clock: the two are read back to back with interrupts off, the
 * counter before and after, and its midpoint taken.
 */
static long ioc_get_clock(struct syscap_ksession *s, void __user *arg)
{
	struct syscap_kmod_clock c;
	unsigned long flags;
	u64 t0, t1;

	memset(&c, 0, sizeof(c));
	c.clock = SYSCAP_KMOD_CLOCK_MONOTONIC;
	if (s->counter) {
		c.clock = SYSCAP_KMOD_CLOCK_COUNTER;
		c.hz = counter_hz();
		local_irq_save(flags);
		t0 = get_cycles();
		c.ref_ns = ktime_get_mono_fast_ns();
		t1 = get_cycles();
		local_irq_restore(flags);
		c.ref_ticks = t0 + (t1 - t0) / 2;
	}
	return copy_to_user(arg, &c, sizeof(c)) ? -EFAULT : 0;
}

/*
 * Open or close a sampling window: the entry probe that takes the samples is
 * registered only while one is open, so a call outside the windows costs
 * what count mode costs. The exit probe stays: a call sampled in a window
 * that closed before it returned is still paired with its own exit, and the
 * session (the probe's data) lives until STOP, which waits for every probe.
 */
static long ioc_sample_window(struct syscap_ksession *s, void __user *arg)
{
	u32 open;
	int err = 0;

	if (get_user(open, (u32 __user *)arg))
		return -EFAULT;
	if (open > 1 || !s->running || !s->sampled)
		return -EINVAL;
	if (open && !s->sampler_on) {
		err = tracepoint_probe_register(tp_sys_enter, probe_sys_enter_sample, s);
		s->sampler_on = !err;
	} else if (!open && s->sampler_on) {
		err = tracepoint_probe_unregister(tp_sys_enter, probe_sys_enter_sample, s);
		s->sampler_on = !!err;
	}
	return err;
}

static long ioc_set_sample_period(struct syscap_ksession *s, void __user *arg)
{
	u32 period;

	if (get_user(period, (u32 __user *)arg))
		return -EFAULT;
	if (!period || (period & (period - 1)) || period > 1U << 30)
		return -EINVAL;
	WRITE_ONCE(s->sample_mask, period - 1);
	return 0;
}

/*
 * One slot as its CPU's probe last left it (it writes inside an odd seq):
 * false for a slot never used or forgotten, and for the consumer's own calls,
 * which count mode's probe counts (one compare less on its every call) and
 * the readers leave out. Under the session's lock.
 */
static bool count_read(struct syscap_ksession *s, const struct syscap_count_slot *e,
		       struct syscap_kmod_count *out)
{
	u64 key;

	if (!syscap_count_read(e, &key, &out->calls, &out->errors) ||
	    key >> 32 == consumer_tgid(s))
		return false;
	out->tgid = key >> 32;
	out->nr = key & (SYSCAP_MAX_SYSCALLS - 1);
	return true;
}

static long ioc_read_counts(struct syscap_ksession *s, void __user *arg)
{
	struct syscap_kmod_counts __user *uarg = arg;
	struct syscap_kmod_count batch[32];
	struct syscap_kmod_counts req;
	u32 n = 0, nb = 0, i;
	int cpu;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (!s->counts)
		return put_user(0, &uarg->n);
	for_each_possible_cpu(cpu) {
		const struct syscap_count_slot *tbl = count_table(s, cpu);
		u32 nused = syscap_count_nused(tbl, s->count_bits);

		for (i = 0; i < nused; i++) {
			if (!count_read(s, syscap_count_listed(tbl, s->count_bits, i), &batch[nb]))
				continue;
			n++;
			if (n > req.max)
				continue;	/* count on: n tells how many there are */
			if (++nb == ARRAY_SIZE(batch)) {
				if (copy_to_user(u64_to_user_ptr(req.buf) +
						 (u64)(n - nb) * sizeof(batch[0]),
						 batch, sizeof(batch)))
					return -EFAULT;
				nb = 0;
			}
		}
		cond_resched();
	}
	if (nb && copy_to_user(u64_to_user_ptr(req.buf) + (u64)(min(n, req.max) - nb) *
			       sizeof(batch[0]), batch, nb * sizeof(batch[0])))
		return -EFAULT;
	if (put_user(n, &uarg->n))
		return -EFAULT;
	return n > req.max ? -ENOSPC : 0;
}

/* Drop a process's counter on every CPU: its process is gone. */
static long ioc_forget_count(struct syscap_ksession *s, void __user *arg)
{
	struct syscap_count_key req;
	u64 key;
	int cpu;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.nr >= SYSCAP_MAX_SYSCALLS)
		return -EINVAL;
	if (!s->counts)
		return 0;
	key = syscap_count_key(req.tgid, req.nr);
	for_each_possible_cpu(cpu) {
		struct syscap_count_slot *e = syscap_count_find(count_table(s, cpu), s->count_bits,
								key);

		if (!e)
			continue;
		syscap_count_retire(&s->retired[cpu], e, consumer_tgid(s));
		smp_store_release(&e->dead, 1);	/* the probe may reuse it from now on */
	}
	return 0;
}

static long syscap_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct syscap_ksession *s = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	if (!syscap_capable())
		return -EPERM;
	mutex_lock(&s->lock);
	switch (cmd) {
	case SYSCAP_IOC_GET_INFO:
		ret = ioc_get_info(s, uarg);
		break;
	case SYSCAP_IOC_SET_RING:
		ret = ioc_set_ring(s, uarg);
		break;
	case SYSCAP_IOC_SET_FILTER:
		ret = ioc_set_filter(s, uarg);
		break;
	case SYSCAP_IOC_SET_PID:
		ret = ioc_set_pid(s, uarg);
		break;
	case SYSCAP_IOC_READ_STATS:
		ret = ioc_read_stats(s, uarg);
		break;
	case SYSCAP_IOC_START:
		ret = capture_start(s);
		break;
	case SYSCAP_IOC_STOP:
		capture_stop(s);
		ret = 0;
		break;
	case SYSCAP_IOC_SET_MODE:
		ret = ioc_set_mode(s, uarg);
		break;
	case SYSCAP_IOC_READ_COUNTS:
		ret = ioc_read_counts(s, uarg);
		break;
	case SYSCAP_IOC_FORGET_COUNT:
		ret = ioc_forget_count(s, uarg);
		break;
	case SYSCAP_IOC_SET_SAMPLE_PERIOD:
		ret = ioc_set_sample_period(s, uarg);
		break;
	case SYSCAP_IOC_SAMPLE_WINDOW:
		ret = ioc_sample_window(s, uarg);
		break;
	case SYSCAP_IOC_SET_ARGS:
		ret = ioc_set_args(s, uarg);
		break;
	case SYSCAP_IOC_SET_CLOCK:
		ret = ioc_set_clock(s, uarg);
		break;
	case SYSCAP_IOC_GET_CLOCK:
		ret = ioc_get_clock(s, uarg);
		break;
	default:
		ret = -ENOTTY;
	}
	mutex_unlock(&s->lock);
	return ret;
}

/* ------------------------------------------------------------ mmap, poll */

static void syscap_vm_open(struct vm_area_struct *vma)
{
	struct syscap_ksession *s = vma->vm_private_data;

	atomic_inc(&s->nmaps);
}

static void syscap_vm_close(struct vm_area_struct *vma)
{
	struct syscap_ksession *s = vma->vm_private_data;

	atomic_dec(&s->nmaps);
}

static const struct vm_operations_struct syscap_vm_ops = {
	.open = syscap_vm_open,
	.close = syscap_vm_close,
};

static int syscap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct syscap_ksession *s = file->private_data;
	unsigned long i, stride, cpu, rel, len = vma_pages(vma);
	struct syscap_kring *r;
	int err;

	if (!syscap_capable())
		return -EPERM;
	mutex_lock(&s->lock);
	err = rings_alloc(s);
	if (err)
		goto out;
	err = -EINVAL;
	stride = 2 + 2 * (s->ring_size >> PAGE_SHIFT);
	cpu = vma->vm_pgoff / stride;
	rel = vma->vm_pgoff % stride;
	if (cpu >= nr_cpu_ids || !s->rings[cpu] || !len || len > stride - rel)
		goto out;
	r = s->rings[cpu];
	if (rel != 0 || len != 1) {
		/* positions and data are read-only for the reader */
		err = -EPERM;
		if (vma->vm_flags & VM_WRITE)
			goto out;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
		vm_flags_clear(vma, VM_MAYWRITE);
#else
		vma->vm_flags &= ~VM_MAYWRITE;
#endif
	}
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_DONTEXPAND | VM_DONTDUMP;
#endif
	for (i = 0; i < len; i++) {
		unsigned long pg = rel + i;
		struct page *page;

		if (pg == 0)
			page = r->cons_page;
		else if (pg == 1)
			page = r->prod_page;
		else
			page = r->pages[(pg - 2) % r->npages];
		err = vm_insert_page(vma, vma->vm_start + i * PAGE_SIZE, page);
		if (err)
			goto out;
	}
	vma->vm_ops = &syscap_vm_ops;
	vma->vm_private_data = s;
	atomic_inc(&s->nmaps);
	err = 0;
out:
	mutex_unlock(&s->lock);
	return err;
}

static __poll_t syscap_poll(struct file *file, poll_table *wait)
{
	struct syscap_ksession *s = file->private_data;
	struct syscap_kring **rings;
	__poll_t mask = 0;
	int cpu;

	poll_wait(file, &s->wq, wait);
	mutex_lock(&s->lock);	/* SET_RING may free the rings */
	rings = s->rings;
	for_each_possible_cpu(cpu) {
		struct syscap_kring *r = rings ? rings[cpu] : NULL;
		u64 used;

		if (!r)
			break;
		used = smp_load_acquire(r->producer_pos) - READ_ONCE(*r->consumer_pos);
		if (used >= r->watermark || (used && !s->running)) {
			mask = EPOLLIN | EPOLLRDNORM;
			break;
		}
	}
	mutex_unlock(&s->lock);
	return mask;
}

/* ------------------------------------------------------------ open, release */

static int syscap_open(struct inode *inode, struct file *file)
{
	struct syscap_ksession *s;
	struct syscap_kfilter *f;

	if (!syscap_capable())
		return -EPERM;
	if (atomic_long_cmpxchg(&syscap_busy, 0, 1))
		return -EBUSY;
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!s || !f)
		goto fail;
	mutex_init(&s->lock);
	init_waitqueue_head(&s->wq);
	raw_spin_lock_init(&s->pidset_lock);
	s->gen = 1;
	s->sample_mask = 63;	/* one call in 64 until SET_SAMPLE_PERIOD */
	f->f.generation = 1;
	s->ring_size = ring_size;
	if (!is_power_of_2(s->ring_size) || s->ring_size < PAGE_SIZE ||
	    s->ring_size < SYSCAP_KMOD_RING_MIN || s->ring_size > SYSCAP_KMOD_RING_MAX)
		s->ring_size = 8UL << 20;
	s->watermark = s->ring_size / 4;
	s->counter = clock_is_counter(SYSCAP_KMOD_CLOCK_AUTO);
	s->pcpu = alloc_percpu(struct syscap_pcpu);
	s->pidset = kvcalloc(SYSCAP_PID_SLOTS, sizeof(u64), GFP_KERNEL);
	if (!s->pcpu || !s->pidset)
		goto fail;
	RCU_INIT_POINTER(s->filter, f);
	file->private_data = s;
	return nonseekable_open(inode, file);
fail:
	if (s) {
		free_percpu(s->pcpu);
		kvfree(s->pidset);
	}
	kfree(s);
	kfree(f);
	atomic_long_set(&syscap_busy, 0);
	return -ENOMEM;
}

static int syscap_release(struct inode *inode, struct file *file)
{
	struct syscap_ksession *s = file->private_data;

	/* no vma is left (each holds the file), and no ioctl runs */
	capture_stop(s);
	rings_free(s);
	counts_free(s);
	free_percpu(s->pcpu);
	kvfree(s->pidset);
	kfree(rcu_dereference_protected(s->filter, 1));
	mutex_destroy(&s->lock);
	kfree(s);
	atomic_long_set(&syscap_busy, 0);
	return 0;
}

static const struct file_operations syscap_fops = {
	.owner = THIS_MODULE,
	.open = syscap_open,
	.release = syscap_release,
	.unlocked_ioctl = syscap_ioctl,
	.compat_ioctl = syscap_compat_ioctl,
	.mmap = syscap_mmap,
	.poll = syscap_poll,
};

static struct miscdevice syscap_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "syscap",
	.fops = &syscap_fops,
	.mode = 0600,
};

/* ------------------------------------------------------------ load, unload */

static void find_tracepoint(struct tracepoint *tp, void *priv)
{
	static const char * const names[] = {
		"sys_enter", "sys_exit", "sched_process_fork", "sched_process_exec",
		"sched_process_exit",
	};
	struct tracepoint **slots[] = { &tp_sys_enter, &tp_sys_exit, &tp_fork, &tp_exec, &tp_exit };
	int i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(tp->name, names[i]))
			*slots[i] = tp;
}

static int __init syscap_init(void)
{
	if (nr_cpu_ids > SYSCAP_MAX_CPUS) {
		pr_err("%u CPUs: at most %d supported\n", nr_cpu_ids, SYSCAP_MAX_CPUS);
		return -E2BIG;
	}
	for_each_kernel_tracepoint(find_tracepoint, NULL);
	if (!tp_sys_enter || !tp_sys_exit || !tp_fork || !tp_exec || !tp_exit) {
		pr_err("tracepoints missing (kernel without CONFIG_HAVE_SYSCALL_TRACEPOINTS?)\n");
		return -ENXIO;
	}
	return misc_register(&syscap_misc);
}

static void __exit syscap_exit(void)
{
	/* an open file holds a module reference: no session exists here */
	misc_deregister(&syscap_misc);
}

module_init(syscap_init);
module_exit(syscap_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("syscap: syscall capture into per-CPU mmap rings");
MODULE_VERSION("0.1");
