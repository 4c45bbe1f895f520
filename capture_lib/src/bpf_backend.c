// SPDX-License-Identifier: BSD-2-Clause
/*
 * eBPF backend: loads syscap.bpf.c through its libbpf skeleton and maps its
 * per-CPU rings of slots (syscap_slots.h) for the shared drain loop. Every
 * way this can fail on a user's machine ends in one line saying what is
 * missing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/capability.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "internal.h"
#include "syscap_backend.h"
#include "syscap_kmod.h"
#include "syscap_slots.h"
#define SYSCAP_PROBE_INLINE static inline
#define SYSCAP_RMB()	__atomic_thread_fence(__ATOMIC_ACQUIRE)
#include "syscap_probe.h"
#include "syscap.skel.h"

struct bpf_priv {
	struct syscap_bpf *skel;
	size_t page;
	struct syscap_ring_pos *pos;	/* ring_pos, mapped read-write */
	size_t pos_len;
	void *slots;			/* ring_slots, mapped read-only */
	size_t slots_len;
	volatile uint64_t *bell_cons;	/* the doorbell ring's positions */
	const volatile uint64_t *bell_prod;
	int attached;
	int mode;			/* SYSCAP_MODE_* chosen */
	int own_pids;			/* process-set entries set_pid added */
	uint32_t self_tgid;		/* the consumer, as the probes number it */
	struct bpf_link *links[6];	/* what bpf_start() attached */
	int nlinks;
	struct bpf_link *sampler;	/* sampled mode: sys_enter_sample while
					 * a sampling window is open */
	void *counts;			/* count_tables, mapped read-write */
	size_t counts_len;
	uint32_t count_bits;		/* each CPU's table has 2^count_bits slots */
	struct syscap_kmod_count *seen;	/* read_counts' copies */
	size_t nseen;
	/* what each CPU's forgotten slots held, [ncpu] from the first forget;
	 * the lock keeps forget and read_stats apart (syscap_count_totals) */
	struct syscap_count_retired *retired;
	pthread_mutex_t count_lock;
};

/* Count tables: at most this many bytes for all CPUs, at most 2^16 slots a CPU. */
#define COUNT_BUDGET	(64u << 20)
#define COUNT_MAX_BITS	16

static char libbpf_last[512];

/* SYSCAP_BPF_LOG=1 in the environment: every message of libbpf (the
 * verifier's log of a refused program among them) on stderr as well, for a
 * box where the backend fails and there is nothing else to ask. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	const char *env = getenv("SYSCAP_BPF_LOG");
	char line[512];

	if (env && env[0] == '1') {
		va_list copy;

		va_copy(copy, ap);
		vfprintf(stderr, fmt, copy);
		va_end(copy);
	}
	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	if (line[0])
		memcpy(libbpf_last, line, sizeof(line));
	return 0;
}

static int has_cap(const struct __user_cap_data_struct *d, int cap)
{
	return !!(d[cap / 32].effective & (1U << (cap % 32)));
}

/* "" when the process may load tracing programs, else what it lacks. */
static const char *missing_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	if (syscall(SYS_capget, &h, d))
		return "";
	if (has_cap(d, CAP_SYS_ADMIN))
		return "";
	if (!has_cap(d, 39 /* CAP_BPF */) && !has_cap(d, 38 /* CAP_PERFMON */))
		return "CAP_BPF and CAP_PERFMON";
	if (!has_cap(d, 39))
		return "CAP_BPF";
	if (!has_cap(d, 38))
		return "CAP_PERFMON";
	return "";
}

static int kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return 1;
	return ma > major || (ma == major && mi >= minor);
}

/*
 * With an empty process set and no per-task condition the probes skip the
 * task's cached verdict (syscap_needs_verdict). Entries only appear through
 * set_pid and by inheritance from an entry, so once the set is seen empty
 * it stays empty until the next set_pid.
 */
static int pidset_empty(struct bpf_priv *p)
{
	uint32_t key;

	return bpf_map_get_next_key(bpf_map__fd(p->skel->maps.pidset), NULL, &key) != 0;
}

static int bpf_set_filter(struct syscap_backend *b, const struct syscap_filter *f)
{
	struct bpf_priv *p = b->priv;
	struct syscap_filter *dst = &p->skel->bss->filter;
	uint32_t gen = f->generation;

	/* Everything but the generation first: the probes recompute their
	 * cached verdicts only once they see the new generation. */
	memcpy(dst->syscalls, f->syscalls, sizeof(dst->syscalls));
	memcpy(dst->comm, f->comm, sizeof(dst->comm));
	dst->ncomm = f->ncomm;
	dst->self_tgid = p->self_tgid;
	__atomic_store_n(&dst->flags, f->flags | (pidset_empty(p) ? 0 : SYSCAP_FILTER_PIDSET),
			 __ATOMIC_RELEASE);
	__atomic_store_n(&dst->generation, gen, __ATOMIC_RELEASE);
	return 0;
}

static int bpf_set_pid(struct syscap_backend *b, uint32_t tgid, int value)
{
	struct bpf_priv *p = b->priv;
	int fd = bpf_map__fd(p->skel->maps.pidset);
	uint8_t v = (uint8_t)value, old;
	uint32_t key;

	if (value) {
		if (bpf_map_lookup_elem(fd, &tgid, &old))
			p->own_pids++;
		return bpf_map_update_elem(fd, &tgid, &v, BPF_ANY) ? -errno : 0;
	}
	if (bpf_map_delete_elem(fd, &tgid)) {
		if (errno != ENOENT)
			return -errno;
	} else if (p->own_pids > 0) {
		p->own_pids--;
	}
	/* The last entry of the caller's gone: what the kernel added for their
	 * children goes with it. */
	while (!p->own_pids && !bpf_map_get_next_key(fd, NULL, &key))
		if (bpf_map_delete_elem(fd, &key) && errno != ENOENT)
			return -errno;
	return 0;
}

/* CPU cpu's count table (its slots, then their list), in the mapping. */
static struct syscap_count_slot *count_table(const struct bpf_priv *p, int cpu)
{
	return (struct syscap_count_slot *)(void *)((char *)p->counts +
						    (size_t)cpu * SYSCAP_COUNT_TABLE_BYTES(p->count_bits));
}

/* A CPU's totals before anything was forgotten. */
static const struct syscap_count_retired no_retired;

/* A CPU's totals: its probes' counters and its count table's (syscap_count_totals). */
static int bpf_read_stats(struct syscap_backend *b, struct syscap_cpu_stats *out, int ncpu)
{
	struct bpf_priv *p = b->priv;
	uint32_t zero = 0;

	if (ncpu < b->ncpu)
		return -EINVAL;
	if (bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.stats), &zero, out))
		return -errno;
	/* in every mode: the tables keep what count mode counted before a switch */
	pthread_mutex_lock(&p->count_lock);
	for (int cpu = 0; cpu < b->ncpu; cpu++)
		syscap_count_totals(count_table(p, cpu), p->count_bits,
				    p->retired ? &p->retired[cpu] : &no_retired, p->self_tgid,
				    &out[cpu]);
	pthread_mutex_unlock(&p->count_lock);
	return 0;
}

static uint64_t bpf_missed(struct syscap_backend *b)
{
	struct bpf_priv *p = b->priv;
	struct bpf_program *prog;
	uint64_t total = 0;

	bpf_object__for_each_program(prog, p->skel->obj) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0)
			total += info.recursion_misses;
	}
	return total;
}

static int bpf_set_args(struct syscap_backend *b, int on)
{
	struct bpf_priv *p = b->priv;

	if (p->attached)
		return -EBUSY;
	p->skel->bss->with_args = !!on;
	b->record_bytes = on ? 2 * SYSCAP_SLOT_SIZE : SYSCAP_SLOT_SIZE;
	return 0;
}

static int bpf_set_mode(struct syscap_backend *b, int mode)
{
	struct bpf_priv *p = b->priv;

	if (p->attached)
		return -EBUSY;
	if (mode != SYSCAP_MODE_RECORDS && mode != SYSCAP_MODE_COUNTS &&
	    mode != SYSCAP_MODE_SAMPLED)
		return -EINVAL;
	/* exit and exit_group are counted from the dying task's registers */
	if (mode != SYSCAP_MODE_RECORDS && !kernel_at_least(5, 15))
		return -ENOTSUP;
	p->mode = mode;
	return 0;
}

static int bpf_set_sample_period(struct syscap_backend *b, uint32_t period)
{
	struct bpf_priv *p = b->priv;

	if (!period || (period & (period - 1)))
		return -EINVAL;
	/* a plain store into the mapped .bss: the probe reads it per call */
	__atomic_store_n(&p->skel->bss->sample_mask, period - 1, __ATOMIC_RELAXED);
	return 0;
}

/* Every CPU's listed slots, read in place; each slot copied consistently. */
static int bpf_read_counts(struct syscap_backend *b, syscap_count_fn fn, void *ctx)
{
	struct bpf_priv *p = b->priv;
	size_t n = 0;

	for (int cpu = 0; cpu < b->ncpu; cpu++) {
		const struct syscap_count_slot *tbl = count_table(p, cpu);
		uint32_t nused = syscap_count_nused(tbl, p->count_bits);

		for (uint32_t i = 0; i < nused; i++) {
			const struct syscap_count_slot *e = syscap_count_listed(tbl, p->count_bits, i);
			struct syscap_kmod_count c;
			__u64 key;

			if (!syscap_count_read(e, &key, &c.calls, &c.errors))
				continue;
			if (n == p->nseen) {
				size_t more = p->nseen ? 2 * p->nseen : 1024;
				void *grown = realloc(p->seen, more * sizeof(*p->seen));

				if (!grown)
					return -ENOMEM;
				p->seen = grown;
				p->nseen = more;
			}
			c.tgid = (uint32_t)(key >> 32);
			c.nr = (uint32_t)(key & (SYSCAP_MAX_SYSCALLS - 1));
			p->seen[n++] = c;
		}
	}
	syscap_count_sum(p->seen, n, fn, ctx);
	return 0;
}

/* Forget a process's counter on every CPU: the probes reuse the slots. */
static int bpf_forget_count(struct syscap_backend *b, const struct syscap_count_key *k)
{
	struct bpf_priv *p = b->priv;
	uint64_t key = syscap_count_key(k->tgid, k->nr);

	if (k->nr >= SYSCAP_MAX_SYSCALLS)
		return -EINVAL;
	pthread_mutex_lock(&p->count_lock);
	if (!p->retired)
		p->retired = calloc((size_t)b->ncpu, sizeof(*p->retired));
	if (!p->retired) {
		pthread_mutex_unlock(&p->count_lock);
		return -ENOMEM;
	}
	for (int cpu = 0; cpu < b->ncpu; cpu++) {
		struct syscap_count_slot *e = syscap_count_find(count_table(p, cpu), p->count_bits,
								key);

		if (e) {
			syscap_count_retire(&p->retired[cpu], e, p->self_tgid);
			__atomic_store_n(&e->dead, 1, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&p->count_lock);
	return 0;
}

/*
 * Sampled mode: open or close a sampling window while attached. A closed
 * window has no sys_enter program at all, so calls outside the windows cost
 * what count mode costs. Samples taken in a window stay pending until their
 * exits, which sys_exit_count always sees; the gate and start_ns are left
 * alone here, so such a sample is still paired after the window closed.
 */
static int bpf_sample_window(struct syscap_backend *b, int open)
{
	struct bpf_priv *p = b->priv;

	if (!p->attached || p->mode != SYSCAP_MODE_SAMPLED)
		return -EINVAL;
	if (open && !p->sampler) {
		p->sampler = bpf_program__attach(p->skel->progs.sys_enter_sample);
		if (!p->sampler)
			return -errno;
	} else if (!open && p->sampler) {
		bpf_link__destroy(p->sampler);
		p->sampler = NULL;
	}
	return 0;
}

static int bpf_stop(struct syscap_backend *b)
{
	struct bpf_priv *p = b->priv;

	if (p->sampler) {
		bpf_link__destroy(p->sampler);
		p->sampler = NULL;
	}
	while (p->nlinks > 0)
		bpf_link__destroy(p->links[--p->nlinks]);
	p->attached = 0;
	return 0;
}

static int bpf_start(struct syscap_backend *b)
{
	struct bpf_priv *p = b->priv;
	struct syscap_bpf *k = p->skel;
	int counted = p->mode != SYSCAP_MODE_RECORDS;	/* in the kernel: counts, sampled */
	/* Records mode's sched_switch first: it empties the per-CPU state
	 * slots the syscall probes fill (and stop() detaches it last). Then the
	 * process events: a task forked meanwhile is not missed. Count mode
	 * needs no sys_enter; sampled mode's is attached last, as its first
	 * sampling window (bpf_sample_window). */
	struct bpf_program *records[] = {
		k->progs.on_switch, k->progs.on_fork, k->progs.on_exec, k->progs.on_exit,
		k->progs.sys_exit, k->progs.sys_enter,
	};
	struct bpf_program *counts[] = {
		k->progs.on_fork, k->progs.on_exec, k->progs.on_exit, k->progs.sys_exit_count,
	};
	struct bpf_program **progs = counted ? counts : records;
	size_t nprogs = counted ? sizeof(counts) / sizeof(counts[0]) :
			sizeof(records) / sizeof(records[0]);

	if (p->attached)
		return 0;
	k->bss->counted = (__u32)counted;
	/* samples left by an earlier run are older than this and ignored */
	memset(k->bss->sample_gate, 0, sizeof(k->bss->sample_gate));
	k->bss->start_ns = syscap_mono_ns();
	if (!counted) {
		/* no CPU's state slot keeps a task from an earlier run */
		size_t one = (bpf_map__value_size(k->maps.current_state) + 7) & ~(size_t)7;
		size_t len = (size_t)b->ncpu * one;
		void *zeros = calloc(1, len);
		uint32_t zero = 0;
		int err;

		if (!zeros)
			return -ENOMEM;
		err = bpf_map_update_elem(bpf_map__fd(k->maps.current_state), &zero, zeros, BPF_ANY);
		free(zeros);
		if (err)
			return -errno;
	}
	for (size_t i = 0; i < nprogs; i++) {
		struct bpf_link *l = bpf_program__attach(progs[i]);

		if (!l) {
			int err = -errno;

			bpf_stop(b);
			return err;
		}
		p->links[p->nlinks++] = l;
	}
	p->attached = 1;
	if (p->mode == SYSCAP_MODE_SAMPLED) {
		int err = bpf_sample_window(b, 1);

		if (err) {
			bpf_stop(b);
			return err;
		}
	}
	return 0;
}

static void bpf_close(struct syscap_backend *b)
{
	struct bpf_priv *p;

	if (!b)
		return;
	p = b->priv;
	if (p) {
		bpf_stop(b);
		if (p->pos)
			munmap(p->pos, p->pos_len);
		if (p->slots)
			munmap(p->slots, p->slots_len);
		if (p->bell_cons)
			munmap((void *)p->bell_cons, p->page);
		if (p->bell_prod)
			munmap((void *)p->bell_prod, p->page);
		if (p->counts)
			munmap(p->counts, p->counts_len);
		syscap_bpf__destroy(p->skel);	/* closes wait_fd, the doorbell's */
		free(p->seen);
		free(p->retired);
		pthread_mutex_destroy(&p->count_lock);
		free(p);
	}
	free(b->rings);
	free(b);
}

/* The consumer woke: empty the doorbell so that the probes may ring again. */
static void bpf_woken(struct syscap_backend *b)
{
	struct bpf_priv *p = b->priv;

	__atomic_store_n(p->bell_cons, __atomic_load_n(p->bell_prod, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
}

static const struct syscap_backend_ops bpf_ops = {
	.set_filter = bpf_set_filter,
	.set_pid = bpf_set_pid,
	.read_stats = bpf_read_stats,
	.missed = bpf_missed,
	.set_mode = bpf_set_mode,
	.set_sample_period = bpf_set_sample_period,
	.sample_window = bpf_sample_window,
	.set_args = bpf_set_args,
	.read_counts = bpf_read_counts,
	.forget_count = bpf_forget_count,
	.start = bpf_start,
	.stop = bpf_stop,
	.woken = bpf_woken,
	.close = bpf_close,
};

int syscap_bpf_open(struct syscap_backend **out, uint64_t ring_size, char *err, size_t errlen)
{
	struct syscap_backend *b = NULL;
	struct bpf_priv *p = NULL;
	const char *caps = missing_caps();
	long page = sysconf(_SC_PAGESIZE);
	uint32_t shift = 0;
	int ncpu, ret, fd;
	void *m;

	*out = NULL;
	if (caps[0]) {
		snprintf(err, errlen, "the eBPF backend needs %s (or root): run syscap as root "
			 "or give it those capabilities", caps);
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		snprintf(err, errlen, "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing; "
			 "it needs CONFIG_DEBUG_INFO_BTF): use the module backend, --backend kmod");
		return -ENOTSUP;
	}
	if (!kernel_at_least(5, 11)) {
		snprintf(err, errlen, "the eBPF backend needs kernel 5.11 or newer (BPF ring "
			 "buffers and task storage): use the module backend, --backend kmod");
		return -ENOTSUP;
	}
	if (ring_size < (uint64_t)page || (ring_size & (ring_size - 1))) {
		snprintf(err, errlen, "ring size %llu is not a power of two of at least %ld bytes",
			 (unsigned long long)ring_size, page);
		return -EINVAL;
	}
	libbpf_set_print(libbpf_log);
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0 || ncpu > SYSCAP_MAX_CPUS) {
		snprintf(err, errlen, "cannot use %d possible CPUs (syscap supports up to %d)", ncpu,
			 SYSCAP_MAX_CPUS);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	p = calloc(1, sizeof(*p));
	if (!b || !p)
		goto nomem;
	pthread_mutex_init(&p->count_lock, NULL);
	b->wait_fd = -1;
	b->name = "bpf";
	syscap_clock_set(&b->clock, "monotonic", 0, 0, 0);
	b->ops = &bpf_ops;
	b->priv = p;
	b->ncpu = b->nrings = ncpu;
	p->page = (size_t)page;
	b->rings = calloc((size_t)ncpu, sizeof(*b->rings));
	if (!b->rings)
		goto nomem;
	while (((uint64_t)SYSCAP_SLOT_SIZE << shift) < ring_size)
		shift++;
	if (((uint64_t)ncpu << shift) > UINT32_MAX) {
		snprintf(err, errlen, "ring size %llu bytes per CPU is too large for %d CPUs: "
			 "give a smaller --buffer-size", (unsigned long long)ring_size, ncpu);
		free(b->rings);
		free(b);
		free(p);
		return -EINVAL;
	}

	p->skel = syscap_bpf__open();
	if (!p->skel) {
		snprintf(err, errlen, "cannot open the BPF program: %s", libbpf_last);
		goto fail;
	}
	p->skel->rodata->slots_shift = shift;
	p->count_bits = COUNT_MAX_BITS;
	while (p->count_bits > 10 &&
	       (size_t)ncpu * SYSCAP_COUNT_TABLE_BYTES(p->count_bits) > COUNT_BUDGET)
		p->count_bits--;
	p->skel->rodata->count_bits = p->count_bits;
	if (bpf_map__set_max_entries(p->skel->maps.ring_slots, (uint32_t)ncpu << shift) ||
	    bpf_map__set_max_entries(p->skel->maps.ring_pos, (uint32_t)ncpu) ||
	    bpf_map__set_value_size(p->skel->maps.count_tables,
				    (uint32_t)SYSCAP_COUNT_TABLE_BYTES(p->count_bits)) ||
	    bpf_map__set_max_entries(p->skel->maps.count_tables, (uint32_t)ncpu))
		goto sysfail;
	ret = syscap_bpf__load(p->skel);
	if (ret) {
		snprintf(err, errlen, "the kernel refused the BPF program (%s): %s", strerror(-ret),
			 libbpf_last[0] ? libbpf_last : "see 'dmesg'");
		goto fail;
	}
	p->skel->bss->wakeup_watermark = ring_size / 2;
	/* Who we are in the probes' pid numbering; before 5.10 (no test run
	 * for raw_tp programs) getpid(), right outside pid namespaces. */
	p->self_tgid = (uint32_t)getpid();
	if (!bpf_prog_test_run_opts(bpf_program__fd(p->skel->progs.whoami), NULL) &&
	    p->skel->bss->whoami_tgid)
		p->self_tgid = p->skel->bss->whoami_tgid;

	/* Positions read-write (the consumer's half is ours), slots read-only:
	 * records are read where the probes wrote them. */
	p->pos_len = ((size_t)ncpu * sizeof(struct syscap_ring_pos) + (size_t)page - 1) &
		     ~((size_t)page - 1);
	m = mmap(NULL, p->pos_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(p->skel->maps.ring_pos), 0);
	if (m == MAP_FAILED)
		goto sysfail;
	p->pos = m;
	p->slots_len = (size_t)ncpu * (size_t)ring_size;
	m = mmap(NULL, p->slots_len, PROT_READ, MAP_SHARED, bpf_map__fd(p->skel->maps.ring_slots), 0);
	if (m == MAP_FAILED)
		goto sysfail;
	p->slots = m;
	p->counts_len = (size_t)ncpu * SYSCAP_COUNT_TABLE_BYTES(p->count_bits);
	m = mmap(NULL, p->counts_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 bpf_map__fd(p->skel->maps.count_tables), 0);
	if (m == MAP_FAILED)
		goto sysfail;
	p->counts = m;
	for (int cpu = 0; cpu < ncpu; cpu++) {
		struct syscap_ring *r = &b->rings[cpu];

		r->consumer_pos = (volatile uint64_t *)&p->pos[cpu].consumer;
		r->producer_pos = (const volatile uint64_t *)&p->pos[cpu].producer;
		r->data = (const uint8_t *)p->slots + (size_t)cpu * (size_t)ring_size;
		r->size = ring_size;
		r->cpu = cpu;
	}
	b->record_bytes = SYSCAP_SLOT_SIZE;
	/* The doorbell: readable while it holds a ring, emptied by bpf_woken. */
	fd = bpf_map__fd(p->skel->maps.doorbell);
	m = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		goto sysfail;
	p->bell_cons = m;
	m = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, page);
	if (m == MAP_FAILED)
		goto sysfail;
	p->bell_prod = m;
	b->wait_fd = fd;
	*out = b;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory setting up the eBPF backend");
	bpf_close(b);
	return -ENOMEM;
sysfail:
	ret = -errno;
	snprintf(err, errlen, "setting up the BPF rings failed: %s (ring size %llu bytes per CPU; "
		 "a smaller --buffer-size may help)", strerror(errno), (unsigned long long)ring_size);
	bpf_close(b);
	return ret;
fail:
	bpf_close(b);
	return -EINVAL;
}
