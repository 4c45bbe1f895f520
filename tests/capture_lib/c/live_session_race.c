// SPDX-License-Identifier: BSD-2-Clause
/*
 * A live eBPF session, built for ThreadSanitizer (make tsan-test; needs
 * root): while the consumer thread drains the rings and records, the main
 * thread takes snapshots, reads the totals, the consumed count and the
 * error, as the UI and `syscap record` do from their own threads. A
 * workload thread keeps child processes making syscalls meanwhile (the
 * session never traces its own process).
 *
 *   1. recording until the consumer has written a STATS block (the 1 s
 *      flush reads the kernel counters as the main thread does);
 *   2. recording into a file that cannot grow (RLIMIT_FSIZE), until the
 *      consumer reports the failed write while the main thread polls.
 *
 * Exit 0: no failed checks (TSan makes any data race exit 66).
 * Exit 77: not root.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "syscap.h"

#define DEADLINE_NS	(20ULL * 1000000000ULL)

static const char names[] = "read\0write\0\0\0\0\0";
static int stop_workload;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *workload(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop_workload, __ATOMIC_ACQUIRE)) {
		pid_t pid = fork();

		if (pid == 0) {
			for (int i = 0; i < 200; i++)
				syscall(SYS_getppid);
			_exit(0);
		}
		if (pid < 0)
			break;
		waitpid(pid, NULL, 0);
	}
	return NULL;
}

/* A session tracing this process's children, recording to path, started. */
static struct syscap_session *start(const char *path, pthread_t *worker)
{
	struct syscap_filter f;
	struct syscap_session *s;
	char err[256];

	s = syscap_session_open("bpf", 1 << 20, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "cannot open an eBPF session: %s\n", err);
		CHECK(s != NULL);
		return NULL;
	}
	memset(&f, 0, sizeof(f));
	f.flags = SYSCAP_FILTER_PIDS;
	CHECK_EQ(syscap_session_set_filter(s, &f), 0);
	CHECK_EQ(syscap_session_set_pid(s, (uint32_t)getpid(), SYSCAP_PID_INCLUDE), 0);
	syscap_session_aggregate(s, 1);
	CHECK_EQ(syscap_session_record(s, path, 0, names, sizeof(names) - 1, 2, err, sizeof(err)),
		 0);
	CHECK_EQ(syscap_session_start(s, err, sizeof(err)), 0);
	__atomic_store_n(&stop_workload, 0, __ATOMIC_RELEASE);
	CHECK_EQ(pthread_create(worker, NULL, workload, NULL), 0);
	return s;
}

static void stop_worker(pthread_t worker)
{
	__atomic_store_n(&stop_workload, 1, __ATOMIC_RELEASE);
	pthread_join(worker, NULL);
}

/* What the UI and the recorder read from their threads; returns events seen. */
static uint64_t look(struct syscap_session *s)
{
	struct syscap_trace_sysrow rows[SYSCAP_MAX_SYSCALLS];
	struct syscap_trace_stats st;
	struct syscap_snapshot snap;

	CHECK_EQ(syscap_session_snapshot(s, &snap), 0);
	CHECK(syscap_session_totals(s, &st, rows, SYSCAP_MAX_SYSCALLS) >= 0);
	(void)syscap_session_consumed(s);
	(void)syscap_session_error(s);
	return snap.events;
}

static off_t size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* STATS blocks in the trace at path as it is now (the recorder's blocks are whole). */
static int stats_blocks(const char *path)
{
	struct syscap_trace_block b;
	struct syscap_trace *t;
	char err[256];
	int n = 0;

	t = syscap_trace_open(path, err, sizeof(err));
	if (!t)
		return -1;
	while (syscap_trace_next(t, &b))
		n += b.type == SYSCAP_BLOCK_STATS;
	syscap_trace_close(t);
	return n;
}

static void test_snapshots_while_recording(const char *path)
{
	struct syscap_trace_block b;
	struct syscap_trace *t;
	pthread_t worker;
	uint64_t seen = 0, deadline = now_ns() + DEADLINE_NS;
	char err[256];
	int stats = 0;
	struct syscap_session *s = start(path, &worker);

	if (!s)
		return;
	/* The consumer's periodic flush writes records and a STATS block. */
	while (stats_blocks(path) < 1 && now_ns() < deadline)
		seen += look(s);
	CHECK(stats_blocks(path) >= 1);
	stop_worker(worker);
	CHECK_EQ(syscap_session_stop(s), 0);
	seen += look(s);
	CHECK(seen > 0);
	CHECK(syscap_session_consumed(s) > 0);
	CHECK(syscap_session_error(s) == NULL);
	syscap_session_close(s);

	t = syscap_trace_open(path, err, sizeof(err));
	CHECK(t != NULL);
	if (!t)
		return;
	while (syscap_trace_next(t, &b))
		stats += b.type == SYSCAP_BLOCK_STATS;
	CHECK(stats >= 1);
	CHECK(syscap_trace_complete(t));
	syscap_trace_close(t);
}

static void test_write_error_while_polling(const char *path)
{
	struct rlimit old, lim;
	pthread_t worker;
	uint64_t deadline = now_ns() + DEADLINE_NS;
	const char *e = NULL;
	struct syscap_session *s = start(path, &worker);

	if (!s)
		return;
	/* the header is written; no block fits after it (EFBIG, not SIGXFSZ) */
	CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)size_of(path);
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
	while (!(e = syscap_session_error(s)) && now_ns() < deadline)
		look(s);
	CHECK(e != NULL && strstr(e, "writing the trace file failed") != NULL);
	stop_worker(worker);
	CHECK_EQ(syscap_session_stop(s), -EIO);
	CHECK(syscap_session_error(s) != NULL);
	syscap_session_close(s);
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
}

int main(void)
{
	char dir[] = "/tmp/syscap-race-XXXXXX";
	char path[64];

	if (geteuid() != 0) {
		printf("live_session_race: skipped: needs root for an eBPF session\n");
		return 77;
	}
	signal(SIGXFSZ, SIG_IGN);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/a.trace", dir);
	test_snapshots_while_recording(path);
	unlink(path);
	snprintf(path, sizeof(path), "%s/b.trace", dir);
	test_write_error_while_polling(path);
	unlink(path);
	rmdir(dir);
	return check_report("live_session_race");
}
