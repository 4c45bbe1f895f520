/* Aggregation: counts, errors, percentiles, the process table, intervals. */
#include <string.h>
#include "check.h"
#include "syscap.h"

static struct syscap_event sc(uint32_t tgid, uint16_t nr, int64_t ret, uint64_t ts, uint64_t dur)
{
	struct syscap_event e;

	memset(&e, 0, sizeof(e));
	e.kind = SYSCAP_EV_SYSCALL;
	e.tgid = e.tid = tgid;
	e.nr = nr;
	e.ret = ret;
	e.ts_ns = ts;
	e.dur_ns = dur;
	return e;
}

static struct syscap_event proc(uint8_t kind, uint32_t tgid, const char *comm, uint8_t flags)
{
	struct syscap_event e;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.tgid = e.tid = tgid;
	e.flags = flags;
	strncpy(e.proc.comm, comm, sizeof(e.proc.comm) - 1);
	return e;
}

static const struct syscap_snap_proc *find(const struct syscap_snapshot *s, uint32_t tgid)
{
	for (uint32_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].tgid == tgid)
			return &s->procs[i];
	return NULL;
}

static void test_counts_errors_and_order(void)
{
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	const struct syscap_snap_proc *p;
	struct syscap_event e;

	for (int i = 0; i < 1000; i++) {
		e = sc(10, 39, 1, i, 100);
		syscap_agg_add(a, &e, 1);
	}
	for (int i = 0; i < 30; i++) {
		e = sc(10, 257, i < 10 ? -2 : 3, i, 5000);
		syscap_agg_add(a, &e, 1);
	}
	e = proc(SYSCAP_EV_EXEC, 10, "worker", 0);
	syscap_agg_add(a, &e, 1);
	e = sc(20, 0, 0, 0, 10);
	syscap_agg_add(a, &e, 1);

	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 1031);
	CHECK_EQ(s.nprocs, 2);
	CHECK_EQ(s.procs[0].tgid, 10);	/* busiest first */
	p = find(&s, 10);
	CHECK(p && !strcmp(p->comm, "worker"));
	CHECK_EQ(p->count, 1030);
	CHECK_EQ(p->errors, 10);
	CHECK_EQ(p->nrows, 2);
	CHECK_EQ(s.rows[p->first_row].nr, 39);	/* rows by count */
	CHECK_EQ(s.rows[p->first_row + 1].errors, 10);
	CHECK_EQ(s.rows[p->first_row + 1].last_errno, 2);
	CHECK_EQ(s.rows[p->first_row + 1].total_ns, 30 * 5000);
	CHECK_EQ(s.nsys, 3);
	CHECK_EQ(s.sys[0].nr, 39);
	CHECK_EQ(s.sys[0].count, 1000);

	/* the next interval starts empty but remembers the comm */
	e = sc(10, 39, 0, 0, 1);
	syscap_agg_add(a, &e, 1);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.events, 1);
	CHECK_EQ(s.nprocs, 1);
	CHECK(!strcmp(s.procs[0].comm, "worker"));
	syscap_agg_free(a);
}

static void test_percentiles_fall_in_the_right_bucket(void)
{
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	struct syscap_event e;

	/* 98 fast calls (~1 us) and 2 slow ones (~1 ms): p50 fast, p99 slow */
	for (int i = 0; i < 98; i++) {
		e = sc(1, 1, 0, i, 1000);
		syscap_agg_add(a, &e, 1);
	}
	for (int i = 0; i < 2; i++) {
		e = sc(1, 1, 0, i, 1000000);
		syscap_agg_add(a, &e, 1);
	}
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK(s.rows[0].p50_ns >= 512 && s.rows[0].p50_ns <= 1024);
	CHECK(s.rows[0].p99_ns >= 524288 && s.rows[0].p99_ns <= 1048576);
	syscap_agg_free(a);
}

/* Sampled mode: counts from the kernel's counters, durations from a sample. */
static void test_sampled_durations_scale_to_the_counts(void)
{
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	struct syscap_event e;

	syscap_agg_set_timed(a, 2);
	syscap_agg_add_count(a, 1, 7, 100, 3);
	syscap_agg_add_count(a, 1, 8, 5, 0);	/* counted, never sampled */
	e = sc(1, 7, 0, 10, 1000);
	e.flags = SYSCAP_F_SAMPLED;
	syscap_agg_add(a, &e, 1);
	e = sc(1, 7, -2, 20, 3000);	/* a failed sample adds no error */
	e.flags = SYSCAP_F_SAMPLED;
	syscap_agg_add(a, &e, 1);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.latency, 2);
	CHECK_EQ(s.nrows, 2);
	CHECK_EQ(s.rows[0].nr, 7);	/* by count */
	CHECK_EQ(s.rows[0].count, 100);
	CHECK_EQ(s.rows[0].errors, 3);
	CHECK_EQ(s.rows[0].samples, 2);
	CHECK_EQ(s.rows[0].total_ns, 200000);	/* 100 calls x the 2000 ns mean */
	CHECK(s.rows[0].p50_ns >= 512 && s.rows[0].p99_ns <= 4096);
	CHECK_EQ(s.rows[1].samples, 0);
	CHECK_EQ(s.rows[1].total_ns, 0);
	CHECK_EQ(s.rows[1].p99_ns, 0);
	CHECK_EQ(s.procs[0].count, 105);
	CHECK_EQ(s.procs[0].total_ns, 200000);
	CHECK_EQ(s.nsys, 2);
	CHECK_EQ(s.sys[0].total_ns, 200000);
	syscap_agg_free(a);
}

static void test_exited_process_reported_once(void)
{
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	struct syscap_event e;

	e = proc(SYSCAP_EV_FORK, 30, "short", 0);
	syscap_agg_add(a, &e, 1);
	e = sc(30, 1, 0, 0, 1);
	syscap_agg_add(a, &e, 1);
	e = proc(SYSCAP_EV_EXIT, 30, "short", SYSCAP_F_GROUP_DEAD);
	syscap_agg_add(a, &e, 1);
	e = proc(SYSCAP_EV_EXIT, 31, "quiet", SYSCAP_F_GROUP_DEAD);
	syscap_agg_add(a, &e, 1);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.nprocs, 2);
	CHECK(find(&s, 30) && find(&s, 30)->exited && find(&s, 30)->count == 1);
	CHECK(find(&s, 31) && find(&s, 31)->exited && find(&s, 31)->count == 0);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.nprocs, 0);
	syscap_agg_free(a);
}

static void test_pid_filter_and_add_until(void)
{
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	struct syscap_event ev[6];

	for (int i = 0; i < 6; i++)
		ev[i] = sc(i % 2 ? 7 : 8, 1, 0, 100 * (uint64_t)i, 1);
	syscap_agg_set_pid(a, 7);
	CHECK_EQ(syscap_agg_add_until(a, ev, 6, 350), 4);	/* ts 0,100,200,300 */
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.nprocs, 1);
	CHECK_EQ(s.procs[0].tgid, 7);
	CHECK_EQ(s.procs[0].count, 2);
	syscap_agg_free(a);
}

/* A snapshot clears what the last one reported, and only that shows once. */
static void test_intervals_do_not_carry_over(void)
{
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	struct syscap_event e;
	uint64_t hist = 0;

	for (uint32_t pid = 1; pid <= 300; pid++) {
		e = sc(pid, (uint16_t)(pid % 7), 0, 0, 1000);
		syscap_agg_add(a, &e, 1);
	}
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.nrows, 300);
	CHECK_EQ(s.nsys, 7);
	for (uint32_t i = 0; i < SYSCAP_MAX_SYSCALLS * SYSCAP_HIST_BUCKETS; i++)
		hist += s.sys_hist[i];
	CHECK_EQ(hist, 300);

	e = sc(5, 9, 0, 0, 1000000);
	syscap_agg_add(a, &e, 1);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.nrows, 1);
	CHECK_EQ(s.nsys, 1);
	CHECK_EQ(s.sys[0].nr, 9);
	CHECK_EQ(s.sys[0].count, 1);
	CHECK_EQ(s.sys[0].total_ns, 1000000);
	hist = 0;
	for (uint32_t i = 0; i < SYSCAP_MAX_SYSCALLS * SYSCAP_HIST_BUCKETS; i++)
		hist += s.sys_hist[i] * (i / SYSCAP_HIST_BUCKETS == 9 ? 1 : 1000);
	CHECK_EQ(hist, 1);

	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);	/* an empty interval */
	CHECK_EQ(s.nrows, 0);
	CHECK_EQ(s.nsys, 0);
	hist = 0;
	for (uint32_t i = 0; i < SYSCAP_MAX_SYSCALLS * SYSCAP_HIST_BUCKETS; i++)
		hist += s.sys_hist[i];
	CHECK_EQ(hist, 0);

	/* a syscall of the first interval again: only its new call */
	e = sc(6, 3, -2, 0, 2000);
	syscap_agg_add(a, &e, 1);
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.nsys, 1);
	CHECK_EQ(s.sys[0].nr, 3);
	CHECK_EQ(s.sys[0].count, 1);
	CHECK_EQ(s.sys[0].errors, 1);
	CHECK_EQ(s.sys[0].total_ns, 2000);
	syscap_agg_free(a);
}

static void test_many_processes_grow_tables(void)
{
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_snapshot s;
	struct syscap_event e;
	uint64_t total = 0;

	for (uint32_t pid = 1; pid <= 5000; pid++)
		for (uint16_t nr = 0; nr < 3; nr++) {
			e = sc(pid, nr, 0, 0, 1);
			syscap_agg_add(a, &e, 1);
		}
	CHECK_EQ(syscap_agg_snapshot(a, &s), 0);
	CHECK_EQ(s.nprocs, 5000);
	CHECK_EQ(s.nrows, 15000);
	for (uint32_t i = 0; i < s.nprocs; i++)
		total += s.procs[i].count;
	CHECK_EQ(total, 15000);
	syscap_agg_free(a);
}

int main(void)
{
	test_counts_errors_and_order();
	test_percentiles_fall_in_the_right_bucket();
	test_sampled_durations_scale_to_the_counts();
	test_exited_process_reported_once();
	test_pid_filter_and_add_until();
	test_intervals_do_not_carry_over();
	test_many_processes_grow_tables();
	return check_report("test_agg");
}
