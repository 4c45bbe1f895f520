/*
 * Count mode's consumer half (counts.c) against a backend whose kernel map
 * is an array here: differences between polls, wrap-around, and removal of
 * the counters of processes that are gone (a real child, reaped), and a
 * tgid that comes back as another process.
 */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "internal.h"

#define MAXK 4096
#define SWEEP_POLLS 16	/* counts.c sweeps every process this often */

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


/* Identities for tgids that no real process has (above any pid_max). */
#define FAKE_TGID	0x7ffffff0U

static uint64_t fake_start;	/* start time of the process now at FAKE_TGID; 0: none */

static uint64_t fake_identity(void *ctx, uint32_t tgid)
{
	(void)ctx;
	return tgid == FAKE_TGID ? fake_start : 0;
}

static void test_a_reused_tgid_is_another_process(void)
{
	struct count_table *t = count_table_new();
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	int polls;

	memset(&fk, 0, sizeof(fk));
	count_table_set_identity(t, fake_identity, NULL);
	fake_start = 100;
	*counter(&fk, FAKE_TGID, 1) = (struct syscap_count_val){ 5, 0 };
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 5);

	/* it makes 2 more calls and dies; its exit record is lost, and its
	 * tgid goes to a new process before any poll: a kill(tgid, 0) would
	 * say it is alive forever. The start time says it is gone: its final
	 * counts are read and its counters removed. */
	counter(&fk, FAKE_TGID, 1)->calls += 2;
	fake_start = 200;
	for (polls = 0; polls < 32 && !fk.forgotten; polls++)
		CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 1);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 2);		/* 5 + 2 in all: nothing lost */

	/* the new process counts from zero, and is not taken for a dead one */
	*counter(&fk, FAKE_TGID, 1) = (struct syscap_count_val){ 4, 1 };
	for (polls = 0; polls < 2 * SWEEP_POLLS; polls++)
		CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 1);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 4);
	CHECK(row(&s, FAKE_TGID, 1) && row(&s, FAKE_TGID, 1)->errors == 1);

	/* it exits (record seen), is reaped, and the tgid is reused again at
	 * once: the exit is enough, the next poll removes its counters */
	counter(&fk, FAKE_TGID, 1)->calls += 1;
	count_table_exited(t, FAKE_TGID);
	fake_start = 300;
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 2);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 1);
	count_table_free(t);
	syscap_agg_free(a);
}

static void test_a_zombie_with_the_same_start_time_is_kept(void)
{
	struct count_table *t = count_table_new();
	struct syscap_agg *a = syscap_agg_new();

	memset(&fk, 0, sizeof(fk));
	count_table_set_identity(t, fake_identity, NULL);
	fake_start = 100;
	*counter(&fk, FAKE_TGID, 3) = (struct syscap_count_val){ 1, 0 };
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	count_table_exited(t, FAKE_TGID);
	for (int i = 0; i < 2 * SWEEP_POLLS; i++)
		CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 0);
	fake_start = 0;			/* reaped */
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 1);
	count_table_free(t);
	syscap_agg_free(a);
}

static void test_without_proc_a_process_goes_one_poll_after_its_exit(void)
{
	struct count_table *t = count_table_new();
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;

	memset(&fk, 0, sizeof(fk));
	count_table_set_identity(t, NULL, NULL);	/* /proc shows other pids */
	*counter(&fk, FAKE_TGID, 1) = (struct syscap_count_val){ 2, 0 };
	*counter(&fk, FAKE_TGID + 1, 1) = (struct syscap_count_val){ 3, 0 };
	/* no sweep: /proc cannot tell whether these tgids are alive */
	for (int i = 0; i < 2 * SWEEP_POLLS; i++)
		CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 0);
	count_table_exited(t, FAKE_TGID);
	counter(&fk, FAKE_TGID, 1)->calls += 1;	/* a sibling thread's exit */
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 0);
	CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 1);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 6);
	CHECK(row(&s, FAKE_TGID, 1) && row(&s, FAKE_TGID, 1)->count == 3);
	count_table_free(t);
	syscap_agg_free(a);
}

/* Run in a child: take each comm from the pipe in turn, say so, exit at EOF. */
static void rename_loop(int in, int out)
{
	char name[16];

	while (read(in, name, sizeof(name)) == (ssize_t)sizeof(name)) {
		prctl(PR_SET_NAME, name, 0, 0, 0);
		if (write(out, "k", 1) != 1)
			break;
	}
	_exit(0);
}

static uint64_t start_with_comm(int cmd, int ack, pid_t child, const char *comm)
{
	char name[16] = { 0 }, c;

	strncpy(name, comm, sizeof(name) - 1);
	if (write(cmd, name, sizeof(name)) != (ssize_t)sizeof(name) || read(ack, &c, 1) != 1)
		return 0;
	return count_proc_start_time(NULL, (uint32_t)child);
}

static void test_a_live_process_is_known_by_its_start_time_whatever_its_comm(void)
{
	struct count_table *t = count_table_new();
	struct syscap_agg *a = syscap_agg_new();
	int to[2], from[2], status;
	uint64_t plain, odd;
	pid_t child;

	CHECK(pipe(to) == 0 && pipe(from) == 0);
	child = fork();
	if (child == 0) {
		close(to[1]);
		close(from[0]);
		rename_loop(to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	/* /proc/PID/stat's comm field can hold spaces and parentheses */
	plain = start_with_comm(to[1], from[0], child, "plain");
	odd = start_with_comm(to[1], from[0], child, "a) b (c 1 2 3 4");
	CHECK(plain != 0);
	CHECK_EQ(odd, plain);

	memset(&fk, 0, sizeof(fk));
	*counter(&fk, (uint32_t)child, 1) = (struct syscap_count_val){ 1, 0 };
	for (int i = 0; i < 2 * SWEEP_POLLS; i++)
		CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 0);	/* alive: kept across sweeps */
	close(to[1]);			/* let it exit */
	waitpid(child, &status, 0);
	close(from[0]);
	CHECK_EQ(count_proc_start_time(NULL, (uint32_t)child), 0);
	for (int i = 0; i < 2 * SWEEP_POLLS && !fk.forgotten; i++)
		CHECK_EQ(count_table_poll(t, &be, a), 0);
	CHECK_EQ(fk.forgotten, 1);
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
	test_a_reused_tgid_is_another_process();
	test_a_zombie_with_the_same_start_time_is_kept();
	test_without_proc_a_process_goes_one_poll_after_its_exit();
	test_a_live_process_is_known_by_its_start_time_whatever_its_comm();
	return check_report("test_counts");
}
