/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The probe logic that the eBPF program (capture_lib/bpf/syscap.bpf.c) and
 * the kernel module (kmod/syscap.c) share: which syscalls and tasks the filter
 * admits, how a task's cached verdict stays consistent with the filter, and
 * how every field of a record is filled. Each backend adds only its glue:
 * where the filter and the per-task state live, how the process set is looked
 * up, how a ring slot is reserved and how arguments and comm are read.
 *
 * Define SYSCAP_PROBE_INLINE before including this file (the BPF program
 * needs __always_inline; the module uses plain static inline).
 */
#ifndef SYSCAP_PROBE_H
#define SYSCAP_PROBE_H

#include "syscap_record.h"

#ifndef SYSCAP_PROBE_INLINE
#error "define SYSCAP_PROBE_INLINE before including syscap_probe.h"
#endif

/* Records and task state are written a word at a time, little-endian. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "syscap: records are little-endian; this target is not"
#endif

/*
 * A word stored over narrower fields: may alias them, and aligned, so that
 * it is one store (a memcpy of unknown alignment is byte stores in BPF).
 */
typedef __u64 __attribute__((__may_alias__, __aligned__(8))) syscap_word64;
typedef __u32 __attribute__((__may_alias__, __aligned__(4))) syscap_word32;

/*
 * Syscall numbers the probes treat specially (ABI: they never change), in the
 * native table and in the 32-bit compat one (i386; arm EABI on arm64).
 */
#if defined(__TARGET_ARCH_x86) || defined(__x86_64__)
#define SYSCAP_X86		1
#define SYSCAP_NR_EXIT		60
#define SYSCAP_NR_EXIT_GROUP	231
#define SYSCAP_COMPAT_NR_EXIT_GROUP	252
#elif defined(__TARGET_ARCH_arm64) || defined(__aarch64__)
#define SYSCAP_NR_EXIT		93
#define SYSCAP_NR_EXIT_GROUP	94
#define SYSCAP_COMPAT_NR_EXIT_GROUP	248
#else
#error "syscap: unsupported architecture"
#endif

/*
 * What a probe keeps per thread: the pending syscall and the cached verdict
 * on the process part of the filter (process set, comm, self-exclusion),
 * valid while the filter's generation is gen.
 */
struct syscap_task_state {
	__u64 ts;		/* entry time of the pending syscall */
	__u32 gen;		/* filter generation the verdict belongs to */
	__u16 nr;		/* pending syscall */
	__u8 traced;		/* verdict: the task passes the process filters */
	__u8 pending;		/* a syscall entered and has not been recorded */
};

/* syscap_note_entry writes nr, traced and pending as one word. */
_Static_assert(__builtin_offsetof(struct syscap_task_state, nr) % 4 == 0 &&
	       __builtin_offsetof(struct syscap_task_state, traced) ==
	       __builtin_offsetof(struct syscap_task_state, nr) + 2 &&
	       __builtin_offsetof(struct syscap_task_state, pending) ==
	       __builtin_offsetof(struct syscap_task_state, nr) + 3,
	       "syscap_task_state layout");

SYSCAP_PROBE_INLINE int syscap_comm_eq(const char *a, const char *b)
{
	int i;

	for (i = 0; i < SYSCAP_COMM_LEN; i++) {
		if (a[i] != b[i])
			return 0;
		if (!a[i])
			return 1;
	}
	return 1;
}

/*
 * The slot of a syscall in counters, filters and records: its number, or
 * SYSCAP_NR_COMPAT for a 32-bit task's call (the compat table is another),
 * or SYSCAP_NR_OTHER for a number outside the native table.
 */
SYSCAP_PROBE_INLINE __u32 syscap_nr_slot(long id, int compat)
{
	if (compat)
		return SYSCAP_NR_COMPAT;
	/* the kernel's number is an int (syscall_get_nr): as unsigned, its low
	 * half puts a negative one outside the table too, one compare on a CPU;
	 * BPF before v3 has no 32-bit compare and would widen it first */
#if defined(__bpf__)
	if ((unsigned long)id >= SYSCAP_NR_COMPAT)
#else
	if ((__u32)id >= SYSCAP_NR_COMPAT)
#endif
		return SYSCAP_NR_OTHER;
	return id;
}

/*
 * exit or exit_group, native or compat: the calls that end a task and never
 * pass sys_exit. Their number is read from the dying task's registers.
 */
SYSCAP_PROBE_INLINE int syscap_is_exit_call(long id, int compat)
{
	if (compat)
		return id == 1 || id == SYSCAP_COMPAT_NR_EXIT_GROUP;	/* exit is 1 in both */
	return id == SYSCAP_NR_EXIT || id == SYSCAP_NR_EXIT_GROUP;
}

/*
 * A slot as an index the eBPF verifier accepts. The compiler can prove from
 * syscap_nr_slot() that a slot is below SYSCAP_MAX_SYSCALLS and drops a plain
 * mask, but the verifier of older kernels (6.1 on arm64, where the number is
 * a 32-bit field it widens) does not follow that proof and refuses the load.
 * The empty asm hides the value from the compiler, so the mask stays.
 */
SYSCAP_PROBE_INLINE __u32 syscap_slot_index(__u32 slot)
{
#if defined(__bpf__)
	asm volatile("" : "+r"(slot));
#endif
	return slot & (SYSCAP_MAX_SYSCALLS - 1);
}

/* A slot admitted by the syscall-set filter. */
SYSCAP_PROBE_INLINE int syscap_syscall_wanted(const struct syscap_filter *f, __u32 slot)
{
	slot = syscap_slot_index(slot);
	return !(f->flags & SYSCAP_FILTER_SYSCALLS) ||
	       (f->syscalls[slot >> 6] & (1ULL << (slot & 63)));
}

/*
 * The first return of a new task or a new image, which made no call of its
 * own: on x86 a child passes sys_exit with 0 from fork, vfork, clone or
 * clone3 (its parent made the call and is counted once, there; on arm64 the
 * child does not pass sys_exit). On arm64 a successful execve reaches
 * sys_exit with the syscall number reset to -1 (NO_SYSCALL) and 0, while a
 * real syscall(-1) returns -ENOSYS. The numbers are the x86-64 and i386 ABI's.
 */
SYSCAP_PROBE_INLINE int syscap_is_new_task_return(long id, long ret, int compat)
{
	/* one branch for the common case; the numbers compared bitwise, not in a
	 * chain of branches where the target has set-on-compare (not BPF) */
	if (ret != 0)
		return 0;
#ifdef SYSCAP_X86
	if (compat)
		return (id == 2) | (id == 120) | (id == 190) | (id == 435);
	return (id == 56) | (id == 57) | (id == 58) | (id == 435);
#else
	(void)compat;
	return id == -1;
#endif
}

/*
 * The filter has a condition on the task (process set, comm): the probes
 * need the task's cached verdict. Without one every task but the consumer
 * passes, which count mode then checks with a plain compare instead of a
 * lookup of the task's state.
 */
SYSCAP_PROBE_INLINE int syscap_needs_verdict(const struct syscap_filter *f)
{
	return f->flags & (SYSCAP_FILTER_PIDS | SYSCAP_FILTER_COMM | SYSCAP_FILTER_COMM_EXCLUDE |
			   SYSCAP_FILTER_PIDSET);
}

/* The return value passes the failed-only filter. */
SYSCAP_PROBE_INLINE int syscap_ret_wanted(const struct syscap_filter *f, long ret)
{
	return !(f->flags & SYSCAP_FILTER_FAILED) || syscap_is_error(ret);
}

/*
 * The process part of the filter for one task: pidset_value is the task's
 * process-set entry (0, SYSCAP_PID_INCLUDE or SYSCAP_PID_EXCLUDE) and comm
 * its current comm.
 */
SYSCAP_PROBE_INLINE int syscap_task_passes(const struct syscap_filter *f, __u32 tgid,
					   __u32 pidset_value, const char *comm)
{
	__u32 flags = f->flags;
	__u32 n = f->ncomm;
	int match = 0;
	__u32 i;

	if (tgid == f->self_tgid || pidset_value == SYSCAP_PID_EXCLUDE)
		return 0;
	if ((flags & SYSCAP_FILTER_PIDS) && pidset_value != SYSCAP_PID_INCLUDE)
		return 0;
	if (!(flags & (SYSCAP_FILTER_COMM | SYSCAP_FILTER_COMM_EXCLUDE)))
		return 1;
	for (i = 0; i < SYSCAP_MAX_COMMS; i++) {
		if (i >= n)
			break;
		if (syscap_comm_eq(comm, f->comm[i])) {
			match = 1;
			break;
		}
	}
	if (flags & SYSCAP_FILTER_COMM)
		return match;
	return !match;
}

/*
 * Whether a cached verdict must be recomputed (nonzero: a difference of
 * generations, which a probe can or with its other tests). gen is the filter
 * generation as read ONCE by this probe run, before any other field of the
 * filter and before the process set: the recomputed verdict is then stored
 * under that same value (syscap_verdict_store). Reading the generation a
 * second time to tag the verdict would let a filter change between the two
 * reads cache the old verdict under the new generation, where it would stay
 * until the next change. Writers store every other field first and the
 * generation last.
 */
SYSCAP_PROBE_INLINE int syscap_verdict_stale(const struct syscap_task_state *t, __u32 gen)
{
	return t->gen ^ gen;
}

/*
 * At sys_exit with nothing pending: a syscall whose entry the probe skipped
 * although the task was traced under this same filter generation. Only the
 * kernel itself skips sys_enter then: seccomp (or a ptrace tracer) ends the
 * call before the tracepoint. A verdict from another generation says the
 * filter changed while the call ran; its entry may predate tracing.
 */
SYSCAP_PROBE_INLINE int syscap_entry_skipped(const struct syscap_task_state *t, __u32 gen)
{
	return t && t->traced && !t->pending && t->gen == gen;
}

/*
 * A traced task's entry: its syscall's slot, now pending, entered at ts. Only
 * a traced task enters one, so traced stays 1: the three are one store.
 */
SYSCAP_PROBE_INLINE void syscap_note_entry(struct syscap_task_state *t, __u32 slot, __u64 ts)
{
	__u32 w = (slot & 0xffff) | 1U << 16 | 1U << 24;	/* nr, traced, pending */

	*(syscap_word32 *)&t->nr = w;
	t->ts = ts;
}

SYSCAP_PROBE_INLINE void syscap_verdict_store(struct syscap_task_state *t, __u32 gen,
					      int traced)
{
	t->traced = !!traced;
	t->gen = gen;
}

/* The words the probes write whole (below): 8-aligned, in order. */
_Static_assert(__builtin_offsetof(struct syscap_rec, tgid) == 8 &&
	       __builtin_offsetof(struct syscap_rec, tid) == 12 &&
	       __builtin_offsetof(struct syscap_rec, kind) == 16 &&
	       __builtin_offsetof(struct syscap_rec, flags) == 17 &&
	       __builtin_offsetof(struct syscap_rec, cpu) == 18 &&
	       __builtin_offsetof(struct syscap_rec, seq) == 20 &&
	       __builtin_offsetof(struct syscap_rec, sys.nr) == 40 &&
	       __builtin_offsetof(struct syscap_rec, sys.reserved) == 42 &&
	       __builtin_offsetof(struct syscap_rec, sys.raw_nr) == 44 &&
	       sizeof(struct syscap_rec) == SYSCAP_REC_SIZE, "syscap_rec layout");

/*
 * The 8 bytes at word (8-aligned, in a record) as one store. Compilers do not
 * merge stores of computed fields narrower than a word on their own; the
 * probes write a record's small fields this way, 6 stores a record instead
 * of 10.
 */
SYSCAP_PROBE_INLINE void syscap_put_word(void *word, __u64 v)
{
	*(syscap_word64 *)word = v;
}

/*
 * Every field of a syscall record. The arguments, when the capture wants
 * them, the backend reads from the registers into the record's second part.
 */
SYSCAP_PROBE_INLINE void syscap_fill_syscall(struct syscap_rec *e, __u64 ts, __u64 dur,
					     long ret, __u32 tgid, __u32 tid, __u32 seq,
					     __u32 nr, __u32 raw_nr, __u8 flags, __u32 cpu)
{
	e->ts_ns = ts;
	syscap_put_word(&e->tgid, (__u64)tid << 32 | tgid);
	/* kind, flags, cpu, seq */
	syscap_put_word(&e->kind, (__u64)seq << 32 | (__u64)(__u16)cpu << 16 |
			(__u64)flags << 8 | SYSCAP_EV_SYSCALL);
	e->sys.ret = ret;
	e->sys.dur_ns = dur;
	/* nr, reserved (zero), raw_nr */
	syscap_put_word(&e->sys.nr, (__u64)(nr >= SYSCAP_NR_COMPAT ? raw_nr : 0) << 32 |
			(__u16)nr);
}

/*
 * Every field of a process record but proc.comm, which the backend copies
 * from the task. code: EXIT's exit code, 0 for the others.
 */
SYSCAP_PROBE_INLINE void syscap_fill_proc(struct syscap_rec *e, __u8 kind, __u64 ts,
					  long code, __u32 tgid, __u32 tid, __u32 parent_tgid,
					  __u32 parent_tid, __u8 flags, __u32 cpu)
{
	e->ts_ns = ts;
	e->tgid = tgid;
	e->tid = tid;
	e->kind = kind;
	e->flags = flags;
	e->cpu = cpu;
	e->code = (__s32)code;
	e->proc.parent_tgid = parent_tgid;
	e->proc.parent_tid = parent_tid;
}

/*
 * Count mode's table: one open-addressed table of counters per CPU, keyed by
 * process x syscall. Only that CPU's probe writes a slot (preemption off), so
 * a reader on another CPU copies it without a lock (syscap_count_read):
 * - a hit, the common case, only adds to calls and then to errors; the
 *   reader takes errors before calls, so it never sees more errors than
 *   calls;
 * - a new key is written inside an odd seq, so the reader never takes one
 *   key's counts for another's.
 * Forgetting a dead process's counter only sets dead; the owning probe reuses
 * such a slot. The backend supplies SYSCAP_BUMP(p), an increment of *p (32 or
 * 64 bits) ordered after the stores before it and before the stores after it,
 * and the reader SYSCAP_RMB(), a read barrier (user space includes this file
 * for the reader only).
 */
struct syscap_count_slot {
	__u64 key;		/* syscap_count_key(); 0: never used */
	__u64 calls;
	__u64 errors;
	__u32 seq;		/* odd while the probe writes a new key */
	__u32 dead;		/* set by the reader: the process is gone */
};

#define SYSCAP_COUNT_PROBES	64	/* slots looked at before the table is full */

/*
 * Each table's 2^bits slots are followed by the list of the slots its probe
 * has taken for a key, each once, in the order taken: readers visit those
 * (syscap_count_nused), not the whole table, whose size is set for the most
 * processes a machine runs. A slot is listed when first used; a forgotten one
 * that its probe reuses is listed already. The probe stores idx[n], then
 * bumps n with SYSCAP_BUMP.
 */
struct syscap_count_used {
	__u32 n;
	__u32 pad;
	__u32 idx[];
};

/* The bytes of one table of 2^bits slots with its list (a multiple of 8). */
#define SYSCAP_COUNT_TABLE_BYTES(bits)					\
	((sizeof(struct syscap_count_slot) << (bits)) + sizeof(struct syscap_count_used) + \
	 (sizeof(__u32) << (bits)))

/* The list behind table tbl of 2^bits slots (the probe writes it, readers only read). */
SYSCAP_PROBE_INLINE struct syscap_count_used *syscap_count_used(const struct syscap_count_slot *tbl,
								__u32 bits)
{
	return (struct syscap_count_used *)(void *)&tbl[1U << bits];
}

SYSCAP_PROBE_INLINE __u64 syscap_count_key(__u32 tgid, __u32 nr)
{
	return (__u64)tgid << 32 | 1U << 31 | nr;	/* never 0 */
}

#define SYSCAP_COUNT_MULT	0x61C8864680B583EBULL	/* the kernel's hash_64 */

/* The first slot to look at, of 2^bits (the kernel's hash_64). */
SYSCAP_PROBE_INLINE __u32 syscap_count_hash(__u64 key, __u32 bits)
{
	return (__u32)((key * SYSCAP_COUNT_MULT) >> (64 - bits));
}

#ifdef SYSCAP_BUMP
/*
 * The first slot syscap_count_add looks at for key, in a table of 2^bits
 * slots given as shift = 64 - bits: a probe that keeps the shift saves the
 * subtraction, and a 64-bit index its truncation.
 */
SYSCAP_PROBE_INLINE struct syscap_count_slot *syscap_count_first(struct syscap_count_slot *tbl,
								 __u32 shift, __u64 key)
{
	return &tbl[(key * SYSCAP_COUNT_MULT) >> shift];
}

/* Whether slot e holds key's live counter (a probe's fast path: one branch). */
SYSCAP_PROBE_INLINE int syscap_count_holds(const struct syscap_count_slot *e, __u64 key)
{
	return !((e->key ^ key) | *(const volatile __u32 *)&e->dead);
}

/*
 * One call counted in its key's slot e. The backend may supply SYSCAP_INC(p),
 * a single store of *p + 1 that may be one instruction (x86's incq); errors
 * are bumped after it, so a reader never sees more errors than calls.
 */
#ifndef SYSCAP_INC
#define SYSCAP_INC(p)	(*(volatile __u64 *)(p) = *(p) + 1)
#endif
SYSCAP_PROBE_INLINE void syscap_count_hit(struct syscap_count_slot *e, int err)
{
	SYSCAP_INC(&e->calls);
	if (err)
		SYSCAP_BUMP(&e->errors);
}

/*
 * One call of key, counted in this CPU's table tbl of 2^bits slots. Returns 0,
 * or -1 when no slot was free near the key's (the caller counts a drop).
 */
SYSCAP_PROBE_INLINE int syscap_count_add(struct syscap_count_slot *tbl, __u32 bits, __u64 key,
					 int err)
{
	__u32 h = syscap_count_hash(key, bits), mask = (1U << bits) - 1, i, ri = 0;
	struct syscap_count_slot *e, *hit = 0, *reuse = 0;
	struct syscap_count_used *used;
	int fresh;

	for (i = 0; i < SYSCAP_COUNT_PROBES; i++) {
		e = &tbl[(h + i) & mask];
		if (*(volatile __u32 *)&e->dead) {
			if (!reuse) {
				reuse = e;
				ri = (h + i) & mask;
			}
			continue;
		}
		if (e->key == key) {
			hit = e;
			break;
		}
		if (!e->key) {
			if (!reuse) {
				reuse = e;
				ri = (h + i) & mask;
			}
			break;
		}
	}
	if (hit) {
		syscap_count_hit(hit, err);
		return 0;
	}
	if (!reuse)
		return -1;
	fresh = !reuse->key;
	SYSCAP_BUMP(&reuse->seq);
	reuse->key = key;
	reuse->calls = 1;
	reuse->errors = err ? 1 : 0;
	*(volatile __u32 *)&reuse->dead = 0;
	SYSCAP_BUMP(&reuse->seq);
	if (fresh) {
		used = syscap_count_used(tbl, bits);
		used->idx[used->n & mask] = ri;
		SYSCAP_BUMP(&used->n);
	}
	return 0;
}
#endif /* SYSCAP_BUMP */

#ifdef SYSCAP_RMB
/*
 * A copy of one slot as its probe last left it: 1 with *key, *calls, *errors
 * set, 0 for a slot never used or forgotten.
 */
SYSCAP_PROBE_INLINE int syscap_count_read(const struct syscap_count_slot *e, __u64 *key,
					  __u64 *calls, __u64 *errors)
{
	const volatile struct syscap_count_slot *v = e;
	__u32 seq;

	do {
		seq = v->seq;
		SYSCAP_RMB();
		*key = v->key;
		*errors = v->errors;
		SYSCAP_RMB();
		*calls = v->calls;
		if (v->dead)
			*key = 0;
		SYSCAP_RMB();
	} while ((seq & 1) || seq != v->seq);
	return *key != 0;
}

/* How many slots the probe of table tbl (2^bits slots) has listed. */
SYSCAP_PROBE_INLINE __u32 syscap_count_nused(const struct syscap_count_slot *tbl, __u32 bits)
{
	const struct syscap_count_used *used = syscap_count_used(tbl, bits);
	__u32 n = *(const volatile __u32 *)&used->n;

	SYSCAP_RMB();
	return n < (1U << bits) ? n : (1U << bits);
}

/*
 * The i-th slot listed in table tbl, i < syscap_count_nused(): its index is
 * masked, as the list is in memory user space maps.
 */
SYSCAP_PROBE_INLINE const struct syscap_count_slot *
syscap_count_listed(const struct syscap_count_slot *tbl, __u32 bits, __u32 i)
{
	return &tbl[syscap_count_used(tbl, bits)->idx[i] & ((1U << bits) - 1)];
}

/*
 * Count mode keeps a CPU's per-syscall totals in its table's slots, not in a
 * second copy the probe would update on its every call: the totals are the
 * probe's own counters (the calls a full table could not take, and all but
 * calls), plus the live slots, plus what the slots forgotten since held.
 * Readers serialise syscap_count_retire and syscap_count_totals.
 */
struct syscap_count_retired {
	__u64 calls[SYSCAP_MAX_SYSCALLS];
	__u64 errors[SYSCAP_MAX_SYSCALLS];
};

/* The slot of key's live counter in table tbl of 2^bits slots, or 0. */
SYSCAP_PROBE_INLINE struct syscap_count_slot *syscap_count_find(struct syscap_count_slot *tbl,
								__u32 bits, __u64 key)
{
	__u32 h = syscap_count_hash(key, bits), mask = (1U << bits) - 1, i;

	for (i = 0; i < SYSCAP_COUNT_PROBES; i++) {
		struct syscap_count_slot *e = &tbl[(h + i) & mask];
		__u64 k = *(const volatile __u64 *)&e->key;

		if (!k)
			break;
		if (k == key && !*(const volatile __u32 *)&e->dead)
			return e;
	}
	return 0;
}

/*
 * Adds to r what slot e holds, the live counter of a process that is gone
 * (so it no longer moves), but the consumer's (self_tgid). The reader then
 * sets e->dead with a store ordered after these reads: from then on the
 * probe may reuse the slot.
 */
SYSCAP_PROBE_INLINE void syscap_count_retire(struct syscap_count_retired *r,
					     const struct syscap_count_slot *e, __u32 self_tgid)
{
	__u64 key, calls, errors;

	if (!syscap_count_read(e, &key, &calls, &errors) || key >> 32 == self_tgid)
		return;
	r->calls[key & (SYSCAP_MAX_SYSCALLS - 1)] += calls;
	r->errors[key & (SYSCAP_MAX_SYSCALLS - 1)] += errors;
}

/*
 * A CPU's totals: st holds its probe's own counters; adds what retired r
 * holds and the live slots of its table tbl (2^bits slots), but the
 * consumer's (self_tgid), which the readers leave out.
 */
SYSCAP_PROBE_INLINE void syscap_count_totals(const struct syscap_count_slot *tbl, __u32 bits,
					     const struct syscap_count_retired *r,
					     __u32 self_tgid, struct syscap_cpu_stats *st)
{
	__u32 n = syscap_count_nused(tbl, bits), i, nr;
	__u64 key, calls, errors;

	for (i = 0; i < SYSCAP_MAX_SYSCALLS; i++) {
		st->calls[i] += r->calls[i];
		st->errors[i] += r->errors[i];
		st->events += r->calls[i];
	}
	for (i = 0; i < n; i++) {
		if (!syscap_count_read(syscap_count_listed(tbl, bits, i), &key, &calls, &errors) ||
		    key >> 32 == self_tgid)
			continue;
		nr = key & (SYSCAP_MAX_SYSCALLS - 1);
		st->calls[nr] += calls;
		st->errors[nr] += errors;
		st->events += calls;
	}
}
#endif /* SYSCAP_RMB */

#endif /* SYSCAP_PROBE_H */
