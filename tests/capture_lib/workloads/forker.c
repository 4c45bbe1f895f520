/*
 * forker N CALLS: forks N children one after another; each makes CALLS
 * getppid() and exits. Prints nothing; exits 0 when every child did.
 * Many short-lived processes in one interval: more than one stream block.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n, calls;
	int status;

	if (argc != 3)
		return 2;
	n = atol(argv[1]);
	calls = atol(argv[2]);
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 1;
		if (pid == 0) {
			for (long k = 0; k < calls; k++)
				syscall(SYS_getppid);
			syscall(SYS_exit_group, 0);
		}
	}
	for (long i = 0; i < n; i++)
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			return 1;
	return 0;
}
