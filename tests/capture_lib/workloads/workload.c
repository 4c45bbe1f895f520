/*
 * A workload with known syscall counts, for exactness tests.
 *
 *   workload GETPPID OPENS FAILS WRITES CHILD_GETPPID THREAD_GETPPID
 *
 * Main thread: GETPPID getppid(); OPENS openat() of which the first FAILS
 * fail with ENOENT (the others open /dev/null and are closed); WRITES
 * write() of one byte to /dev/null. A forked child makes CHILD_GETPPID
 * getppid() and exits; a thread makes THREAD_GETPPID getppid(). Raw
 * syscalls are used so libc cannot add or elide any.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long thread_calls;

static void *thread_main(void *arg)
{
	(void)arg;
	for (long i = 0; i < thread_calls; i++)
		syscall(SYS_getppid);
	return NULL;
}

int main(int argc, char **argv)
{
	long getppid_n, opens, fails, writes, child_n;
	pthread_t th;
	pid_t pid;
	int fd;

	if (argc != 7)
		return 2;
	getppid_n = atol(argv[1]);
	opens = atol(argv[2]);
	fails = atol(argv[3]);
	writes = atol(argv[4]);
	child_n = atol(argv[5]);
	thread_calls = atol(argv[6]);

	for (long i = 0; i < getppid_n; i++)
		syscall(SYS_getppid);
	fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY);
	for (long i = 0; i < opens; i++) {
		int f = (int)syscall(SYS_openat, AT_FDCWD,
				     i < fails ? "/nonexistent/syscap" : "/dev/null", O_RDONLY);
		if (f >= 0)
			syscall(SYS_close, f);
	}
	for (long i = 0; i < writes; i++)
		syscall(SYS_write, fd, "x", 1);
	pid = fork();
	if (pid == 0) {
		for (long i = 0; i < child_n; i++)
			syscall(SYS_getppid);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	if (thread_calls && pthread_create(&th, NULL, thread_main, NULL) == 0)
		pthread_join(th, NULL);
	return 0;
}
