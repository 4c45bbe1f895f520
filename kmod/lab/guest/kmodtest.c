// SPDX-License-Identifier: BSD-2-Clause
/*
 * Guest-side tests of the syscap module, run by the lab's /init inside a
 * QEMU guest, one test per process: `kmodtest NAME [ARG]`. Each prints one
 * line "SYSCAP-TEST NAME PASS|FAIL detail" on stdout (the serial console).
 *
 * Workloads run in forked children that wait on a pipe until capture has
 * started; they use syscall(2) directly so every counted call is one we made.
 * Expected numbers are fixed by the workload, never read back from the module.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "syscap.h"
#include "syscap_backend.h"
#include "syscap_kmod.h"

#define MAGIC		0x5ca9c0deUL
#define MAXCPU		SYSCAP_MAX_CPUS

static const char *test_name = "?";
static char detail[1024];

static int failf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return 1;
}

#define CHECK(cond, ...) do { if (!(cond)) return failf(__VA_ARGS__); } while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ backend */

static struct syscap_backend *open_backend(uint64_t ring_size)
{
	struct syscap_backend *b;
	char err[256];
	int ret;

	ret = syscap_kmod_open(&b, ring_size, err, sizeof(err));
	if (ret) {
		failf("syscap_kmod_open: %s (%d)", err, ret);
		return NULL;
	}
	return b;
}

/* The same with syscall records carrying their arguments, which the tests
 * that check them (values the workloads pass) need. */
static struct syscap_backend *open_backend_args(uint64_t ring_size)
{
	struct syscap_backend *b = open_backend(ring_size);
	int ret;

	if (!b)
		return NULL;
	ret = b->ops->set_args(b, 1);
	if (ret) {
		failf("set_args(1): %s", strerror(-ret));
		b->ops->close(b);
		return NULL;
	}
	return b;
}

struct totals {
	uint64_t events, drops, proc_events, proc_drops;
	uint64_t calls[SYSCAP_MAX_SYSCALLS], errors[SYSCAP_MAX_SYSCALLS];
	uint64_t total_ns[SYSCAP_MAX_SYSCALLS];
	uint64_t cpu_events[MAXCPU], cpu_drops[MAXCPU];
};

static int read_totals(struct syscap_backend *b, struct totals *t)
{
	struct syscap_cpu_stats *st = calloc(b->ncpu, sizeof(*st));
	int cpu, i, ret;

	memset(t, 0, sizeof(*t));
	ret = b->ops->read_stats(b, st, b->ncpu);
	if (ret) {
		free(st);
		return failf("read_stats: %s", strerror(-ret));
	}
	for (cpu = 0; cpu < b->ncpu; cpu++) {
		t->events += st[cpu].events;
		t->drops += st[cpu].drops;
		t->proc_events += st[cpu].proc_events;
		t->proc_drops += st[cpu].proc_drops;
		t->cpu_events[cpu] = st[cpu].events;
		t->cpu_drops[cpu] = st[cpu].drops;
		for (i = 0; i < SYSCAP_MAX_SYSCALLS; i++) {
			t->calls[i] += st[cpu].calls[i];
			t->errors[i] += st[cpu].errors[i];
			t->total_ns[i] += st[cpu].total_ns[i];
		}
	}
	free(st);
	return 0;
}

static uint64_t sum_calls(const struct totals *t)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < SYSCAP_MAX_SYSCALLS; i++)
		n += t->calls[i];
	return n;
}

/* Records read by drain, copied out with the CPU whose ring held them. */
struct rec {
	struct syscap_event ev;		/* decoded */
	struct syscap_rec raw;		/* as the ring carried it */
	int cpu;
};

/* capture_lib's decoder (src/record.c, linked in) */
void syscap_rec_decode(const struct syscap_rec *in, const uint64_t *args,
		       struct syscap_event *ev);

struct collector {
	struct rec *recs;
	size_t n, cap;
	int cpu;
	/* per-CPU order check of syscall records */
	int64_t last_seq[MAXCPU];
	uint64_t seq_errors;
	uint64_t torn;
	uint64_t incomplete;	/* records with a field the probe left unset */
	char first_incomplete[160];
};

/*
 * Every field of a record is written by the probe: the CPU whose ring carried
 * it, zero in the reserved fields and in what a process record does not use.
 * After a ring wraps, a field left unset carries bytes of older records.
 */
static const char *incomplete_field(const struct rec *r)
{
	const struct syscap_rec *e = &r->raw;

	if (e->cpu != r->cpu)
		return "cpu";
	if (e->kind == SYSCAP_EV_SYSCALL) {
		if (e->sys.reserved)
			return "reserved";
		if (e->sys.raw_nr && e->sys.nr < SYSCAP_NR_COMPAT)
			return "raw_nr of a native syscall";
		return e->flags & ~(SYSCAP_F_NORETURN | SYSCAP_F_NOENTRY | SYSCAP_F_COMPAT |
				    SYSCAP_F_SAMPLED) ? "flags" : NULL;
	}
	if (e->kind != SYSCAP_EV_EXIT && e->code)
		return "code of a fork or exec record";
	return NULL;
}

static void collect(void *ctx, const struct syscap_rec *raw, const uint64_t *args)
{
	struct collector *c = ctx;
	struct rec *r;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 4096;
		c->recs = realloc(c->recs, c->cap * sizeof(*c->recs));
		if (!c->recs)
			abort();
	}
	r = &c->recs[c->n++];
	memcpy(&r->raw, raw, sizeof(*raw));
	syscap_rec_decode(raw, args, &r->ev);
	r->cpu = c->cpu;
	{
		const char *bad = incomplete_field(r);

		if (bad && !c->incomplete++)
			snprintf(c->first_incomplete, sizeof(c->first_incomplete),
				 "kind %u on cpu %d: %s (cpu field %u, raw_nr %u)",
				 r->ev.kind, r->cpu, bad, r->ev.cpu, r->ev.raw_nr);
	}
	if (r->ev.kind == SYSCAP_EV_SYSCALL) {
		if ((int64_t)r->ev.seq <= c->last_seq[c->cpu])
			c->seq_errors++;
		c->last_seq[c->cpu] = r->ev.seq;
	} else if (r->ev.kind < SYSCAP_EV_SYSCALL || r->ev.kind > SYSCAP_EV_EXIT) {
		c->torn++;
	}
}

static void collector_init(struct collector *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < MAXCPU; i++)
		c->last_seq[i] = -1;
}

static long drain(struct syscap_backend *b, struct collector *c)
{
	long n = 0;

	for (int i = 0; i < b->nrings; i++) {
		c->cpu = b->rings[i].cpu;
		n += syscap_ring_drain(&b->rings[i], collect, c, 1L << 30);
	}
	return n;
}

static int set_filter(struct syscap_backend *b, uint32_t flags, const int *nrs, int nnr,
		      const char *const *comms, int ncomm)
{
	struct syscap_filter f;
	int ret;

	memset(&f, 0, sizeof(f));
	f.flags = flags;
	f.self_tgid = (uint32_t)getpid();
	for (int i = 0; i < nnr; i++)
		f.syscalls[nrs[i] / 64] |= 1ULL << (nrs[i] % 64);
	for (int i = 0; i < ncomm; i++)
		strncpy(f.comm[i], comms[i], SYSCAP_COMM_LEN - 1);
	f.ncomm = (uint32_t)ncomm;
	ret = b->ops->set_filter(b, &f);
	return ret ? failf("set_filter: %s", strerror(-ret)) : 0;
}

/* ------------------------------------------------------------ workloads */

struct child {
	pid_t pid;
	int go;		/* write end: one byte starts the workload */
};

/*
 * Fork a child that names itself, says it is ready, waits for the go byte,
 * then runs fn(arg) and exits. spawn() returns once the child is ready, so
 * its name is set before capture starts (verdicts are cached per task).
 */
static struct child spawn(int (*fn)(long), long arg, const char *comm)
{
	struct child c = { -1, -1 };
	int p[2], r[2];
	char x;

	if (pipe(p) || pipe(r))
		return c;
	c.pid = fork();
	if (c.pid == 0) {
		close(p[1]);
		close(r[0]);
		if (comm)
			prctl(PR_SET_NAME, comm);
		if (write(r[1], "r", 1) != 1 || read(p[0], &x, 1) != 1)
			_exit(100);
		_exit(fn(arg));
	}
	close(p[0]);
	close(r[1]);
	if (read(r[0], &x, 1) != 1)
		c.pid = -1;
	close(r[0]);
	c.go = p[1];
	return c;
}

static void go(struct child *c)
{
	if (write(c->go, "g", 1) != 1)
		abort();
	close(c->go);
}

static int reap(struct child *c)
{
	int st;

	if (waitpid(c->pid, &st, 0) != c->pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void getppids(long n, long tag)
{
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid, MAGIC, tag, i, ~i);
}

static void *thread_getppids(void *arg)
{
	long *a = arg;

	getppids(a[0], a[1]);
	return NULL;
}

/* exact workload: N getppid, M openat of which K fail, a fork, a thread */
#define W_N	1000
#define W_M	50
#define W_K	20
#define W_GRAND	100
#define W_THREAD	200

static int exact_workload(long unused)
{
	long targ[2] = { W_THREAD, 2 };
	pthread_t th;
	pid_t pid;
	int st;

	(void)unused;
	getppids(W_N, 0);
	for (int i = 0; i < W_M; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, i < W_K ? "/nonexistent" : "/",
				  O_RDONLY | O_DIRECTORY);

		if (fd >= 0)
			syscall(SYS_close, fd);
	}
	pid = fork();
	if (pid == 0) {
		getppids(W_GRAND, 1);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 2;
	if (pthread_create(&th, NULL, thread_getppids, targ) || pthread_join(th, NULL))
		return 3;
	return 0;
}

static int getppid_workload(long n)
{
	getppids(n, 0);
	return 0;
}

/* a chain: this process, a child and a grandchild each make n getppid */
static int tree_workload(long n)
{
	pid_t pid;
	int st;

	getppids(n, 0);
	pid = fork();
	if (pid == 0) {
		getppids(n, 1);
		pid = fork();
		if (pid == 0) {
			getppids(n, 2);
			_exit(0);
		}
		_exit(pid > 0 && waitpid(pid, &st, 0) == pid ? 0 : 1);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && st == 0 ? 0 : 1;
}

static int mixed_workload(long n)
{
	for (long i = 0; i < n; i++) {
		syscall(SYS_getppid, MAGIC, 0, i, ~i);
		syscall(SYS_getpid);
		syscall(SYS_openat, AT_FDCWD, "/nonexistent", O_RDONLY);
	}
	return 0;
}

/* A flood thread: tag 1 on the first CPU, tag 2 on the second (the guests
 * have two), so both CPUs' rings fill and wrap. */
static void *thread_flood(void *arg)
{
	long *a = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET((int)(a[1] - 1), &set);
	sched_setaffinity(0, sizeof(set), &set);
	return thread_getppids(arg);
}

/* n getppid in each of two threads (the flood) */
static int flood_workload(long n)
{
	long a1[2] = { n, 1 }, a2[2] = { n, 2 };
	pthread_t t1, t2;

	if (pthread_create(&t1, NULL, thread_flood, a1) ||
	    pthread_create(&t2, NULL, thread_flood, a2))
		return 1;
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	return 0;
}

/* ------------------------------------------------------------ record checks */

static size_t count_recs(const struct collector *c, int kind, int nr, uint32_t tgid, uint32_t tid)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++) {
		const struct syscap_event *e = &c->recs[i].ev;

		if (e->kind == kind && (nr < 0 || e->nr == nr) && (!tgid || e->tgid == tgid) &&
		    (!tid || e->tid == tid))
			n++;
	}
	return n;
}

/* ------------------------------------------------------------ tests */

/* What one traced run does (see trace_run). */
struct run {
	struct {
		int (*fn)(long);
		long arg;
		const char *comm;
	} w[2];				/* one or two workloads: fn(arg) named comm */
	uint32_t flags;			/* the filter: flags, syscall set, comm list */
	const int *nrs;
	int nnr;
	const char *const *comms;
	int ncomm;
	uint32_t pid_rule;		/* SYSCAP_PID_INCLUDE/EXCLUDE, or 0: none */
	int pid_of;			/* the workload whose process tree it names */
	int close_window;		/* sampled: close the sampling window once started */
	struct child cs[2];		/* out: the workloads' processes */
};

/*
 * One traced run on b, the scaffolding the counting tests share: a fresh
 * collector; the workloads spawned (ready, not started: their names are set
 * before capture); the filter and the pid rule set; then start, every
 * workload run to its end, stop, drain, and the totals read into t.
 */
static int trace_run(struct syscap_backend *b, struct run *r, struct collector *c,
		     struct totals *t)
{
	int nc, ret;

	collector_init(c);
	for (nc = 0; nc < 2 && r->w[nc].fn; nc++)
		r->cs[nc] = spawn(r->w[nc].fn, r->w[nc].arg, r->w[nc].comm);
	CHECK(!set_filter(b, r->flags, r->nrs, r->nnr, r->comms, r->ncomm), "%s", detail);
	if (r->pid_rule)
		CHECK(!b->ops->set_pid(b, r->cs[r->pid_of].pid, r->pid_rule), "set_pid");
	ret = b->ops->start(b);
	CHECK(!ret, "start: %s", strerror(-ret));
	if (r->close_window) {
		ret = b->ops->sample_window(b, 0);
		CHECK(!ret, "closing the sampling window: %s", strerror(-ret));
	}
	for (int i = 0; i < nc; i++)
		go(&r->cs[i]);
	for (int i = 0; i < nc; i++) {
		int st = reap(&r->cs[i]);

		CHECK(st == 0, "workload %d exited with %d", i, st);
		drain(b, c);
	}
	ret = b->ops->stop(b);
	CHECK(!ret, "stop: %s", strerror(-ret));
	drain(b, c);
	return read_totals(b, t);
}

static int test_exact_counts(void)
{
	struct syscap_backend *b = open_backend_args(1 << 20);
	struct run r = { .w = { { exact_workload, 0, "exact" } }, .flags = SYSCAP_FILTER_PIDS,
			 .pid_rule = SYSCAP_PID_INCLUDE };
	struct collector c;
	struct totals t;
	struct child ch;
	uint32_t grand = 0, thread = 0;
	size_t n;

	if (!b || trace_run(b, &r, &c, &t))
		return 1;
	ch = r.cs[0];

	CHECK(t.calls[SYS_getppid] == W_N + W_GRAND + W_THREAD,
	      "getppid calls %llu, want %d", (unsigned long long)t.calls[SYS_getppid],
	      W_N + W_GRAND + W_THREAD);
	CHECK(t.errors[SYS_getppid] == 0, "getppid errors %llu", (unsigned long long)t.errors[SYS_getppid]);
	CHECK(t.calls[SYS_openat] == W_M, "openat calls %llu, want %d",
	      (unsigned long long)t.calls[SYS_openat], W_M);
	CHECK(t.errors[SYS_openat] == W_K, "openat errors %llu, want %d",
	      (unsigned long long)t.errors[SYS_openat], W_K);
	CHECK(t.calls[SYS_close] == W_M - W_K, "close calls %llu, want %d",
	      (unsigned long long)t.calls[SYS_close], W_M - W_K);
	CHECK(t.calls[SYS_exit_group] == 2, "exit_group calls %llu, want 2 (child, grandchild)",
	      (unsigned long long)t.calls[SYS_exit_group]);
	CHECK(t.calls[SYS_exit] == 1, "exit calls %llu, want 1 (the thread)",
	      (unsigned long long)t.calls[SYS_exit]);
	CHECK(t.total_ns[SYS_getppid] > 0, "getppid total_ns is 0");
	CHECK(t.drops == 0 && t.proc_drops == 0, "drops %llu/%llu with a 1 MiB ring",
	      (unsigned long long)t.drops, (unsigned long long)t.proc_drops);
	CHECK(sum_calls(&t) == t.events, "sum of calls %llu != events %llu",
	      (unsigned long long)sum_calls(&t), (unsigned long long)t.events);
	n = count_recs(&c, SYSCAP_EV_SYSCALL, -1, 0, 0);
	CHECK(n == t.events, "%zu syscall records, counters say %llu", n,
	      (unsigned long long)t.events);
	CHECK(!c.incomplete, "%llu records with unset fields, first: %s",
	      (unsigned long long)c.incomplete, c.first_incomplete);
	CHECK(c.seq_errors == 0 && c.torn == 0, "order errors %llu, bad kinds %llu",
	      (unsigned long long)c.seq_errors, (unsigned long long)c.torn);
	for (int nr = 0; nr < SYSCAP_MAX_SYSCALLS; nr++) {
		n = count_recs(&c, SYSCAP_EV_SYSCALL, nr, 0, 0);
		CHECK(n == t.calls[nr], "syscall %d: %zu records, %llu counted", nr, n,
		      (unsigned long long)t.calls[nr]);
	}
	/* the records themselves: who, what, in which order */
	for (size_t i = 0; i < c.n; i++) {
		const struct syscap_event *e = &c.recs[i].ev;

		CHECK(e->tgid != (uint32_t)getpid(), "the consumer was traced");
		if (e->kind == SYSCAP_EV_FORK && e->tgid != (uint32_t)ch.pid)
			grand = e->tgid;
		if (e->kind == SYSCAP_EV_FORK && e->tgid == (uint32_t)ch.pid)
			thread = e->tid;
		if (e->kind == SYSCAP_EV_SYSCALL && e->nr == SYS_getppid) {
			CHECK(e->args[0] == MAGIC && e->args[3] == ~e->args[2],
			      "getppid record with args %llx %llx %llx", (unsigned long long)e->args[0],
			      (unsigned long long)e->args[2], (unsigned long long)e->args[3]);
			CHECK(e->dur_ns < 1000000000ULL, "duration %llu ns", (unsigned long long)e->dur_ns);
		}
		if (e->kind == SYSCAP_EV_SYSCALL && e->nr == SYS_openat)
			CHECK(e->args[2] == (O_RDONLY | O_DIRECTORY) && (e->ret == -ENOENT || e->ret >= 0),
			      "openat record: flags %llx ret %lld", (unsigned long long)e->args[2],
			      (long long)e->ret);
	}
	CHECK(grand && thread, "FORK records: grandchild %u, thread %u", grand, thread);
	CHECK(count_recs(&c, SYSCAP_EV_SYSCALL, SYS_getppid, ch.pid, ch.pid) == W_N,
	      "child's getppid records %zu", count_recs(&c, SYSCAP_EV_SYSCALL, SYS_getppid, ch.pid, ch.pid));
	CHECK(count_recs(&c, SYSCAP_EV_SYSCALL, SYS_getppid, grand, grand) == W_GRAND,
	      "grandchild's getppid records %zu", count_recs(&c, SYSCAP_EV_SYSCALL, SYS_getppid, grand, 0));
	CHECK(count_recs(&c, SYSCAP_EV_SYSCALL, SYS_getppid, ch.pid, thread) == W_THREAD,
	      "thread's getppid records %zu", count_recs(&c, SYSCAP_EV_SYSCALL, SYS_getppid, ch.pid, thread));
	/* the child's getppid records: in call order, with its parent as ret */
	{
		uint64_t last_ts = 0;
		long want = 0;

		for (size_t i = 0; i < c.n; i++) {
			const struct syscap_event *e = &c.recs[i].ev;

			if (e->kind != SYSCAP_EV_SYSCALL || e->tid != (uint32_t)ch.pid ||
			    e->nr != SYS_getppid)
				continue;
			CHECK((long)e->args[2] == want, "child getppid #%ld has arg %lld", want,
			      (long long)e->args[2]);
			CHECK(e->ret == getpid(), "getppid returned %lld", (long long)e->ret);
			CHECK(e->ts_ns >= last_ts, "entry times go back");
			last_ts = e->ts_ns + e->dur_ns;
			want++;
		}
	}
	CHECK(count_recs(&c, SYSCAP_EV_EXIT, -1, ch.pid, ch.pid) == 1, "child EXIT records %zu",
	      count_recs(&c, SYSCAP_EV_EXIT, -1, ch.pid, ch.pid));
	CHECK(count_recs(&c, SYSCAP_EV_EXIT, -1, grand, grand) == 1, "grandchild EXIT records");
	CHECK(count_recs(&c, SYSCAP_EV_EXIT, -1, ch.pid, thread) == 1, "thread EXIT records");
	for (size_t i = 0; i < c.n; i++) {
		const struct syscap_event *e = &c.recs[i].ev;

		if (e->kind == SYSCAP_EV_SYSCALL && (e->nr == SYS_exit || e->nr == SYS_exit_group))
			CHECK(e->flags & SYSCAP_F_NORETURN, "exit record without NORETURN");
		if (e->kind == SYSCAP_EV_EXIT && e->tid == (uint32_t)ch.pid)
			CHECK(e->flags & SYSCAP_F_GROUP_DEAD, "child EXIT without GROUP_DEAD");
		/* A thread's EXIT may carry GROUP_DEAD too: sched_process_exit
		 * reads signal->live after the thread let its joiner go, and
		 * the joiner may have exited first. */
	}
	snprintf(detail, sizeof(detail), "getppid=%llu openat=%llu/%llu failed events=%llu proc=%llu records=%zu",
		 (unsigned long long)t.calls[SYS_getppid], (unsigned long long)t.calls[SYS_openat],
		 (unsigned long long)t.errors[SYS_openat], (unsigned long long)t.events,
		 (unsigned long long)t.proc_events, c.n);
	b->ops->close(b);
	return 0;
}

struct count_sink {
	uint32_t tgids[3];			/* child, grandchild, any other */
	uint64_t calls[3][SYSCAP_MAX_SYSCALLS], errors[3][SYSCAP_MAX_SYSCALLS];
	size_t keys;
};

static void count_sink(void *ctx, const struct syscap_count_key *k,
		       const struct syscap_count_val *v)
{
	struct count_sink *cs = ctx;
	int who = k->tgid == cs->tgids[0] ? 0 : k->tgid == cs->tgids[1] ? 1 : 2;

	cs->calls[who][k->nr % SYSCAP_MAX_SYSCALLS] += v->calls;
	cs->errors[who][k->nr % SYSCAP_MAX_SYSCALLS] += v->errors;
	cs->keys++;
}

#define S_N	400		/* sampled rounds */
#define S_SLEEP_NS	200000

/* S_N rounds of a getppid and a 200 us nanosleep */
static int sampled_workload(long unused)
{
	struct timespec pause = { 0, S_SLEEP_NS };

	(void)unused;
	for (int i = 0; i < S_N; i++) {
		syscall(SYS_getppid, MAGIC, 0, i, ~i);
		syscall(SYS_nanosleep, &pause, NULL);
	}
	return 0;
}

/*
 * Sampled mode: the counters as exact as count mode's, plus one record per
 * sampled call, flagged SYSCAP_F_SAMPLED, holding that call's own duration.
 * With period 1 every call is sampled: one record per getppid and per
 * nanosleep, each sleep at least as long as asked and each getppid with its
 * arguments, and no other records.
 * With the sampling window closed (the entry probe removed) no call is
 * sampled and every call is still counted.
 */
static int test_sampled_mode(void)
{
	struct syscap_backend *b = open_backend(8 << 20);
	size_t getppid = 0, sleeps = 0, short_sleeps = 0, other = 0;
	uint32_t period = 1;
	struct collector c;
	struct totals t;
	int ret;

	if (!b)
		return 1;
	ret = b->ops->set_mode(b, SYSCAP_MODE_SAMPLED);
	CHECK(!ret, "set_mode(sampled): %s", strerror(-ret));
	ret = b->ops->set_sample_period(b, period);
	CHECK(!ret, "set_sample_period(1): %s", strerror(-ret));
	/* the samples carry their arguments: getppid's first is MAGIC */
	ret = b->ops->set_args(b, 1);
	CHECK(!ret, "set_args(1): %s", strerror(-ret));
	CHECK(b->ops->set_sample_period(b, 3) == -EINVAL, "a period of 3 was taken");
	CHECK(b->ops->sample_window(b, 1) == -EINVAL, "a sampling window opened while stopped");
	/* the window open (as START leaves it), then closed for the whole run */
	for (int closed = 0; closed < 2; closed++) {
		struct run r = { .w = { { sampled_workload, 0, "sampled" } },
				 .flags = SYSCAP_FILTER_PIDS, .pid_rule = SYSCAP_PID_INCLUDE,
				 .close_window = closed };

		getppid = sleeps = short_sleeps = other = 0;
		if (trace_run(b, &r, &c, &t))
			return 1;
		for (size_t i = 0; i < c.n; i++) {
			const struct syscap_event *ev = &c.recs[i].ev;

			if (ev->kind != SYSCAP_EV_SYSCALL || ev->tgid != (uint32_t)r.cs[0].pid)
				continue;
			if (!(ev->flags & SYSCAP_F_SAMPLED) || ev->seq)
				other++;
			else if (ev->nr == SYS_getppid && ev->args[0] == MAGIC)
				getppid++;
			else if (ev->nr == SYS_nanosleep) {
				sleeps++;
				short_sleeps += ev->dur_ns < S_SLEEP_NS;
			}
		}
		CHECK(t.calls[SYS_getppid] == S_N && t.calls[SYS_nanosleep] == S_N && !t.drops,
		      "window %s: counted getppid %llu nanosleep %llu drops %llu, want %d each",
		      closed ? "closed" : "open", (unsigned long long)t.calls[SYS_getppid],
		      (unsigned long long)t.calls[SYS_nanosleep], (unsigned long long)t.drops, S_N);
		if (closed)
			CHECK(!getppid && !sleeps && !other,
			      "window closed: samples getppid %zu nanosleep %zu, %zu unflagged",
			      getppid, sleeps, other);
		else
			CHECK(getppid == S_N && sleeps == S_N && !short_sleeps && !other,
			      "samples: getppid %zu nanosleep %zu (%zu shorter than the sleep), "
			      "%zu unflagged", getppid, sleeps, short_sleeps, other);
	}
	b->ops->close(b);
	snprintf(detail, sizeof(detail), "%d getppid + %d nanosleep counted, every one sampled "
		 "at period 1 with its own duration; none with the sampling window closed, every "
		 "one still counted", S_N, S_N);
	return 0;
}

/*
 * The exact workload's fork and thread, as counted: two successful clone or
 * clone3 calls in the process (a clone3 that failed, e.g. ENOSYS before 5.3,
 * left out), none in its child: a new task's first return is no call.
 */
static int check_clones(const struct count_sink *cs, const char *pass)
{
	uint64_t own = cs->calls[0][SYS_clone] + cs->calls[0][SYS_clone3] -
		       cs->errors[0][SYS_clone3] - cs->errors[0][SYS_clone];
	uint64_t child = cs->calls[1][SYS_clone] + cs->calls[1][SYS_clone3];

	CHECK(own == 2 && child == 0, "%s: clone/clone3 %llu in the process, %llu in its child, "
	      "want 2 (a fork, a thread) and 0", pass, (unsigned long long)own,
	      (unsigned long long)child);
	return 0;
}

/* The grandchild of run r's child: the other tgid with a FORK record in c. */
static uint32_t grandchild(const struct collector *c, pid_t child)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->recs[i].ev.kind == SYSCAP_EV_FORK && c->recs[i].ev.tgid != (uint32_t)child)
			return c->recs[i].ev.tgid;
	return 0;
}

/*
 * Count mode: the exact workload counted per process x syscall in the kernel,
 * no syscall records, and another process beside it not at all (the process
 * filter); the counters agree with records mode's numbers; a forgotten
 * process's counters are gone on every CPU.
 */
static int test_count_mode(void)
{
	struct syscap_backend *b = open_backend(1 << 20);
	struct count_sink *cs = calloc(1, sizeof(*cs));
	struct run r = { .w = { { exact_workload, 0, "exact" }, { getppid_workload, 100, "other" } },
			 .flags = SYSCAP_FILTER_PIDS, .pid_rule = SYSCAP_PID_INCLUDE };
	uint64_t sum = 0;
	struct collector c;
	struct totals t;
	struct child ch;
	int ret;

	if (!b || !cs)
		return 1;
	ret = b->ops->set_mode(b, 1);
	CHECK(!ret, "set_mode(counts): %s", strerror(-ret));
	if (trace_run(b, &r, &c, &t))
		return 1;
	ch = r.cs[0];
	CHECK(count_recs(&c, SYSCAP_EV_SYSCALL, -1, 0, 0) == 0, "syscall records in count mode");
	cs->tgids[0] = (uint32_t)ch.pid;
	cs->tgids[1] = grandchild(&c, ch.pid);
	CHECK(cs->tgids[1], "no FORK record of the grandchild");
	ret = b->ops->read_counts(b, count_sink, cs);
	CHECK(!ret, "read_counts: %s", strerror(-ret));
	if (check_clones(cs, "process filter"))
		return 1;
	CHECK(!cs->calls[2][SYS_getppid], "%llu getppid of processes outside the filter counted",
	      (unsigned long long)cs->calls[2][SYS_getppid]);
	CHECK(cs->calls[0][SYS_getppid] == W_N + W_THREAD && cs->calls[1][SYS_getppid] == W_GRAND,
	      "getppid per process %llu/%llu, want %d/%d",
	      (unsigned long long)cs->calls[0][SYS_getppid],
	      (unsigned long long)cs->calls[1][SYS_getppid], W_N + W_THREAD, W_GRAND);
	CHECK(cs->calls[0][SYS_openat] == W_M && cs->errors[0][SYS_openat] == W_K,
	      "openat %llu/%llu, want %d/%d", (unsigned long long)cs->calls[0][SYS_openat],
	      (unsigned long long)cs->errors[0][SYS_openat], W_M, W_K);
	CHECK(cs->calls[0][SYS_exit_group] == 1 && cs->calls[1][SYS_exit_group] == 1 &&
	      cs->calls[0][SYS_exit] == 1, "exit_group %llu/%llu, exit %llu, want 1/1, 1",
	      (unsigned long long)cs->calls[0][SYS_exit_group],
	      (unsigned long long)cs->calls[1][SYS_exit_group],
	      (unsigned long long)cs->calls[0][SYS_exit]);
	for (int nr = 0; nr < SYSCAP_MAX_SYSCALLS; nr++) {
		uint64_t n = cs->calls[0][nr] + cs->calls[1][nr] + cs->calls[2][nr];

		CHECK(n == t.calls[nr], "syscall %d: %llu in the counters, %llu in the totals", nr,
		      (unsigned long long)n, (unsigned long long)t.calls[nr]);
		sum += n;
	}
	CHECK(sum == t.events && !t.drops, "counted %llu, events %llu, drops %llu",
	      (unsigned long long)sum, (unsigned long long)t.events, (unsigned long long)t.drops);
	/* forget the grandchild: its counters leave every CPU's table */
	for (int nr = 0; nr < SYSCAP_MAX_SYSCALLS; nr++) {
		struct syscap_count_key k = { .tgid = cs->tgids[1], .nr = (uint32_t)nr };

		if (cs->calls[1][nr])
			CHECK(!b->ops->forget_count(b, &k), "forget_count");
	}
	memset(cs->calls, 0, sizeof(cs->calls));
	CHECK(!b->ops->read_counts(b, count_sink, cs), "read_counts after forget");
	CHECK(cs->calls[1][SYS_getppid] == 0 && cs->calls[0][SYS_getppid] == W_N + W_THREAD,
	      "after forgetting the grandchild: %llu/%llu getppid",
	      (unsigned long long)cs->calls[0][SYS_getppid],
	      (unsigned long long)cs->calls[1][SYS_getppid]);
	/* the totals keep what the forgotten counters held */
	{
		struct totals after;

		if (read_totals(b, &after))
			return 1;
		CHECK(after.calls[SYS_getppid] == t.calls[SYS_getppid] &&
		      after.errors[SYS_openat] == t.errors[SYS_openat] &&
		      after.events == t.events,
		      "totals after forgetting: getppid %llu, was %llu; events %llu, was %llu",
		      (unsigned long long)after.calls[SYS_getppid],
		      (unsigned long long)t.calls[SYS_getppid],
		      (unsigned long long)after.events, (unsigned long long)t.events);
	}
	/* no condition on the task: the probe skips the task table, and the
	 * child's counters are as exact (the rest of the guest is counted too) */
	b->ops->close(b);
	b = open_backend(1 << 20);
	if (!b)
		return 1;
	memset(cs, 0, sizeof(*cs));
	CHECK(!b->ops->set_mode(b, 1), "set_mode(counts)");
	r.flags = 0;
	r.pid_rule = 0;
	if (trace_run(b, &r, &c, &t))
		return 1;
	ch = r.cs[0];
	cs->tgids[0] = (uint32_t)ch.pid;
	cs->tgids[1] = grandchild(&c, ch.pid);
	CHECK(cs->tgids[1], "no filter: no FORK record of the grandchild");
	CHECK(!b->ops->read_counts(b, count_sink, cs), "read_counts, no filter");
	if (check_clones(cs, "no filter"))
		return 1;
	CHECK(cs->calls[0][SYS_getppid] == W_N + W_THREAD && cs->calls[0][SYS_openat] == W_M &&
	      cs->errors[0][SYS_openat] == W_K && cs->calls[0][SYS_exit_group] == 1 &&
	      cs->calls[0][SYS_exit] == 1,
	      "no filter: getppid %llu openat %llu/%llu exit_group %llu exit %llu",
	      (unsigned long long)cs->calls[0][SYS_getppid],
	      (unsigned long long)cs->calls[0][SYS_openat],
	      (unsigned long long)cs->errors[0][SYS_openat],
	      (unsigned long long)cs->calls[0][SYS_exit_group],
	      (unsigned long long)cs->calls[0][SYS_exit]);
	CHECK(cs->calls[2][SYS_getppid] >= 100, "no filter: %llu getppid of the other process, "
	      "want 100", (unsigned long long)cs->calls[2][SYS_getppid]);
	CHECK(b->ops->start(b) == 0 && b->ops->set_mode(b, 0) == -EBUSY && b->ops->stop(b) == 0 &&
	      b->ops->set_mode(b, 0) == 0, "SET_MODE must be refused while running, only then");
	snprintf(detail, sizeof(detail),
		 "getppid %d+%d / %d per process, openat %d/%d failed, exit_group 1/1, exit 1; "
		 "%llu counted = totals; forget works", W_N, W_THREAD, W_GRAND, W_M, W_K,
		 (unsigned long long)sum);
	free(cs);
	b->ops->close(b);
	return 0;
}

static int test_process_tree(void)
{
	struct syscap_backend *b = open_backend(1 << 20);
	struct run r = { .w = { { tree_workload, 100, "tree-in" }, { tree_workload, 1000, "tree-out" } },
			 .flags = SYSCAP_FILTER_PIDS, .pid_rule = SYSCAP_PID_INCLUDE, .pid_of = 0 };
	struct collector c;
	struct totals t;

	if (!b || trace_run(b, &r, &c, &t))
		return 1;
	CHECK(t.calls[SYS_getppid] == 300, "getppid %llu, want 300 (100 per generation)",
	      (unsigned long long)t.calls[SYS_getppid]);
	CHECK(count_recs(&c, SYSCAP_EV_FORK, -1, 0, 0) == 2, "FORK records %zu, want 2",
	      count_recs(&c, SYSCAP_EV_FORK, -1, 0, 0));
	{
		uint32_t tree[3] = { (uint32_t)r.cs[0].pid, 0, 0 };
		int nt = 1;

		for (size_t i = 0; i < c.n; i++)
			if (c.recs[i].ev.kind == SYSCAP_EV_FORK && nt < 3)
				tree[nt++] = c.recs[i].ev.tgid;
		for (size_t i = 0; i < c.n; i++) {
			uint32_t tg = c.recs[i].ev.tgid;

			CHECK(tg == tree[0] || tg == tree[1] || tg == tree[2],
			      "a record of tgid %u, outside the tree %u %u %u", tg, tree[0], tree[1],
			      tree[2]);
		}
	}
	/* now exclude the other tree and trace everything else */
	r.flags = 0;
	r.pid_rule = SYSCAP_PID_EXCLUDE;
	r.pid_of = 1;
	if (trace_run(b, &r, &c, &t))
		return 1;
	CHECK(t.calls[SYS_getppid] == 300, "with the other tree excluded: getppid %llu, want 300",
	      (unsigned long long)t.calls[SYS_getppid]);
	snprintf(detail, sizeof(detail), "include tree: 300 of 3300 getppid; exclude tree: 300");
	b->ops->close(b);
	return 0;
}

/* N sleeps of 20 ms. */
#define SLEEP_NS	20000000LL

static int sleeper(long n)
{
	struct timespec ts = { 0, SLEEP_NS };

	for (long i = 0; i < n; i++)
		syscall(SYS_nanosleep, &ts, NULL);
	return 0;
}

/*
 * One capture of 5 sleeps under the clock asked for: every time reaches the
 * consumer in CLOCK_MONOTONIC nanoseconds, whatever the probes read. Each
 * sleep lies inside the capture as this process's own clock saw it and lasts
 * its 20 ms; the totals say the same. The allowance covers the counter's
 * rate as the kernel calibrated it (2 ms plus 5 % of the time since the
 * reference reading) and the guest's slowness (a sleep may overrun 200 ms).
 */
static int clock_round(int clock, char *source, size_t len)
{
	struct syscap_backend *b = open_backend(1 << 20);
	struct run r = { .w = { { sleeper, 5, "wl-clock" } }, .flags = SYSCAP_FILTER_PIDS,
			 .pid_rule = SYSCAP_PID_INCLUDE };
	uint64_t t_ref, t0, t1, slack, n = 0;
	struct collector c;
	struct totals t;
	int ret;

	if (!b)
		return 1;
	t_ref = now_ns();
	ret = b->ops->set_clock(b, clock);
	CHECK(!ret, "set_clock(%d): %s", clock, strerror(-ret));
	snprintf(source, len, "%s", b->clock.source);
	CHECK(!strcmp(b->clock.source, "monotonic") == !b->clock.hz,
	      "clock %s with %llu Hz", b->clock.source, (unsigned long long)b->clock.hz);
	if (clock == SYSCAP_CLOCK_COUNTER)
		CHECK(b->clock.hz, "COUNTER gave %s", b->clock.source);
	if (clock == SYSCAP_CLOCK_MONOTONIC)
		CHECK(!b->clock.hz, "MONOTONIC gave %s", b->clock.source);
	t0 = now_ns();
	if (trace_run(b, &r, &c, &t))
		return 1;
	t1 = now_ns();
	slack = 2000000 + (t1 - t_ref) / 20;
	for (size_t i = 0; i < c.n; i++) {
		const struct syscap_event *e = &c.recs[i].ev;

		if ((int)e->tgid != r.cs[0].pid)
			continue;
		CHECK(e->ts_ns + slack >= t0 && e->ts_ns + e->dur_ns <= t1 + slack,
		      "%s: record of kind %u at %lld..%lld ns, capture %llu..%llu", b->clock.source,
		      e->kind, (long long)(e->ts_ns - t0), (long long)(e->ts_ns + e->dur_ns - t0),
		      0ULL, (unsigned long long)(t1 - t0));
		if (e->kind != SYSCAP_EV_SYSCALL || e->nr != SYS_nanosleep)
			continue;
		n++;
		CHECK(e->dur_ns >= SLEEP_NS * 95 / 100 && e->dur_ns <= SLEEP_NS + 200000000,
		      "%s: a 20 ms sleep lasted %llu ns", b->clock.source,
		      (unsigned long long)e->dur_ns);
	}
	CHECK(n == 5, "%s: %llu sleep records, want 5", b->clock.source, (unsigned long long)n);
	CHECK(t.total_ns[SYS_nanosleep] >= 5 * SLEEP_NS * 95 / 100 &&
	      t.total_ns[SYS_nanosleep] <= t1 - t0 + slack,
	      "%s: nanosleep total_ns %llu, capture %llu", b->clock.source,
	      (unsigned long long)t.total_ns[SYS_nanosleep], (unsigned long long)(t1 - t0));
	ret = b->ops->start(b);
	CHECK(!ret, "start: %s", strerror(-ret));
	ret = b->ops->set_clock(b, SYSCAP_CLOCK_MONOTONIC);
	CHECK(ret == -EBUSY, "set_clock while running: %d, want EBUSY", ret);
	b->ops->stop(b);
	ret = b->ops->set_clock(b, 7);
	CHECK(ret == -EINVAL, "set_clock(7): %d, want EINVAL", ret);
	free(c.recs);
	b->ops->close(b);
	return 0;
}

#if defined(__x86_64__)
#define CLOCKSOURCE "/sys/devices/system/clocksource/clocksource0/current_clocksource"

/* The kernel's clocksource into buf, "" if unreadable. */
static void clocksource(char *buf, size_t len)
{
	FILE *f = fopen(CLOCKSOURCE, "r");

	buf[0] = 0;
	if (f && fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	if (f)
		fclose(f);
}

static int set_clocksource(const char *name)
{
	int fd = open(CLOCKSOURCE, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, name, strlen(name)) == (ssize_t)strlen(name);
	close(fd);
	return ok ? 0 : -1;
}

/* The CPU flag in /proc/cpuinfo's first flags line. */
static int cpu_flag(const char *flag)
{
	char line[4096], *tok, *save;
	FILE *f = fopen("/proc/cpuinfo", "r");
	int found = 0;

	while (f && !found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5))
			continue;
		for (tok = strtok_r(strchr(line, ':'), " :\n", &save); tok;
		     tok = strtok_r(NULL, " \n", &save))
			found |= !strcmp(tok, flag);
		break;
	}
	if (f)
		fclose(f);
	return found;
}

/*
 * x86: AUTO takes the TSC where the kernel keeps its time with it, even when
 * the CPU does not call its TSC constant and nonstop (TCG's does not; the lab
 * boots with tsc=reliable). Then, on another clocksource, AUTO leaves the TSC:
 * the clocksource is switched for one round and back. Appends to out. Soon
 * after boot the TSC's clocksource may still be "tsc-early" (before the
 * kernel refines its rate), which reads the same counter.
 */
static int clock_source_rounds(const char *autos, char *out, size_t len)
{
	char cs[32], orig[32], other[16];
	int ret;

	clocksource(orig, sizeof(orig));
	if (strcmp(orig, "tsc") && strcmp(orig, "tsc-early")) {
		snprintf(out, len, "; clocksource %s", orig);
		return 0;
	}
	CHECK(!strcmp(autos, "tsc"), "the kernel keeps time with the TSC (%s), auto chose %s",
	      orig, autos);
	if (cpu_flag("constant_tsc") && cpu_flag("nonstop_tsc")) {
		snprintf(out, len, "; clocksource %s, constant and nonstop", orig);
		return 0;
	}
	CHECK(!set_clocksource("hpet") || !set_clocksource("acpi_pm"),
	      "no clocksource but the TSC to switch to");
	clocksource(cs, sizeof(cs));
	ret = clock_round(SYSCAP_CLOCK_AUTO, other, sizeof(other));
	CHECK(!set_clocksource(orig) || !set_clocksource("tsc"),
	      "switching the clocksource back to %s failed", orig);
	if (ret)
		return 1;
	CHECK(!strcmp(other, "monotonic"), "on clocksource %s, without constant_tsc and "
	      "nonstop_tsc, auto chose %s", cs, other);
	snprintf(out, len, "; clocksource %s without constant_tsc/nonstop_tsc; auto on %s: %s",
		 orig, cs, other);
	return 0;
}
#endif

static int test_clock(void)
{
	char autos[16], mono[16], counter[16], sources[256] = "";

	if (clock_round(SYSCAP_CLOCK_AUTO, autos, sizeof(autos)) ||
	    clock_round(SYSCAP_CLOCK_MONOTONIC, mono, sizeof(mono)) ||
	    clock_round(SYSCAP_CLOCK_COUNTER, counter, sizeof(counter)))
		return 1;
#if defined(__x86_64__)
	if (clock_source_rounds(autos, sources, sizeof(sources)))
		return 1;
#endif
	snprintf(detail, sizeof(detail), "auto: %s; monotonic; counter: %s; 5 x 20 ms sleeps "
		 "in place under each%s", autos, counter, sources);
	return 0;
}

static int test_syscall_filter(void)
{
	struct syscap_backend *b = open_backend(1 << 20);
	int nrs[] = { SYS_getppid };
	struct run r = { .w = { { mixed_workload, 500, "mixed" } },
			 .flags = SYSCAP_FILTER_PIDS | SYSCAP_FILTER_SYSCALLS, .nrs = nrs, .nnr = 1,
			 .pid_rule = SYSCAP_PID_INCLUDE };
	struct collector c;
	struct totals t;

	if (!b || trace_run(b, &r, &c, &t))
		return 1;
	CHECK(t.calls[SYS_getppid] == 500, "getppid %llu", (unsigned long long)t.calls[SYS_getppid]);
	CHECK(t.events == 500, "events %llu, want 500: other syscalls passed the bitmap",
	      (unsigned long long)t.events);
	CHECK(count_recs(&c, SYSCAP_EV_SYSCALL, SYS_getppid, 0, 0) == 500, "records");
	snprintf(detail, sizeof(detail), "bitmap {getppid}: 500 of 1500+ syscalls");
	b->ops->close(b);
	return 0;
}

static int test_failed_only(void)
{
	struct syscap_backend *b = open_backend(1 << 20);
	struct run r = { .w = { { mixed_workload, 300, "mixed" } },
			 .flags = SYSCAP_FILTER_PIDS | SYSCAP_FILTER_FAILED,
			 .pid_rule = SYSCAP_PID_INCLUDE };
	struct collector c;
	struct totals t;

	if (!b || trace_run(b, &r, &c, &t))
		return 1;
	CHECK(t.calls[SYS_openat] == 300 && t.errors[SYS_openat] == 300, "openat %llu/%llu",
	      (unsigned long long)t.calls[SYS_openat], (unsigned long long)t.errors[SYS_openat]);
	CHECK(t.calls[SYS_getppid] == 0 && t.calls[SYS_getpid] == 0, "successful calls counted");
	CHECK(t.events == 300, "events %llu, want 300", (unsigned long long)t.events);
	for (size_t i = 0; i < c.n; i++)
		if (c.recs[i].ev.kind == SYSCAP_EV_SYSCALL)
			CHECK(syscap_is_error(c.recs[i].ev.ret), "a successful record");
	snprintf(detail, sizeof(detail), "300 failed openat of 900 calls");
	b->ops->close(b);
	return 0;
}

static int test_comm_filter(void)
{
	struct syscap_backend *b = open_backend(1 << 20);
	const char *names[] = { "wl-alpha" };
	struct run r = { .w = { { getppid_workload, 123, "wl-alpha" },
				{ getppid_workload, 456, "wl-beta" } },
			 .flags = SYSCAP_FILTER_COMM, .comms = names, .ncomm = 1 };
	struct collector c;
	struct totals t;

	if (!b || trace_run(b, &r, &c, &t))
		return 1;
	CHECK(t.calls[SYS_getppid] == 123, "include wl-alpha: getppid %llu, want 123",
	      (unsigned long long)t.calls[SYS_getppid]);
	r.flags = SYSCAP_FILTER_COMM_EXCLUDE;
	if (trace_run(b, &r, &c, &t))
		return 1;
	CHECK(t.calls[SYS_getppid] == 456, "exclude wl-alpha: getppid %llu, want 456",
	      (unsigned long long)t.calls[SYS_getppid]);
	snprintf(detail, sizeof(detail), "include: 123, exclude: 456");
	b->ops->close(b);
	return 0;
}

/*
 * The consumer is never counted nor recorded: in record mode the probes skip
 * it; count mode's probe counts it (one compare less on every call) and the
 * readers, totals and per-process counters alike, leave it out.
 */
static int self_exclusion(int count_mode, char *out, size_t outlen)
{
	struct syscap_backend *b = open_backend(1 << 20);
	struct count_sink *cs = calloc(1, sizeof(*cs));
	struct collector c;
	struct totals t;
	struct child ch;
	int ret;

	if (!b || !cs)
		return 1;
	ret = b->ops->set_mode(b, count_mode);
	CHECK(!ret, "set_mode(%d): %s", count_mode, strerror(-ret));
	collector_init(&c);
	ch = spawn(getppid_workload, 100, "other");
	/* the backend's default filter: everything but the consumer */
	CHECK(!b->ops->start(b), "start");
	getppids(500, 9);
	go(&ch);
	CHECK(reap(&ch) == 0, "workload");
	getppids(500, 9);
	CHECK(!b->ops->stop(b), "stop");
	drain(b, &c);
	if (read_totals(b, &t))
		return 1;
	CHECK(t.calls[SYS_getppid] == 100, "%s: getppid %llu, want 100 (the consumer made 1000)",
	      count_mode ? "count mode" : "records", (unsigned long long)t.calls[SYS_getppid]);
	CHECK(count_recs(&c, SYSCAP_EV_SYSCALL, -1, getpid(), 0) == 0, "consumer records");
	if (count_mode) {
		cs->tgids[0] = (uint32_t)getpid();
		cs->tgids[1] = (uint32_t)ch.pid;
		ret = b->ops->read_counts(b, count_sink, cs);
		CHECK(!ret, "read_counts: %s", strerror(-ret));
		for (int nr = 0; nr < SYSCAP_MAX_SYSCALLS; nr++)
			CHECK(!cs->calls[0][nr], "count mode: the consumer's syscall %d counted %llu "
			      "times", nr, (unsigned long long)cs->calls[0][nr]);
		CHECK(cs->calls[1][SYS_getppid] == 100, "count mode: the other's getppid %llu, "
		      "want 100", (unsigned long long)cs->calls[1][SYS_getppid]);
	}
	snprintf(out, outlen, "%s: 100 counted, consumer's 1000 not; %llu events system-wide",
		 count_mode ? "count mode" : "records", (unsigned long long)t.events);
	free(cs);
	b->ops->close(b);
	return 0;
}

static int test_self_exclusion(void)
{
	char rec[160], cnt[160];

	if (self_exclusion(0, rec, sizeof(rec)) || self_exclusion(1, cnt, sizeof(cnt)))
		return 1;
	snprintf(detail, sizeof(detail), "%s; %s", rec, cnt);
	return 0;
}

/*
 * Flood a ring while draining it: every record is read once, in order per
 * CPU, never torn; captured + dropped == generated, exactly.
 */
static int flood(uint64_t ring, long per_thread, int drain_sleep_us, const char *what)
{
	struct syscap_backend *b = open_backend_args(ring);
	int nrs[] = { SYS_getppid };
	uint64_t captured = 0, seen_gaps = 0, polls = 0;
	long next[3] = { 0, 0, 0 };
	struct collector c;
	struct totals t;
	struct child ch;
	int running = 1;

	if (!b)
		return 1;
	collector_init(&c);
	ch = spawn(flood_workload, per_thread, "flood");
	CHECK(!set_filter(b, SYSCAP_FILTER_PIDS | SYSCAP_FILTER_SYSCALLS, nrs, 1, NULL, 0), "%s", detail);
	CHECK(!b->ops->set_pid(b, ch.pid, SYSCAP_PID_INCLUDE), "set_pid");
	CHECK(!b->ops->start(b), "start");
	go(&ch);
	while (running) {
		struct pollfd pfd = { .fd = b->wait_fd, .events = POLLIN };

		if (waitpid(ch.pid, NULL, WNOHANG) == ch.pid)
			running = 0;
		if (drain_sleep_us)
			usleep(drain_sleep_us);
		else if (poll(&pfd, 1, 10) > 0)
			polls++;
		drain(b, &c);
	}
	CHECK(!b->ops->stop(b), "stop");
	drain(b, &c);
	if (read_totals(b, &t))
		return 1;
	/* each record once and in order: per thread, arg 2 only grows */
	for (size_t i = 0; i < c.n; i++) {
		const struct syscap_event *e = &c.recs[i].ev;
		long tag = (long)e->args[1], seq = (long)e->args[2];

		if (e->kind != SYSCAP_EV_SYSCALL)
			continue;
		captured++;
		CHECK(e->nr == SYS_getppid && e->args[0] == MAGIC && e->args[3] == ~e->args[2] &&
		      tag >= 1 && tag <= 2 && e->ret > 0,
		      "torn record: nr %u args %llx %llx %llx %llx ret %lld", e->nr,
		      (unsigned long long)e->args[0], (unsigned long long)e->args[1],
		      (unsigned long long)e->args[2], (unsigned long long)e->args[3], (long long)e->ret);
		CHECK(seq >= next[tag], "thread %ld: call %ld read after %ld (duplicate or reordered)",
		      tag, seq, next[tag] - 1);
		seen_gaps += (uint64_t)(seq - next[tag]);
		next[tag] = seq + 1;
	}
	seen_gaps += (uint64_t)(per_thread - next[1]) + (uint64_t)(per_thread - next[2]);
	CHECK(c.seq_errors == 0, "%llu records out of per-CPU sequence", (unsigned long long)c.seq_errors);
	CHECK(!c.incomplete, "%llu records with unset fields after the ring wrapped, first: %s",
	      (unsigned long long)c.incomplete, c.first_incomplete);
	CHECK(t.events == 2ULL * per_thread, "generated %llu, the workload made %ld",
	      (unsigned long long)t.events, 2 * per_thread);
	CHECK(captured + t.drops == t.events, "captured %llu + dropped %llu != generated %llu",
	      (unsigned long long)captured, (unsigned long long)t.drops, (unsigned long long)t.events);
	CHECK(seen_gaps == t.drops, "calls missing from the records %llu, drops counted %llu",
	      (unsigned long long)seen_gaps, (unsigned long long)t.drops);
	/* per CPU: the sequence numbers account for the drops of that CPU */
	for (int cpu = 0; cpu < b->ncpu; cpu++) {
		uint64_t n = 0;

		for (size_t i = 0; i < c.n; i++)
			if (c.recs[i].cpu == cpu && c.recs[i].ev.kind == SYSCAP_EV_SYSCALL)
				n++;
		CHECK(n > 0, "cpu %d carried no record: the flood did not reach its ring", cpu);
		CHECK(n + t.cpu_drops[cpu] == t.cpu_events[cpu],
		      "cpu %d: %llu read + %llu dropped != %llu generated", cpu,
		      (unsigned long long)n, (unsigned long long)t.cpu_drops[cpu],
		      (unsigned long long)t.cpu_events[cpu]);
	}
	snprintf(detail, sizeof(detail),
		 "%s ring %llu B: generated %llu = captured %llu + dropped %llu; polls %llu",
		 what, (unsigned long long)ring, (unsigned long long)t.events,
		 (unsigned long long)captured, (unsigned long long)t.drops, (unsigned long long)polls);
	b->ops->close(b);
	return 0;
}

/*
 * The filter flipped 10 000 times while two workers keep entering the probes:
 * after every flip each worker makes one failing close(-round), and the
 * records (failed calls only: the workers' busy loop writes none) must show
 * exactly the worker that flip's filter admits. A verdict computed from
 * one filter and cached under a newer generation would keep a worker wrongly
 * traced or wrongly ignored until the next change.
 */
#define FLIP_WORKERS	2
#define FLIPS		10000

struct flip_shared {
	uint32_t round;		/* written by the test */
	uint32_t done;
	uint32_t ack[FLIP_WORKERS];	/* the last round worker i marked */
};

static struct flip_shared *flip_sh;

static int flip_worker(long i)
{
	uint32_t last = 0;

	while (!__atomic_load_n(&flip_sh->done, __ATOMIC_ACQUIRE)) {
		uint32_t r = __atomic_load_n(&flip_sh->round, __ATOMIC_ACQUIRE);

		if (r != last) {
			syscall(SYS_close, -(long)r);
			__atomic_store_n(&flip_sh->ack[i], r, __ATOMIC_RELEASE);
			last = r;
		}
		syscall(SYS_getppid);
		sched_yield();
	}
	return 0;
}

/*
 * Apply flip configuration r % 4 after undoing the process set of the one
 * before; returns the worker it admits. Every flip changes both verdicts.
 */
static int flip(struct syscap_backend *b, const struct child *w, long r)
{
	static const int nrs[] = { SYS_close, SYS_getppid };
	static const char *const one[] = { "flip-1" };
	const uint32_t sys = SYSCAP_FILTER_SYSCALLS | SYSCAP_FILTER_FAILED;
	int prev = (int)((r + 3) % 4);

	if (r > 1 && (prev == 2 || prev == 3) && b->ops->set_pid(b, w[0].pid, 0))
		return failf("set_pid clear");
	switch (r % 4) {
	case 0:
		return set_filter(b, sys | SYSCAP_FILTER_COMM, nrs, 2, one, 1) ? -1 : 1;
	case 1:
		return set_filter(b, sys | SYSCAP_FILTER_COMM_EXCLUDE, nrs, 2, one, 1) ? -1 : 0;
	case 2:
		if (b->ops->set_pid(b, w[0].pid, SYSCAP_PID_EXCLUDE))
			return failf("set_pid exclude");
		return set_filter(b, sys, nrs, 2, NULL, 0) ? -1 : 1;
	default:
		if (b->ops->set_pid(b, w[0].pid, SYSCAP_PID_INCLUDE))
			return failf("set_pid include");
		return set_filter(b, sys | SYSCAP_FILTER_PIDS, nrs, 2, NULL, 0) ? -1 : 0;
	}
}

static int test_filter_flips(void)
{
	struct syscap_backend *b = open_backend_args(4 << 20);
	static uint8_t admitted[FLIPS + 1], marked[FLIPS + 1];
	struct child w[FLIP_WORKERS];
	long wrong = 0, first_wrong = -1;
	struct collector c;
	struct totals t;
	char name[16];

	if (!b)
		return 1;
	flip_sh = mmap(NULL, sizeof(*flip_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	CHECK(flip_sh != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(flip_sh, 0, sizeof(*flip_sh));
	collector_init(&c);
	for (int j = 0; j < FLIP_WORKERS; j++) {
		snprintf(name, sizeof(name), "flip-%d", j);
		w[j] = spawn(flip_worker, j, name);
		CHECK(w[j].pid > 0, "spawn");
	}
	CHECK(!b->ops->start(b), "start");
	for (int j = 0; j < FLIP_WORKERS; j++)
		go(&w[j]);
	for (long r = 1; r <= FLIPS; r++) {
		int who = flip(b, w, r);

		if (who < 0)
			return 1;
		admitted[r] = (uint8_t)(1 << who);
		__atomic_store_n(&flip_sh->round, (uint32_t)r, __ATOMIC_RELEASE);
		for (int j = 0; j < FLIP_WORKERS; j++)
			while (__atomic_load_n(&flip_sh->ack[j], __ATOMIC_ACQUIRE) != r)
				sched_yield();
		if (r % 16 == 0)
			drain(b, &c);
	}
	__atomic_store_n(&flip_sh->done, 1, __ATOMIC_RELEASE);
	for (int j = 0; j < FLIP_WORKERS; j++)
		CHECK(reap(&w[j]) == 0, "worker %d failed", j);
	CHECK(!b->ops->stop(b), "stop");
	drain(b, &c);
	if (read_totals(b, &t))
		return 1;
	CHECK(!c.incomplete, "records with unset fields: %s", c.first_incomplete);
	CHECK(t.drops == 0, "%llu records dropped: the rounds cannot be checked",
	      (unsigned long long)t.drops);
	for (size_t i = 0; i < c.n; i++) {
		const struct syscap_event *e = &c.recs[i].ev;
		uint64_t r = -e->args[0];

		if (e->kind != SYSCAP_EV_SYSCALL || e->nr != SYS_close || !r || r > FLIPS)
			continue;
		for (int j = 0; j < FLIP_WORKERS; j++)
			if (e->tgid == (uint32_t)w[j].pid)
				marked[r] |= (uint8_t)(1 << j);
	}
	for (long r = 1; r <= FLIPS; r++)
		if (marked[r] != admitted[r] && !wrong++)
			first_wrong = r;
	CHECK(!wrong, "%ld of %d rounds recorded the wrong workers; first: round %ld recorded %#x, admitted %#x",
	      wrong, FLIPS, first_wrong, marked[first_wrong], admitted[first_wrong]);
	snprintf(detail, sizeof(detail),
		 "%d flips of comm and process-set filters under %d workers: every round exact",
		 FLIPS, FLIP_WORKERS);
	munmap(flip_sh, sizeof(*flip_sh));
	b->ops->close(b);
	return 0;
}

/*
 * The device node's mode is not the only gate: a caller without CAP_PERFMON
 * (or CAP_SYS_ADMIN) gets EPERM from open, ioctl and mmap, even with the node
 * opened up and with a descriptor root handed it.
 */
static int test_capability(void)
{
	struct syscap_kmod_info info;
	int fd, st;
	pid_t pid;

	fd = open(SYSCAP_KMOD_DEV, O_RDWR);
	CHECK(fd >= 0, "open as root: %s", strerror(errno));
	CHECK(!ioctl(fd, SYSCAP_IOC_GET_INFO, &info), "GET_INFO as root: %s", strerror(errno));
	CHECK(!chmod(SYSCAP_KMOD_DEV, 0666), "chmod: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		void *p;
		int fd2;

		/* leaving uid 0 clears every capability */
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(10);
		if (ioctl(fd, SYSCAP_IOC_GET_INFO, &info) == 0 || errno != EPERM)
			_exit(11);
		if (ioctl(fd, SYSCAP_IOC_START) == 0 || errno != EPERM)
			_exit(12);
		p = mmap(NULL, info.page_size, PROT_READ, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED || errno != EPERM)
			_exit(13);
		fd2 = open(SYSCAP_KMOD_DEV, O_RDWR);
		if (fd2 >= 0 || errno != EPERM)
			_exit(14);
		_exit(0);
	}
	st = -1;
	if (pid > 0)
		waitpid(pid, &st, 0);
	chmod(SYSCAP_KMOD_DEV, 0600);
	CHECK(!ioctl(fd, SYSCAP_IOC_GET_INFO, &info), "GET_INFO as root afterwards: %s",
	      strerror(errno));
	close(fd);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "unprivileged caller: step %d was not refused with EPERM (10 setuid, 11 ioctl, 12 START, 13 mmap, 14 open)",
	      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	snprintf(detail, sizeof(detail),
		 "uid 65534 with root's fd and a 0666 node: ioctl, mmap and open EPERM");
	return 0;
}

/*
 * One run of /edge_syscalls ARGS traced alone (comm filter, syscall set
 * nrs): its exit status and first output line; the records in c, the
 * counters in t.
 */
static int run_edge(const char *mode, const char *n, int nr, struct collector *c,
		    struct totals *t, int *status, char *out, size_t outlen)
{
	static const char *const comm[] = { "edge_syscalls" };
	struct syscap_backend *b = open_backend(1 << 20);
	int p[2], nrs[] = { nr };
	ssize_t len = 0;
	pid_t pid;

	if (!b)
		return 1;
	collector_init(c);
	CHECK(!pipe(p), "pipe");
	CHECK(!set_filter(b, SYSCAP_FILTER_COMM | SYSCAP_FILTER_SYSCALLS, nrs, 1, comm, 1),
	      "%s", detail);
	CHECK(!b->ops->start(b), "start");
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execl("/edge_syscalls", "edge_syscalls", mode, n, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (ssize_t r; (r = read(p[0], out + len, outlen - 1 - len)) > 0;)
		len += r;
	out[len] = '\0';
	close(p[0]);
	CHECK(pid > 0 && waitpid(pid, status, 0) == pid, "waitpid");
	CHECK(!b->ops->stop(b), "stop");
	drain(b, c);
	if (read_totals(b, t))
		return 1;
	b->ops->close(b);
	CHECK(t->drops == 0 && !c->incomplete, "%s: drops %llu, incomplete: %s", mode,
	      (unsigned long long)t->drops, c->first_incomplete);
	return 0;
}

#define EDGE_N	25

/*
 * Syscalls at the edges of what a tracer sees (tests/capture_lib/workloads/
 * edge_syscalls.c): seccomp-denied calls never reach sys_enter; numbers
 * outside the table; 32-bit calls; a call cut off by its thread's death.
 */
static int test_edge_syscalls(void)
{
	uint64_t raw_1000 = 0, raw_minus1 = 0;
	char out[64], compat[64] = "no 32-bit syscalls here";
	struct collector c;
	struct totals t;
	size_t n = 0;
	int st;

	if (run_edge("seccomp", "25", SYS_getppid, &c, &t, &st, out, sizeof(out)))
		return 1;
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "seccomp workload failed (%#x)", st);
	CHECK(t.calls[SYS_getppid] == EDGE_N && t.errors[SYS_getppid] == EDGE_N,
	      "seccomp-denied getppid: %llu calls %llu errors, want %d/%d",
	      (unsigned long long)t.calls[SYS_getppid], (unsigned long long)t.errors[SYS_getppid],
	      EDGE_N, EDGE_N);
	for (size_t i = 0; i < c.n; i++)
		if (c.recs[i].ev.kind == SYSCAP_EV_SYSCALL && c.recs[i].ev.ret == -EPERM &&
		    (c.recs[i].ev.flags & SYSCAP_F_NOENTRY) && !c.recs[i].ev.dur_ns)
			n++;
	CHECK(n == EDGE_N, "%zu NOENTRY records of denied getppid, want %d", n, EDGE_N);

	if (run_edge("outofrange", "25", SYSCAP_NR_OTHER, &c, &t, &st, out, sizeof(out)))
		return 1;
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "outofrange workload failed (%#x)", st);
	CHECK(t.calls[SYSCAP_NR_OTHER] == 2 * EDGE_N && t.errors[SYSCAP_NR_OTHER] == 2 * EDGE_N,
	      "out-of-table numbers: %llu calls %llu errors, want %d/%d",
	      (unsigned long long)t.calls[SYSCAP_NR_OTHER],
	      (unsigned long long)t.errors[SYSCAP_NR_OTHER], 2 * EDGE_N, 2 * EDGE_N);
	for (size_t i = 0; i < c.n; i++) {
		if (c.recs[i].ev.kind != SYSCAP_EV_SYSCALL)
			continue;
		raw_1000 += c.recs[i].ev.raw_nr == 1000;
		raw_minus1 += c.recs[i].ev.raw_nr == 0xffffffffU;
	}
	CHECK(raw_1000 == EDGE_N && raw_minus1 == EDGE_N, "raw numbers: 1000 x%llu, -1 x%llu",
	      (unsigned long long)raw_1000, (unsigned long long)raw_minus1);

	if (run_edge("compat", "25", SYSCAP_NR_COMPAT, &c, &t, &st, out, sizeof(out)))
		return 1;
	CHECK(WIFEXITED(st) && (!WEXITSTATUS(st) || WEXITSTATUS(st) == 3),
	      "compat workload failed (%#x)", st);
	if (!WEXITSTATUS(st)) {
		size_t ends = 0;

		n = 0;
		for (size_t i = 0; i < c.n; i++) {
			const struct syscap_event *ev = &c.recs[i].ev;

			if (ev->kind != SYSCAP_EV_SYSCALL || !(ev->flags & SYSCAP_F_COMPAT))
				continue;
			n += ev->raw_nr == 20;
			/* it ends with the 32-bit exit_group, which never returns */
			ends += ev->raw_nr == 252 && (ev->flags & SYSCAP_F_NORETURN);
		}
		CHECK(t.calls[SYSCAP_NR_COMPAT] == EDGE_N + 1 && !t.errors[SYSCAP_NR_COMPAT] &&
		      n == EDGE_N && ends == 1,
		      "32-bit getpid and exit_group: %llu calls %llu errors, %zu + %zu records",
		      (unsigned long long)t.calls[SYSCAP_NR_COMPAT],
		      (unsigned long long)t.errors[SYSCAP_NR_COMPAT], n, ends);
		snprintf(compat, sizeof(compat), "%d 32-bit getpid and exit_group", EDGE_N);
	}

	if (run_edge("interrupted", "0", SYS_read, &c, &t, &st, out, sizeof(out)))
		return 1;
	CHECK(WIFEXITED(st) && !WEXITSTATUS(st), "interrupted workload failed (%#x)", st);
	n = 0;
	for (size_t i = 0; i < c.n; i++)
		n += c.recs[i].ev.kind == SYSCAP_EV_SYSCALL &&
		     c.recs[i].ev.tid == (uint32_t)atoi(out) && c.recs[i].ev.ret == -512;
	CHECK(n == 1 && !t.errors[SYS_read], "cut-off read: %zu records with -ERESTARTSYS, %llu errors",
	      n, (unsigned long long)t.errors[SYS_read]);
	snprintf(detail, sizeof(detail),
		 "%d seccomp-denied, %d out-of-table, %s, one cut-off read: exact", EDGE_N,
		 2 * EDGE_N, compat);
	return 0;
}

static int test_loss_accounting(void)
{
	/* one page per CPU holds 42 records: most of the flood is dropped */
	if (flood(4096, 20000, 2000, "tiny"))
		return 1;
	return strstr(detail, "dropped 0;") ? failf("no drops with a tiny ring: %s", detail) : 0;
}

static int test_mmap_order(void)
{
	return flood(64 << 10, 50000, 0, "poll-driven");
}

static int test_second_open(void)
{
	struct syscap_backend *b = open_backend(1 << 20), *b2 = NULL;
	struct run r = { .w = { { getppid_workload, 777, "after2nd" } },
			 .flags = SYSCAP_FILTER_PIDS, .pid_rule = SYSCAP_PID_INCLUDE };
	struct collector c;
	struct totals t;
	char err[256];
	int fd, ret;

	if (!b)
		return 1;
	fd = open(SYSCAP_KMOD_DEV, O_RDWR);
	CHECK(fd < 0 && errno == EBUSY, "second open: fd %d errno %d, want EBUSY", fd, errno);
	ret = syscap_kmod_open(&b2, 0, err, sizeof(err));
	CHECK(ret == -EBUSY && strstr(err, "in use"), "second backend: %d %s", ret, err);
	if (trace_run(b, &r, &c, &t))
		return 1;
	CHECK(t.calls[SYS_getppid] == 777 && count_recs(&c, SYSCAP_EV_SYSCALL, SYS_getppid, 0, 0) == 777,
	      "first open after a refused second: %llu counted", (unsigned long long)t.calls[SYS_getppid]);
	b->ops->close(b);
	b = open_backend(0);
	CHECK(b, "reopen after close: %s", detail);
	b->ops->close(b);
	snprintf(detail, sizeof(detail), "second open EBUSY; first served 777/777; reopen works");
	return 0;
}

static int test_mmap_rules(void)
{
	struct syscap_backend *b = open_backend(16384);
	struct syscap_kmod_ring req = { 8192, 0 };
	struct syscap_kmod_info info;
	int fd, page = getpagesize();
	void *p;

	if (!b)
		return 1;
	fd = b->wait_fd;
	CHECK(!ioctl(fd, SYSCAP_IOC_GET_INFO, &info), "GET_INFO");
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, page);
	CHECK(p == MAP_FAILED, "producer page mapped writable");
	p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p == MAP_FAILED, "consumer + producer pages mapped writable");
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * page);
	CHECK(p == MAP_FAILED, "data page mapped writable");
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 2 * page);
	CHECK(p != MAP_FAILED, "data page read-only: %s", strerror(errno));
	CHECK(mprotect(p, page, PROT_READ | PROT_WRITE) != 0, "mprotect made data writable");
	munmap(p, page);
	p = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED, fd, (off_t)info.cpu_stride - page);
	CHECK(p == MAP_FAILED, "a mapping across two CPU windows");
	p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, (off_t)info.cpu_stride * info.nr_cpu_ids);
	CHECK(p == MAP_FAILED, "a mapping past the last CPU");
	CHECK(ioctl(fd, SYSCAP_IOC_SET_RING, &req) && errno == EBUSY, "SET_RING while mapped");
	req.size = 12288;
	CHECK(ioctl(fd, SYSCAP_IOC_SET_RING, &req) && errno == EINVAL, "SET_RING not a power of 2");
	CHECK(ioctl(fd, _IOW(SYSCAP_IOC_MAGIC, 99, int), &req) && errno == ENOTTY, "unknown ioctl");
	b->ops->close(b);
	snprintf(detail, sizeof(detail), "RW refused outside the consumer page; windows enforced");
	return 0;
}

/* ------------------------------------------------------------ robustness */

/*
 * Leak detection: /proc/meminfo for vmalloc, per-CPU and page allocations
 * (free pages: MemFree plus the per-CPU lists' pages from /proc/zoneinfo),
 * and the active objects of every kmalloc cache from /proc/slabinfo (a leak
 * of one small object per cycle shows there as cycles objects).
 */
#define MAX_CACHES 512

struct meminfo {
	long slab_unreclaim, vmalloc_used, percpu, mem_free;
	long pcp_free;		/* free pages on per-CPU lists, kB */
	long shmem, reclaimable, kernel_stack, page_tables;
	int ncache;
	struct { char name[40]; long active, per_slab; } cache[MAX_CACHES];
};

static void read_meminfo(struct meminfo *m)
{
	char line[512];
	FILE *f;

	/* let RCU callbacks (kfree_rcu) run, then drop what the kernel only
	 * caches (dentries of removed /dev and /sys entries, page cache) */
	sync();
	usleep(500000);
	f = fopen("/proc/sys/vm/drop_caches", "w");
	if (f) {
		fputs("3\n", f);
		fclose(f);
	}
	usleep(200000);
	memset(m, 0, sizeof(*m));
	f = fopen("/proc/meminfo", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			sscanf(line, "SUnreclaim: %ld", &m->slab_unreclaim);
			sscanf(line, "VmallocUsed: %ld", &m->vmalloc_used);
			sscanf(line, "Percpu: %ld", &m->percpu);
			sscanf(line, "MemFree: %ld", &m->mem_free);
			sscanf(line, "Shmem: %ld", &m->shmem);
			sscanf(line, "SReclaimable: %ld", &m->reclaimable);
			sscanf(line, "KernelStack: %ld", &m->kernel_stack);
			sscanf(line, "PageTables: %ld", &m->page_tables);
		}
		fclose(f);
	}
	/*
	 * Pages freed onto a CPU's per-CPU list are free but not in MemFree
	 * until the list drains: zoneinfo lists each zone's per-CPU "count".
	 */
	f = fopen("/proc/zoneinfo", "r");
	if (f) {
		long pages = 0, n;

		while (fgets(line, sizeof(line), f))
			if (sscanf(line, " count: %ld", &n) == 1)
				pages += n;
		fclose(f);
		m->pcp_free = pages * (getpagesize() / 1024);
	}
	f = fopen("/proc/slabinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && m->ncache < MAX_CACHES) {
		char name[64];
		long active, num, size, per_slab = 0;

		if (sscanf(line, "%63s %ld %ld %ld %ld", name, &active, &num, &size, &per_slab) >= 2 &&
		    !strncmp(name, "kmalloc-", 8)) {
			snprintf(m->cache[m->ncache].name, sizeof(m->cache[0].name), "%.39s", name);
			m->cache[m->ncache].per_slab = per_slab;
			m->cache[m->ncache++].active = active;
		}
	}
	fclose(f);
}

/*
 * Fails when something grew; describes the deltas in out either way.
 * Limits: a kmalloc cache may grow by max_objs objects, or by one slab's
 * objects where a slab holds more (SLUB counts whole per-CPU slabs as
 * active: up to 128 objects of noise per cache were seen, and once on 6.12
 * a whole new slab of kmalloc-16, 256 objects, in a run with no leak);
 * free pages, with those on the per-CPU lists, may fall by 8 MiB. MemFree
 * alone swung by 6 to 34 MiB between runs, almost all of it pages moving
 * between the free lists and the per-CPU ones; with them counted the swing
 * was under 200 kB. The load/unload test uses 1 MiB rings, so a leaked ring
 * is 2 MiB per cycle.
 */
static int check_leaks(const struct meminfo *a, const struct meminfo *b, long max_objs,
		       char *out, size_t outlen)
{
	long worst = 0, worst_limit = max_objs, over = 0;
	const char *worst_name = "-";

	for (int i = 0; i < b->ncache; i++)
		for (int j = 0; j < a->ncache; j++) {
			long grew = b->cache[i].active - a->cache[j].active;
			long limit = b->cache[i].per_slab > max_objs ? b->cache[i].per_slab : max_objs;

			if (strcmp(a->cache[j].name, b->cache[i].name))
				continue;
			if (grew >= limit)
				over = 1;
			if (grew - limit > worst - worst_limit) {
				worst = grew;
				worst_limit = limit;
				worst_name = b->cache[i].name;
			}
		}
	snprintf(out, outlen,
		 "SUnreclaim %+ld kB, VmallocUsed %+ld kB, Percpu %+ld kB, free %+ld kB (MemFree %+ld, per-CPU lists %+ld; Shmem %+ld, SReclaimable %+ld, KernelStack %+ld, PageTables %+ld), most grown kmalloc cache %s %+ld objects (limit %ld)",
		 b->slab_unreclaim - a->slab_unreclaim, b->vmalloc_used - a->vmalloc_used,
		 b->percpu - a->percpu,
		 (b->mem_free + b->pcp_free) - (a->mem_free + a->pcp_free),
		 b->mem_free - a->mem_free, b->pcp_free - a->pcp_free,
		 b->shmem - a->shmem, b->reclaimable - a->reclaimable,
		 b->kernel_stack - a->kernel_stack, b->page_tables - a->page_tables,
		 worst_name, worst, worst_limit);
	return b->slab_unreclaim - a->slab_unreclaim >= 1024 ||
	       b->vmalloc_used - a->vmalloc_used >= 256 || b->percpu > a->percpu ||
	       (a->mem_free + a->pcp_free) - (b->mem_free + b->pcp_free) >= 8192 ||
	       over;
}

static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static int quick_check(const char *when)
{
	struct syscap_backend *b = open_backend(1 << 16);
	struct run r = { .w = { { getppid_workload, 321, "check" } },
			 .flags = SYSCAP_FILTER_PIDS, .pid_rule = SYSCAP_PID_INCLUDE };
	struct collector c;
	struct totals t;

	if (!b || trace_run(b, &r, &c, &t))
		return 1;
	CHECK(t.calls[SYS_getppid] == 321, "%s: getppid %llu, want 321", when,
	      (unsigned long long)t.calls[SYS_getppid]);
	b->ops->close(b);
	return 0;
}

static int test_ioctl_fuzz(long iterations)
{
	static const unsigned long cmds[] = {
		SYSCAP_IOC_GET_INFO, SYSCAP_IOC_SET_RING, SYSCAP_IOC_SET_FILTER, SYSCAP_IOC_SET_PID,
		SYSCAP_IOC_READ_STATS, SYSCAP_IOC_START, SYSCAP_IOC_STOP, SYSCAP_IOC_SET_MODE,
		SYSCAP_IOC_READ_COUNTS, SYSCAP_IOC_FORGET_COUNT, SYSCAP_IOC_SET_SAMPLE_PERIOD,
		SYSCAP_IOC_SAMPLE_WINDOW, SYSCAP_IOC_SET_ARGS, SYSCAP_IOC_SET_CLOCK,
		SYSCAP_IOC_GET_CLOCK,
	};
	const unsigned int ncmds = sizeof(cmds) / sizeof(cmds[0]);
	long page = getpagesize(), ok = 0, maps = 0;
	static struct meminfo before, after;
	char msg[512];
	int leak;
	uint8_t *buf, *edge;
	int fd;

	rnd_state ^= (uint64_t)time(NULL);
	if (quick_check("before"))
		return 1;
	read_meminfo(&before);
	/* buf: a random-filled area; edge: the last bytes before a hole */
	buf = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED, "mmap");
	munmap(buf + 3 * page, page);
	edge = buf + 3 * page;
	fd = open(SYSCAP_KMOD_DEV, O_RDWR);
	CHECK(fd >= 0, "open: %s", strerror(errno));
	for (long i = 0; i < iterations; i++) {
		unsigned long cmd;
		uint64_t r = rnd();
		void *arg;

		if (i % 4096 == 0) {
			/* a new open now and then: release with whatever state */
			close(fd);
			fd = open(SYSCAP_KMOD_DEV, O_RDWR);
			CHECK(fd >= 0, "reopen: %s", strerror(errno));
		}
		for (int j = 0; j < 3 * page / 8; j++)
			((uint64_t *)buf)[j] = (j + i) % 7 ? rnd() : rnd() & 0xffff;
		switch (r % 4) {
		case 0:
			cmd = cmds[(r >> 8) % ncmds];
			break;
		case 1:	/* a real command with another size or direction */
			cmd = cmds[(r >> 8) % ncmds] ^ ((rnd() & 0x3fff) << 16);
			break;
		case 2:
			cmd = (SYSCAP_IOC_MAGIC << 8) | ((r >> 8) & 0xff) | ((rnd() & 0xffff) << 16);
			break;
		default:
			cmd = (uint32_t)rnd();
		}
		switch ((r >> 32) % 8) {
		case 0:
			arg = NULL;
			break;
		case 1:
			arg = (void *)(uintptr_t)rnd();
			break;
		case 2:
			arg = (void *)(uintptr_t)0xffff888000000000ULL;	/* kernel */
			break;
		case 3:
			arg = edge - (rnd() % 256);	/* runs into the hole */
			break;
		case 4:
			arg = edge;	/* unmapped */
			break;
		default:
			arg = buf + (rnd() % page);
		}
		/* a valid stats request now and then, with random sizes */
		if (cmd == SYSCAP_IOC_READ_STATS && arg == buf) {
			struct syscap_kmod_stats *s = (void *)buf;

			s->buf = (uint64_t)(uintptr_t)(buf + page);
			s->entry_size = rnd() % 3 ? sizeof(struct syscap_cpu_stats) : (uint32_t)rnd();
			s->ncpu = (uint32_t)(rnd() % 4);
		}
		/* valid modes, windows and argument switches now and then:
		 * sampled mode running, its entry probe attached and removed at
		 * random, records with and without arguments, under each clock */
		if ((cmd == SYSCAP_IOC_SET_MODE || cmd == SYSCAP_IOC_SAMPLE_WINDOW ||
		     cmd == SYSCAP_IOC_SET_ARGS || cmd == SYSCAP_IOC_SET_CLOCK) &&
		    (uint8_t *)arg >= buf && (uint8_t *)arg < buf + page) {
			uint32_t v = (uint32_t)(rnd() % 4);

			memcpy(arg, &v, sizeof(v));
		}
		if (ioctl(fd, cmd, arg) == 0)
			ok++;
		if (i % 16 == 0) {
			size_t len = (size_t)((rnd() % 8) + 1) * page;
			off_t off = (off_t)((rnd() % 64) * page);
			int prot = rnd() % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
			void *p = mmap(NULL, len, prot, MAP_SHARED, fd, off);

			if (p != MAP_FAILED) {
				maps++;
				munmap(p, len);
			}
		}
	}
	ioctl(fd, SYSCAP_IOC_STOP);
	close(fd);
	munmap(buf, 3 * page);
	if (quick_check("after"))
		return 1;
	read_meminfo(&after);
	leak = check_leaks(&before, &after, 256, msg, sizeof(msg));
	snprintf(detail, sizeof(detail), "%s%ld ioctls (%ld succeeded), %ld mmaps; %s",
		 leak ? "leak? " : "", iterations, ok, maps, msg);
	if (leak)
		return 1;
	return 0;
}

static int flood_forever(long unused)
{
	(void)unused;
	for (;;) {
		long fd = syscall(SYS_openat, AT_FDCWD, "/", O_RDONLY);

		syscall(SYS_getppid, MAGIC, 1, 0, ~0L);
		if (fd >= 0)
			syscall(SYS_close, fd);
	}
	return 0;
}

static int module_cycle(int modfd, int capture)
{
	struct syscap_backend *b;

	if (syscall(SYS_finit_module, modfd, "ring_size=1048576", 0))
		return failf("finit_module: %s", strerror(errno));
	if (capture) {
		b = open_backend(0);
		if (!b)
			return 1;
		if (set_filter(b, 0, NULL, 0, NULL, 0))
			return 1;
		if (b->ops->start(b))
			return failf("start");
		usleep(1000);
		if (capture == 2)
			b->ops->stop(b);	/* else release stops */
		b->ops->close(b);
	}
	for (int tries = 0; syscall(SYS_delete_module, "syscap", O_NONBLOCK); tries++) {
		if (errno != EAGAIN && errno != EBUSY)
			return failf("delete_module: %s", strerror(errno));
		if (tries > 1000)
			return failf("delete_module: still busy after 1 s");
		usleep(1000);
	}
	return 0;
}

static int test_load_unload(long cycles)
{
	static struct meminfo before, after;
	char msg[512];
	struct child fl[2];
	uint64_t t0;
	int modfd, leak;

	modfd = open("/syscap.ko", O_RDONLY | O_CLOEXEC);
	CHECK(modfd >= 0, "/syscap.ko: %s", strerror(errno));
	/* start unloaded; one warm-up cycle so first-use allocations settle */
	syscall(SYS_delete_module, "syscap", O_NONBLOCK);
	if (module_cycle(modfd, 2))
		return 1;
	read_meminfo(&before);
	fl[0] = spawn(flood_forever, 0, "flood1");
	fl[1] = spawn(flood_forever, 0, "flood2");
	go(&fl[0]);
	go(&fl[1]);
	t0 = now_ns();
	for (long i = 0; i < cycles; i++) {
		if (module_cycle(modfd, (int)(i % 3))) {
			kill(fl[0].pid, SIGKILL);
			kill(fl[1].pid, SIGKILL);
			return failf("cycle %ld: %s", i, detail);
		}
	}
	t0 = now_ns() - t0;
	kill(fl[0].pid, SIGKILL);
	kill(fl[1].pid, SIGKILL);
	reap(&fl[0]);
	reap(&fl[1]);
	read_meminfo(&after);
	CHECK(access(SYSCAP_KMOD_DEV, F_OK) != 0, "/dev/syscap left after unload");
	/* two thirds of the cycles open the device: a leak per open shows */
	leak = check_leaks(&before, &after, cycles / 2 > 160 ? cycles / 2 : 160, msg, sizeof(msg));
	snprintf(detail, sizeof(detail),
		 "%s%ld cycles in %.1f s under a 2-process flood (1/3 idle, 1/3 stop+close, 1/3 close while running); %s",
		 leak ? "leak? " : "", cycles, t0 / 1e9, msg);
	if (leak)
		return 1;
	/* leave it loaded for what follows */
	if (syscall(SYS_finit_module, modfd, "", 0))
		return failf("final load: %s", strerror(errno));
	close(modfd);
	return 0;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	long arg = argc > 2 ? atol(argv[2]) : 0;
	int ret;

	if (argc < 2) {
		fprintf(stderr, "usage: kmodtest TEST [ARG]\n");
		return 2;
	}
	test_name = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(test_name, "exact_counts"))
		ret = test_exact_counts();
	else if (!strcmp(test_name, "process_tree"))
		ret = test_process_tree();
	else if (!strcmp(test_name, "clock"))
		ret = test_clock();
	else if (!strcmp(test_name, "syscall_filter"))
		ret = test_syscall_filter();
	else if (!strcmp(test_name, "failed_only"))
		ret = test_failed_only();
	else if (!strcmp(test_name, "comm_filter"))
		ret = test_comm_filter();
	else if (!strcmp(test_name, "self_exclusion"))
		ret = test_self_exclusion();
	else if (!strcmp(test_name, "filter_flips"))
		ret = test_filter_flips();
	else if (!strcmp(test_name, "count_mode"))
		ret = test_count_mode();
	else if (!strcmp(test_name, "sampled_mode"))
		ret = test_sampled_mode();
	else if (!strcmp(test_name, "edge_syscalls"))
		ret = test_edge_syscalls();
	else if (!strcmp(test_name, "capability"))
		ret = test_capability();
	else if (!strcmp(test_name, "loss_accounting"))
		ret = test_loss_accounting();
	else if (!strcmp(test_name, "mmap_order"))
		ret = test_mmap_order();
	else if (!strcmp(test_name, "second_open"))
		ret = test_second_open();
	else if (!strcmp(test_name, "mmap_rules"))
		ret = test_mmap_rules();
	else if (!strcmp(test_name, "ioctl_fuzz"))
		ret = test_ioctl_fuzz(arg ? arg : 100000);
	else if (!strcmp(test_name, "load_unload"))
		ret = test_load_unload(arg ? arg : 1000);
	else
		ret = failf("unknown test");
	printf("SYSCAP-TEST %s %s %s\n", test_name, ret ? "FAIL" : "PASS", detail);
	return ret;
}
