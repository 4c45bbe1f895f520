/*
 * Syscalls at the edges of what a tracer sees, with known counts.
 *
 *   edge_syscalls seccomp N      N getppid() that a seccomp filter denies with
 *                                EPERM: they never reach sys_enter
 *   edge_syscalls outofrange N   N syscall(-1) and N syscall(1000): ENOSYS
 *   edge_syscalls compat N       a child makes N getpid() through int 0x80 (the
 *                                i386 table, number 20) from this 64-bit
 *                                process, then ends with the i386 exit_group
 *                                (252); exits 3 when the kernel has no 32-bit
 *                                emulation, and on other architectures
 *   edge_syscalls interrupted    a thread blocked in read() on a pipe is cut
 *                                off by exit_group(): its read exits with the
 *                                kernel's restart code, never seen by user space
 * Raw syscalls only, so libc adds none of the counted ones.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int deny_getppid(long n)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0)) {
		perror("edge_syscalls: seccomp");
		return 1;
	}
	for (long i = 0; i < n; i++)
		if (syscall(SYS_getppid) != -1 || errno != EPERM)
			return 1;
	return 0;
}

static int out_of_range(long n)
{
	for (long i = 0; i < n; i++) {
		if (syscall(-1) != -1 || errno != ENOSYS)
			return 1;
		if (syscall(1000) != -1 || errno != ENOSYS)
			return 1;
	}
	return 0;
}

static int compat_getpid(long n)
{
#if defined(__x86_64__)
	pid_t child = fork();
	int st;

	if (child == 0) {
		/* one call first: without IA32 emulation int 0x80 faults */
		for (long i = 0; i < n; i++) {
			long ret;

			__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
			if (ret != getpid())
				_exit(1);
		}
		__asm__ volatile("int $0x80" : : "a"(252L), "b"(0L) : "memory");
		_exit(1);	/* not reached */
	}
	if (child < 0 || waitpid(child, &st, 0) != child)
		return 1;
	if (WIFSIGNALED(st))
		return 3;
	return WEXITSTATUS(st);
#else
	(void)n;
	return 3;
#endif
}

static int pipefd[2];

static void *blocked_reader(void *arg)
{
	char c;

	(void)arg;
	syscall(SYS_read, pipefd[0], &c, 1);
	return NULL;
}

/* The reader's tid once it sits in read(): /proc says its syscall is read. */
static int wait_in_read(pid_t tid)
{
	char path[64], buf[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	for (;;) {
		FILE *f = fopen(path, "r");
		long nr = -2;

		if (!f)
			return 1;
		if (fgets(buf, sizeof(buf), f))
			nr = strtol(buf, NULL, 10);
		fclose(f);
		if (nr == SYS_read)
			return 0;
		sched_yield();
	}
}

static pid_t reader_tid;

static void *reader_main(void *arg)
{
	__atomic_store_n(&reader_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	return blocked_reader(arg);
}

static int interrupted(void)
{
	pthread_t th;

	if (pipe(pipefd) || pthread_create(&th, NULL, reader_main, NULL))
		return 1;
	while (!__atomic_load_n(&reader_tid, __ATOMIC_ACQUIRE))
		sched_yield();
	if (wait_in_read(reader_tid))
		return 1;
	printf("%d\n", (int)reader_tid);
	fflush(stdout);
	syscall(SYS_exit_group, 0);
	return 1;
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 0;

	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "seccomp"))
		return deny_getppid(n);
	if (!strcmp(argv[1], "outofrange"))
		return out_of_range(n);
	if (!strcmp(argv[1], "compat"))
		return compat_getpid(n);
	if (!strcmp(argv[1], "interrupted"))
		return interrupted();
usage:
	fprintf(stderr, "usage: edge_syscalls seccomp|outofrange|compat N | interrupted\n");
	return 2;
}
