/* Three threads: main waits in pthread_join, one blocks in read(), the worker takes SIGQUIT. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int pipefd[2];
static int dump;

static void *blocker(void *arg)
{
	char c;

	(void)arg;
	return (void *)(long)read(pipefd[0], &c, 1);
}

static void *worker(void *arg)
{
	(void)arg;
	printf("worker running\n");
	if (dump)
		syscall(SYS_tgkill, getpid(), gettid(), SIGQUIT);
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
