/*
 * Count mode's consumer half (counts.c) against a backend whose kernel map
 * is an array here: differences between polls, wrap-around, and removal of
 * the counters of processes that are gone (a real child, reaped).
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "internal.h"

#define MAXK 4096

struct fake {
	struct syscap_count_key keys[MAXK];
	struct syscap_count_val vals[MAXK];
	int live[MAXK];
	int n;
	int forgotten;
};

static int fake_read(struct syscap_backend *b, syscap_count_fn fn, void *ctx)
{
	struct fake *f = b->priv;

	for (int i = 0; i < f->n; i++)
		if (f->live[i])
			fn(ctx, &f->keys[i], &f->vals[i]);
	return 0;
}

static int fake_forget(struct syscap_backend *b, const struct syscap_count_key *k)
{
	struct fake *f = b->priv;

	for (int i = 0; i < f->n; i++)
		if (f->live[i] && f->keys[i].tgid == k->tgid && f->keys[i].nr == k->nr) {
			f->live[i] = 0;
			f->forgotten++;
		}
	return 0;
}

static const struct syscap_backend_ops fake_ops = {
	.read_counts = fake_read,
	.forget_count = fake_forget,
};

static struct syscap_count_val *counter(struct fake *f, uint32_t tgid, uint32_t nr)
{
	for (int i = 0; i < f->n; i++)
		if (f->live[i] && f->keys[i].tgid == tgid && f->keys[i].nr == nr)
			return &f->vals[i];
	f->keys[f->n] = (struct syscap_count_key){ .tgid = tgid, .nr = nr };
	f->vals[f->n] = (struct syscap_count_val){ 0, 0 };
	f->live[f->n] = 1;
	return &f->vals[f->n++];
}

static const struct syscap_snap_row *row(const struct syscap_snapshot *s, uint32_t tgid,
					 uint32_t nr)
{
	for (uint32_t i = 0; i < s->nrows; i++)
		if (s->rows[i].tgid == tgid && s->rows[i].nr == nr)
			return &s->rows[i];
	return NULL;
}

static struct fake fk;
static struct syscap_backend be = { .name = "fake", .ops = &fake_ops, .ncpu = 1, .priv = &fk };

static void test_differences_between_polls(void)
{
	struct count_table *t = count_table_new();
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	uint32_t me = (uint32_t)getpid();
	const struct syscap_snap_row *r;

	memset(&fk, 0, sizeof(fk));
	syscap_agg_set_timed(a, 0);
	*counter(&fk, me, 39) = (struct syscap_count_val){ 100, 0 };
	*counter(&fk, me, 2) = (struct syscap_count_val){ 10, 4 };
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 110);
	CHECK_EQ(s.latency, 0);
	r = row(&s, me, 2);
	CHECK(r && r->count == 10 && r->errors == 4 && r->total_ns == 0);

	/* only what happened since the previous poll */
	counter(&fk, me, 39)->calls += 7;
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 7);
	CHECK_EQ(s.nrows, 1);
	r = row(&s, me, 39);
	CHECK(r && r->count == 7);

	/* a counter that wrapped still gives the right difference */
	*counter(&fk, me, 2) = (struct syscap_count_val){ UINT64_MAX - 1, 0 };
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	counter(&fk, me, 2)->calls += 5;	/* wraps to 3 */
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	r = row(&s, me, 2);
	CHECK(r && r->count == 5);
	CHECK_EQ(fk.forgotten, 0);	/* this process is alive */
	count_table_free(t);
	syscap_agg_free(a);
}

static void test_gone_processes_are_read_once_more_then_removed(void)
{
	struct count_table *t = count_table_new();
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	pid_t child = fork();
	int status;

	if (child == 0)
		_exit(0);
	memset(&fk, 0, sizeof(fk));
	*counter(&fk, (uint32_t)child, 1) = (struct syscap_count_val){ 3, 0 };
	*counter(&fk, (uint32_t)child, 60) = (struct syscap_count_val){ 1, 0 };
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 0);	/* no exit seen, no sweep yet */

	/* its last increments land, it exits; the exit is reported while it is
	 * still a zombie: kept until reaped */
	counter(&fk, (uint32_t)child, 1)->calls += 2;
	usleep(20000);
	count_table_exited(t, (uint32_t)child);
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 0);
	waitpid(child, &status, 0);
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 2);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 6);		/* 3 + 1, then the final 2: nothing lost */

	/* the pid comes back as a new process: it starts from zero */
	*counter(&fk, (uint32_t)child, 1) = (struct syscap_count_val){ 4, 0 };
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 4);
	count_table_free(t);
	syscap_agg_free(a);
}

static void test_sweep_finds_processes_whose_exit_was_not_seen(void)
{
	struct count_table *t = count_table_new();
	struct syscap_agg *a = syscap_agg_new();
	pid_t child = fork();
	int status;

	if (child == 0)
		_exit(0);
	waitpid(child, &status, 0);
	memset(&fk, 0, sizeof(fk));
	*counter(&fk, (uint32_t)child, 1) = (struct syscap_count_val){ 1, 0 };
	for (int i = 0; i < 32 && !fk.forgotten; i++)
		CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 1);
	count_table_free(t);
	syscap_agg_free(a);
}

static void test_many_keys_grow_the_table(void)
{
	struct count_table *t = count_table_new();
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	uint32_t me = (uint32_t)getpid();

	memset(&fk, 0, sizeof(fk));
	for (uint32_t nr = 0; nr < SYSCAP_MAX_SYSCALLS; nr++)
		*counter(&fk, me, nr) = (struct syscap_count_val){ nr + 1, 0 };
	for (uint32_t nr = 0; nr < 2000; nr++)
		*counter(&fk, me + 1 + nr, 0) = (struct syscap_count_val){ 1, 1 };
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(count_table_poll(t, &be, a), 0);	/* nothing new */
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, SYSCAP_MAX_SYSCALLS * (SYSCAP_MAX_SYSCALLS + 1) / 2 + 2000);
	count_table_free(t);
	syscap_agg_free(a);
}

int main(void)
{
	signal(SIGCHLD, SIG_DFL);
	test_differences_between_polls();
	test_gone_processes_are_read_once_more_then_removed();
	test_sweep_finds_processes_whose_exit_was_not_seen();
	test_many_keys_grow_the_table();
	return check_report("test_counts");
}
