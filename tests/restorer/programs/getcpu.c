/* sched_getcpu() after the dump point: glibc reads it from its rseq area. */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	unsigned int cpu;
	int from_rseq;

	setvbuf(stdout, NULL, _IONBF, 0);
	syscall(SYS_kill, getpid(), SIGQUIT);
	from_rseq = sched_getcpu();
	syscall(SYS_getcpu, &cpu, NULL, NULL);
	printf("sched_getcpu %s\n", from_rseq == (int)cpu ? "matches" : "is stale");
	return 0;
}
