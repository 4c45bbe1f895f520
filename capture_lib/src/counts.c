// SPDX-License-Identifier: BSD-2-Clause
/*
 * Count mode's consumer half. The kernel keeps cumulative calls and errors
 * per process x syscall; each poll reads them all, hands the differences
 * since the previous poll to the aggregator, and removes the counters of
 * processes that are gone.
 *
 * A process is known by its tgid and its start time (field 22 of
 * /proc/TGID/stat), read when its first counter is seen: a tgid that comes
 * back as another process has another start time, so the two are never
 * taken for one. A process is gone when /proc/TGID is missing (its pid is
 * freed only after every thread passed its exit hooks) or shows another
 * start time (the pid was reused). The check runs before the map is read,
 * so that poll reads the final counts, and they are deleted right after.
 * The kernel's counters are keyed by tgid alone: calls a reusing process
 * makes before that poll still add to the dead one's counters (the total
 * stays exact); after it, the new process counts from zero.
 *
 * Candidates are the processes whose last thread exited (GROUP_DEAD
 * records) and, every SWEEP_EVERY polls, every process in the table (in
 * case such a record was dropped).
 *
 * In a pid namespace other than the initial one /proc does not show the
 * tgids the probe reports, so /proc says nothing about them: there a
 * process is gone one poll after its GROUP_DEAD record (time for its other
 * threads' exit hooks to finish), and there is no sweep.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "hash.h"
#include "internal.h"

#define SWEEP_EVERY	16

/* /proc/self/ns/pid's inode in the initial pid namespace (PROC_PID_INIT_INO) */
#define INIT_PID_NS_INO	0xEFFFFFFCU

struct count_entry {
	uint64_t key;			/* tgid << 32 | 1 << 31 | nr; 0 = empty */
	uint64_t calls;
	uint64_t errors;
	int gone;			/* its process is gone: delete after this poll */
};

struct proc_ident {
	uint64_t key;			/* proc_key(tgid) */
	int dead;			/* gone: its counters go after this poll */
	uint64_t start;			/* start time when first seen; 0: it was
					 * already gone then */
};

struct candidate {
	uint32_t tgid;			/* its last thread exited */
	uint32_t polls;			/* polls since (used without /proc) */
};

struct count_table {
	struct hash_table tab;		/* of count_entry */
	struct hash_table procs;	/* of proc_ident: every tgid with counters */
	struct candidate *exited;
	uint32_t nexited, cexited;
	uint32_t ndead;			/* processes found gone in this poll */
	uint32_t polls;
	int use_proc;			/* /proc shows the probe's tgids */
	count_start_fn start_of;
	void *start_ctx;
	struct syscap_agg *agg;		/* for the poll in progress */
	int err;
};

static inline uint64_t key_of(uint32_t tgid, uint32_t nr)
{
	return (uint64_t)tgid << 32 | 1ULL << 31 | nr;
}

/* A process's key: never 0, whatever tgid the kernel's map holds. */
static inline uint64_t proc_key(uint32_t tgid)
{
	return 1ULL << 32 | tgid;
}

static inline uint32_t proc_tgid(const struct proc_ident *p)
{
	return (uint32_t)p->key;
}

uint64_t count_proc_start_time(void *ctx, uint32_t tgid)
{
	char path[32], buf[1024];
	unsigned long long start;
	const char *p;
	ssize_t n;
	int fd, field;

	(void)ctx;
	snprintf(path, sizeof(path), "/proc/%u/stat", tgid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* the comm (field 2) may hold spaces and parentheses: count from its end */
	p = strrchr(buf, ')');
	for (field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return 0;
	return start ? (uint64_t)start : 1;	/* 0 means "no process" here */
}

static int in_init_pid_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 && st.st_ino == INIT_PID_NS_INO;
}

void count_table_free(struct count_table *t)
{
	if (!t)
		return;
	hash_free(&t->tab);
	hash_free(&t->procs);
	free(t->exited);
	free(t);
}

struct count_table *count_table_new(void)
{
	struct count_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	if (hash_init(&t->tab, 1024, sizeof(struct count_entry)) ||
	    hash_init(&t->procs, 256, sizeof(struct proc_ident))) {
		count_table_free(t);
		return NULL;
	}
	t->use_proc = in_init_pid_ns();
	t->start_of = count_proc_start_time;
	return t;
}

void count_table_set_identity(struct count_table *t, count_start_fn fn, void *ctx)
{
	t->start_of = fn ? fn : count_proc_start_time;
	t->start_ctx = ctx;
	t->use_proc = fn != NULL;
}

void count_table_exited(struct count_table *t, uint32_t tgid)
{
	if (t->nexited == t->cexited) {
		uint32_t ncap = t->cexited ? t->cexited * 2 : 64;
		struct candidate *na = realloc(t->exited, ncap * sizeof(*na));

		if (!na)
			return;		/* the sweep finds it */
		t->exited = na;
		t->cexited = ncap;
	}
	t->exited[t->nexited++] = (struct candidate){ .tgid = tgid };
}

/* ---- processes: tgid -> identity ------------------------------------------ */

static int proc_alive(const void *entry)
{
	return !((const struct proc_ident *)entry)->dead;
}

/* The process known as tgid; a tgid seen for the first time is identified now. */
static struct proc_ident *proc_get(struct count_table *t, uint32_t tgid)
{
	struct proc_ident *p = hash_find(&t->procs, proc_key(tgid));

	if (p)
		return p;
	p = hash_insert(&t->procs, proc_key(tgid));
	if (p)
		p->start = t->use_proc ? t->start_of(t->start_ctx, tgid) : 1;
	return p;
}

/* The process known as p no longer exists (a zombie still does). */
static int proc_gone(struct count_table *t, const struct proc_ident *p)
{
	uint64_t now = t->start_of(t->start_ctx, proc_tgid(p));

	return !p->start || now != p->start;
}

static void mark_dead(struct count_table *t, struct proc_ident *p)
{
	if (!p->dead) {
		p->dead = 1;
		t->ndead++;
	}
}

/* Mark the processes that are gone; candidates still alive (zombies) stay. */
static void find_dead(struct count_table *t)
{
	uint32_t keep = 0;

	t->ndead = 0;
	for (uint32_t i = 0; i < t->nexited; i++) {
		struct candidate *c = &t->exited[i];
		struct proc_ident *p = proc_get(t, c->tgid);

		if (!p) {
			t->err = -ENOMEM;
			t->exited[keep++] = *c;
			continue;
		}
		/* without /proc: one poll after the record, its other threads'
		 * exit hooks are long done */
		if (t->use_proc ? proc_gone(t, p) : c->polls++ >= 1)
			mark_dead(t, p);
		else
			t->exited[keep++] = *c;
	}
	t->nexited = keep;
	if (t->use_proc && ++t->polls % SWEEP_EVERY == 0) {
		for (uint32_t i = 0; i < t->procs.cap; i++) {
			struct proc_ident *p = hash_slot(&t->procs, i);

			if (p->key && !p->dead && proc_gone(t, p))
				mark_dead(t, p);
		}
	}
}

/* ---- counters: (tgid, nr) -> last reading ---------------------------------- */

static int count_kept(const void *entry)
{
	return !((const struct count_entry *)entry)->gone;
}

static void on_count(void *ctx, const struct syscap_count_key *k, const struct syscap_count_val *v)
{
	struct count_table *t = ctx;
	struct proc_ident *p = proc_get(t, k->tgid);
	struct count_entry *e = p ? hash_get(&t->tab, key_of(k->tgid, k->nr)) : NULL;

	if (!e) {
		t->err = -ENOMEM;
		return;
	}
	/* counters only grow; unsigned differences survive a wrap */
	syscap_agg_add_count(t->agg, k->tgid, k->nr, v->calls - e->calls, v->errors - e->errors);
	e->calls = v->calls;
	e->errors = v->errors;
	e->gone = p->dead;
}

int count_table_poll(struct count_table *t, struct syscap_backend *b, struct syscap_agg *agg)
{
	int ret, removed = 0;

	t->err = 0;
	find_dead(t);
	t->agg = agg;
	ret = b->ops->read_counts(b, on_count, t);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < t->tab.cap; i++) {
		struct count_entry *e = hash_slot(&t->tab, i);
		struct syscap_count_key k;

		if (!e->key || !e->gone)
			continue;
		k.tgid = (uint32_t)(e->key >> 32);
		k.nr = (uint32_t)(e->key & 0x7fffffff);
		b->ops->forget_count(b, &k);
		removed = 1;
	}
	if (removed)
		ret = hash_rebuild(&t->tab, t->tab.cap, count_kept);
	/* a dead process whose counters were all read is forgotten too: its
	 * tgid may come back as another process */
	if (!ret && t->ndead)
		ret = hash_rebuild(&t->procs, t->procs.cap, proc_alive);
	return ret ? ret : t->err;
}

