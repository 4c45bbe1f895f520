/*
 * sampled_spans CALLS: CALLS rounds of sched_setaffinity() to the next
 * online CPU (the task migrates inside that call), getppid() between two
 * CLOCK_MONOTONIC readings, and a 100 us nanosleep(). Prints one line per
 * getppid, "BEFORE AFTER" in ns: the span the call's entry and exit must
 * fall in. The tests hold sampled durations to these spans.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct timespec pause = { 0, 100000 };
	unsigned long long *span;
	long calls, ncpu;
	cpu_set_t set;

	if (argc != 2 || (calls = atol(argv[1])) < 1)
		return 2;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	span = calloc((size_t)calls * 2, sizeof(*span));
	if (!span || ncpu < 1)
		return 1;
	for (long i = 0; i < calls; i++) {
		CPU_ZERO(&set);
		CPU_SET((int)(i % ncpu), &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			return 1;
		span[2 * i] = now_ns();
		syscall(SYS_getppid);
		span[2 * i + 1] = now_ns();
		nanosleep(&pause, NULL);
	}
	for (long i = 0; i < calls; i++)
		printf("%llu %llu\n", span[2 * i], span[2 * i + 1]);
	return 0;
}
