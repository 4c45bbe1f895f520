/* Three threads: main waits in pthread_join, one blocks in read(), the worker takes SIGQUIT
 * once the kernel shows the blocker asleep in read() (not merely on its way there). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int pipefd[2];
static int dump;
static _Atomic pid_t blocker_tid;

static void *blocker(void *arg)
{
	char c;

	(void)arg;
	blocker_tid = gettid();
	return (void *)(long)read(pipefd[0], &c, 1);
}

/* /proc/self/task/TID/syscall reads "running" while the thread runs, and starts with the
 * syscall number once it sleeps in one ("0 " for read() on x86-64, "63 " on arm64). */
static void wait_for_blocker_in_read(void)
{
	char path[64], buf[64], want[16];
	pid_t tid;

	while (!(tid = blocker_tid))
		sched_yield();
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	snprintf(want, sizeof(want), "%d ", (int)SYS_read);
	for (;;) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = 0;
		if (!strncmp(buf, want, strlen(want)))
			return;
		sched_yield();
	}
}

static void *worker(void *arg)
{
	(void)arg;
	printf("worker running\n");
	if (dump) {
		wait_for_blocker_in_read();
		syscall(SYS_tgkill, getpid(), gettid(), SIGQUIT);
	}
	printf("worker resumed\n");
	exit(0);
}

int main(int argc, char **argv)
{
	pthread_t b, w;

	setvbuf(stdout, NULL, _IONBF, 0);
	dump = argc > 1 && !strcmp(argv[1], "kernel");
	if (pipe(pipefd))
		return 1;
	pthread_create(&b, NULL, blocker, NULL);
	pthread_create(&w, NULL, worker, NULL);
	pthread_join(w, NULL);
	return 1;
}
