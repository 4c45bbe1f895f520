/*
 * syscall_rate RATE SECONDS CPUS: getppid() at RATE calls per second in total
 * for SECONDS, one thread per CPU of the comma-separated list CPUS (each pinned
 * to its CPU, RATE split evenly). RATE 0: as fast as possible. Pacing works in
 * 1 ms ticks: a thread catches up to its schedule with a burst of calls, then
 * sleeps to the next tick, so the consumer of a tracer finds idle time.
 * Prints "CALLS SECONDS" (calls made by all threads, wall time).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256

struct worker {
	pthread_t thread;
	int cpu;
	double rate;		/* calls per second for this thread; 0: unpaced */
	double seconds;
	long calls;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;
	double start, t;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		fprintf(stderr, "syscall_rate: cannot pin to CPU %d\n", w->cpu);
	start = now();
	while ((t = now() - start) < w->seconds) {
		if (w->rate <= 0) {
			for (int i = 0; i < 1000; i++)
				syscall(SYS_getppid);
			w->calls += 1000;
			continue;
		}
		long due = (long)(w->rate * t);
		while (w->calls < due) {
			syscall(SYS_getppid);
			w->calls++;
		}
		/* sleep to the next millisecond tick */
		double next = (double)((long)(t * 1000) + 1) / 1000;
		struct timespec d = { 0, (long)((next - t) * 1e9) };
		nanosleep(&d, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker ws[MAX_THREADS];
	int n = 0;
	double rate, seconds, t0, t1;
	long total = 0;
	char *cpus, *tok, *save = NULL;

	if (argc != 4) {
		fprintf(stderr, "usage: syscall_rate RATE SECONDS CPU[,CPU...]\n");
		return 2;
	}
	rate = atof(argv[1]);
	seconds = atof(argv[2]);
	cpus = strdup(argv[3]);
	for (tok = strtok_r(cpus, ",", &save); tok && n < MAX_THREADS;
	     tok = strtok_r(NULL, ",", &save))
		ws[n++] = (struct worker){ .cpu = atoi(tok), .seconds = seconds };
	if (!n)
		return 2;
	for (int i = 0; i < n; i++)
		ws[i].rate = rate / n;
	t0 = now();
	for (int i = 0; i < n; i++)
		pthread_create(&ws[i].thread, NULL, work, &ws[i]);
	for (int i = 0; i < n; i++) {
		pthread_join(ws[i].thread, NULL);
		total += ws[i].calls;
	}
	t1 = now();
	printf("%ld %.6f\n", total, t1 - t0);
	free(cpus);
	return 0;
}
