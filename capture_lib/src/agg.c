// SPDX-License-Identifier: BSD-2-Clause
/*
 * Aggregation of records per process x syscall: counts, errors, total
 * latency and a log2 latency histogram, plus a process table (comm, exit)
 * fed by FORK/EXEC/EXIT records. Built for the consumer's hot loop: one
 * open-addressing table (hash.h), a last-key cache, no allocation per event.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hash.h"
#include "internal.h"
#include "syscap.h"

struct agg_entry {
	uint64_t key;			/* tgid << 32 | nr, 0 = empty */
	uint64_t count;
	uint64_t errors;
	uint64_t total_ns;		/* over the samples */
	uint64_t samples;		/* durations in total_ns and hist */
	int32_t last_errno;
	uint32_t hist[SYSCAP_HIST_BUCKETS];
};

struct proc_entry {
	uint64_t tgid;			/* the key: never 0 */
	uint32_t exited;
	uint32_t comm_known;
	char comm[SYSCAP_COMM_LEN];
};

struct syscap_agg {
	struct hash_table tab;		/* of agg_entry */
	struct agg_entry *last;		/* cache: consecutive records often match */
	struct hash_table procs;	/* of proc_entry */
	uint32_t pid_filter;
	int use_proc;
	int timed;			/* durations are measured: 1 every call's,
					 * 2 a sample's (SYSCAP_F_SAMPLED records) */
	int untimed;			/* counts without durations came in this interval */
	uint64_t events;		/* syscall records in this interval */
	uint64_t first_ns, last_ns;	/* record time span of the interval */
	uint64_t interval_start;
	/* snapshot output, reused */
	struct syscap_snap_proc *out_procs;
	struct syscap_snap_row *out_rows;
	struct syscap_snap_row *out_sys;
	uint32_t out_rcap;
	/* The snapshot's sums and histograms per syscall. sys_seen marks the
	 * syscalls the last snapshot summed: it reads and zeroes only their
	 * sums, and the next one clears only their histogram rows (a snapshot
	 * costs what its interval saw, not the size of its tables). */
	uint32_t sys_hist[SYSCAP_MAX_SYSCALLS][SYSCAP_HIST_BUCKETS];
	uint64_t sys_seen[SYSCAP_MAX_SYSCALLS / 64];
	struct sys_sum {
		uint64_t count, errors, total_ns, samples;
		int32_t last_errno;
	} sys[SYSCAP_MAX_SYSCALLS];	/* zero between snapshots */
};


static uint64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

struct syscap_agg *syscap_agg_new(void)
{
	struct syscap_agg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	if (hash_init(&a->tab, 1024, sizeof(struct agg_entry)) ||
	    hash_init(&a->procs, 256, sizeof(struct proc_entry))) {
		syscap_agg_free(a);
		return NULL;
	}
	a->interval_start = mono_now();
	a->timed = 1;
	return a;
}

void syscap_agg_free(struct syscap_agg *a)
{
	if (!a)
		return;
	hash_free(&a->tab);
	hash_free(&a->procs);
	free(a->out_procs);
	free(a->out_rows);
	free(a->out_sys);
	free(a);
}

void syscap_agg_set_pid(struct syscap_agg *a, uint32_t tgid)
{
	a->pid_filter = tgid;
}

void syscap_agg_use_proc(struct syscap_agg *a, int on)
{
	a->use_proc = on;
}

static struct agg_entry *lookup(struct syscap_agg *a, uint64_t key)
{
	if (a->last && a->last->key == key)
		return a->last;
	return a->last = hash_get(&a->tab, key);	/* NULL also clears the cache */
}

static struct proc_entry *proc_lookup(struct syscap_agg *a, uint32_t tgid, int create)
{
	if (!tgid)	/* no task has it (a damaged trace may), and 0 is no key */
		return NULL;
	return create ? hash_get(&a->procs, tgid) : hash_find(&a->procs, tgid);
}

static void add_proc_event(struct syscap_agg *a, const struct syscap_event *ev)
{
	struct proc_entry *p = proc_lookup(a, ev->tgid, 1);

	if (!p)
		return;
	switch (ev->kind) {
	case SYSCAP_EV_FORK:
		if (!p->comm_known || ev->tid == ev->tgid) {
			memcpy(p->comm, ev->proc.comm, SYSCAP_COMM_LEN);
			p->comm_known = 1;
		}
		p->exited = 0;
		break;
	case SYSCAP_EV_EXEC:
		memcpy(p->comm, ev->proc.comm, SYSCAP_COMM_LEN);
		p->comm_known = 1;
		p->exited = 0;
		break;
	case SYSCAP_EV_EXIT:
		if (!p->comm_known) {
			memcpy(p->comm, ev->proc.comm, SYSCAP_COMM_LEN);
			p->comm_known = 1;
		}
		if (ev->flags & SYSCAP_F_GROUP_DEAD)
			p->exited = 1;
		break;
	}
}

static inline void add_one(struct syscap_agg *a, const struct syscap_event *ev)
{
	struct agg_entry *e;

	if (a->pid_filter && ev->tgid != a->pid_filter)
		return;
	if (ev->kind != SYSCAP_EV_SYSCALL) {
		add_proc_event(a, ev);
		return;
	}
	if (ev->nr >= SYSCAP_MAX_SYSCALLS)	/* the probes never write one; a damaged trace may */
		return;
	e = lookup(a, (uint64_t)ev->tgid << 32 | ev->nr | 1ULL << 31);
	if (!e)
		return;
	e->samples++;
	e->total_ns += ev->dur_ns;
	e->hist[syscap_ns_bucket(ev->dur_ns)]++;
	if (ev->flags & SYSCAP_F_SAMPLED)
		return;		/* its call is in the counts already */
	e->count++;
	if (syscap_is_error(ev->ret)) {
		e->errors++;
		e->last_errno = (int32_t)-ev->ret;
	}
	a->events++;
	if (!a->first_ns || ev->ts_ns < a->first_ns)
		a->first_ns = ev->ts_ns;
	if (ev->ts_ns + ev->dur_ns > a->last_ns)
		a->last_ns = ev->ts_ns + ev->dur_ns;
}

void syscap_agg_add(struct syscap_agg *a, const struct syscap_event *ev, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		add_one(a, &ev[i]);
}

uint32_t syscap_agg_add_until(struct syscap_agg *a, const struct syscap_event *ev, uint32_t n,
			      uint64_t until_ns)
{
	uint32_t i;

	for (i = 0; i < n && ev[i].ts_ns < until_ns; i++)
		add_one(a, &ev[i]);
	return i;
}

void syscap_agg_set_timed(struct syscap_agg *a, int timed)
{
	a->timed = timed;
}

void syscap_agg_add_count(struct syscap_agg *a, uint32_t tgid, uint32_t nr, uint64_t calls,
			  uint64_t errors)
{
	struct agg_entry *e;

	if ((a->pid_filter && tgid != a->pid_filter) || !calls || nr >= SYSCAP_MAX_SYSCALLS)
		return;
	e = lookup(a, (uint64_t)tgid << 32 | nr | 1ULL << 31);
	if (!e)
		return;
	e->count += calls;
	e->errors += errors;
	a->events += calls;
	a->untimed = 1;
}

/* Quantile q (0..1) of a log2 histogram: interpolated inside the bucket. */
static uint64_t quantile(const uint32_t *hist, uint64_t total, double q)
{
	uint64_t rank, seen = 0;

	if (!total)
		return 0;
	rank = (uint64_t)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	for (unsigned int b = 0; b < SYSCAP_HIST_BUCKETS; b++) {
		if (seen + hist[b] > rank) {
			uint64_t lo = b ? 1ULL << (b - 1) : 0;
			uint64_t hi = b ? (b >= 64 ? UINT64_MAX : 1ULL << b) : 1;
			double frac = (double)(rank - seen + 1) / (double)hist[b];

			return lo + (uint64_t)(frac * (double)(hi - lo));
		}
		seen += hist[b];
	}
	return 0;
}

/* Total time of count calls, from the durations of samples of them. */
static uint64_t estimate_total(uint64_t total_ns, uint64_t samples, uint64_t count)
{
	if (!samples || samples >= count)
		return total_ns;
	return (uint64_t)((double)total_ns * (double)count / (double)samples);
}

static void fill_row(struct syscap_snap_row *r, uint32_t tgid, uint32_t nr, uint64_t count,
		     uint64_t errors, uint64_t total_ns, uint64_t samples, int32_t last_errno,
		     const uint32_t *hist)
{
	r->tgid = tgid;
	r->nr = nr;
	r->count = count;
	r->errors = errors;
	r->total_ns = estimate_total(total_ns, samples, count);
	r->p50_ns = quantile(hist, samples, 0.50);
	r->p99_ns = quantile(hist, samples, 0.99);
	r->last_errno = last_errno;
	r->samples = samples > UINT32_MAX ? UINT32_MAX : (uint32_t)samples;
}

static int cmp_entry_key(const void *x, const void *y)
{
	const struct agg_entry *a = *(const struct agg_entry *const *)x;
	const struct agg_entry *b = *(const struct agg_entry *const *)y;
	uint32_t ta = a->key >> 32, tb = b->key >> 32;

	if (ta != tb)
		return ta < tb ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return (a->key & 0xffff) < (b->key & 0xffff) ? -1 : 1;
}

static int cmp_proc(const void *x, const void *y)
{
	const struct syscap_snap_proc *a = x, *b = y;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return a->tgid < b->tgid ? -1 : (a->tgid > b->tgid);
}

static int cmp_sys(const void *x, const void *y)
{
	const struct syscap_snap_row *a = x, *b = y;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return a->nr < b->nr ? -1 : (a->nr > b->nr);
}

static void read_proc_comm(uint32_t tgid, char *comm)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/comm", tgid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(comm, SYSCAP_COMM_LEN, f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
}

static int proc_alive(const void *entry)
{
	return !((const struct proc_entry *)entry)->exited;
}

int syscap_agg_snapshot(struct syscap_agg *a, struct syscap_snapshot *out)
{
	struct agg_entry **order = NULL;
	uint32_t n = 0, np = 0, ns = 0;
	uint32_t (*sys_hist)[SYSCAP_HIST_BUCKETS] = a->sys_hist;
	struct sys_sum *sys = a->sys;
	uint32_t phist[SYSCAP_HIST_BUCKETS];
	uint64_t psamples;

	memset(out, 0, sizeof(*out));
	out->start_ns = a->interval_start;
	out->end_ns = mono_now();
	out->events = a->events;
	out->latency = a->timed == 2 ? 2 : a->timed && !a->untimed;
	out->sys_hist = &a->sys_hist[0][0];

	if (a->out_rcap < a->tab.used + 1) {
		free(a->out_rows);
		a->out_rcap = a->tab.used + 1;
		a->out_rows = calloc(a->out_rcap, sizeof(*a->out_rows));
		free(a->out_procs);
		a->out_procs = calloc(a->out_rcap, sizeof(*a->out_procs));
		if (!a->out_rows || !a->out_procs) {
			a->out_rcap = 0;
			return -ENOMEM;
		}
	}
	if (!a->out_sys) {
		a->out_sys = calloc(SYSCAP_MAX_SYSCALLS, sizeof(*a->out_sys));
		if (!a->out_sys)
			return -ENOMEM;
	}
	order = malloc((a->tab.used + 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (uint32_t w = 0; w < SYSCAP_MAX_SYSCALLS / 64; w++) {
		for (uint64_t m = a->sys_seen[w]; m; m &= m - 1)
			memset(sys_hist[w * 64 + __builtin_ctzll(m)], 0, sizeof(sys_hist[0]));
		a->sys_seen[w] = 0;
	}
	for (uint32_t i = 0; i < a->tab.cap; i++) {
		struct agg_entry *e = hash_slot(&a->tab, i);

		if (e->key)
			order[n++] = e;
	}
	qsort(order, n, sizeof(*order), cmp_entry_key);

	for (uint32_t i = 0; i < n;) {
		uint32_t tgid = order[i]->key >> 32;
		struct syscap_snap_proc *p = &a->out_procs[np++];
		struct proc_entry *pe = proc_lookup(a, tgid, a->use_proc);

		memset(p, 0, sizeof(*p));
		memset(phist, 0, sizeof(phist));
		psamples = 0;
		p->tgid = tgid;
		p->first_row = i;
		if (pe && !pe->comm_known && a->use_proc) {
			read_proc_comm(tgid, pe->comm);
			pe->comm_known = 1;
		}
		if (pe) {
			memcpy(p->comm, pe->comm, SYSCAP_COMM_LEN);
			p->exited = pe->exited;
		}
		for (; i < n && (uint32_t)(order[i]->key >> 32) == tgid; i++) {
			struct agg_entry *e = order[i];
			uint32_t nr = e->key & (SYSCAP_MAX_SYSCALLS - 1);

			fill_row(&a->out_rows[i], tgid, nr, e->count, e->errors, e->total_ns,
				 e->samples, e->last_errno, e->hist);
			p->count += e->count;
			p->errors += e->errors;
			p->total_ns += a->out_rows[i].total_ns;
			psamples += e->samples;
			sys[nr].count += e->count;
			sys[nr].errors += e->errors;
			sys[nr].total_ns += e->total_ns;
			sys[nr].samples += e->samples;
			if (e->last_errno)
				sys[nr].last_errno = e->last_errno;
			a->sys_seen[nr / 64] |= 1ULL << (nr % 64);
			for (unsigned int b = 0; b < SYSCAP_HIST_BUCKETS; b++) {
				phist[b] += e->hist[b];
				sys_hist[nr][b] += e->hist[b];
			}
		}
		p->nrows = i - p->first_row;
		p->p50_ns = quantile(phist, psamples, 0.50);
		p->p99_ns = quantile(phist, psamples, 0.99);
	}
	/* Processes that only exited or exec'd in the interval show with no calls. */
	for (uint32_t i = 0; i < a->procs.cap; i++) {
		struct proc_entry *pe = hash_slot(&a->procs, i);

		if (pe->tgid && pe->exited) {
			int found = 0;

			for (uint32_t k = 0; k < np && !found; k++)
				found = a->out_procs[k].tgid == pe->tgid;
			if (!found && np < a->out_rcap) {
				struct syscap_snap_proc *p = &a->out_procs[np++];

				memset(p, 0, sizeof(*p));
				p->tgid = (uint32_t)pe->tgid;
				p->exited = 1;
				memcpy(p->comm, pe->comm, SYSCAP_COMM_LEN);
			}
		}
	}
	qsort(a->out_procs, np, sizeof(*a->out_procs), cmp_proc);
	for (uint32_t w = 0; w < SYSCAP_MAX_SYSCALLS / 64; w++) {
		for (uint64_t m = a->sys_seen[w]; m; m &= m - 1) {
			uint32_t nr = w * 64 + (uint32_t)__builtin_ctzll(m);

			if (sys[nr].count)
				fill_row(&a->out_sys[ns++], 0, nr, sys[nr].count, sys[nr].errors,
					 sys[nr].total_ns, sys[nr].samples, sys[nr].last_errno,
					 sys_hist[nr]);
			memset(&sys[nr], 0, sizeof(sys[nr]));
		}
	}
	qsort(a->out_sys, ns, sizeof(*a->out_sys), cmp_sys);

	out->procs = a->out_procs;
	out->nprocs = np;
	out->rows = a->out_rows;
	out->nrows = n;
	out->sys = a->out_sys;
	out->nsys = ns;

	/* New interval: counters restart (order lists every entry of the
	 * table); the process table keeps comms but forgets processes that
	 * have exited (they were reported once). */
	hash_clear_listed(&a->tab, (void *const *)order, n);
	free(order);
	a->last = NULL;
	a->events = 0;
	a->untimed = 0;
	a->first_ns = a->last_ns = 0;
	a->interval_start = out->end_ns;
	hash_rebuild(&a->procs, a->procs.cap, proc_alive);	/* if it fails, they stay */
	return 0;
}
