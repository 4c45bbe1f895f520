/*
 * Many short-lived processes with distinct command names.
 *
 *   spawner DIR COUNT CALLS
 *
 * Waits for a line on stdin (so a tracer can attach to its pid first), then
 * runs COUNT children one after another: child i execs DIR/c<i>, a symlink
 * to this program, so its comm is "c<i>"; run that way (argv[1] "child")
 * the program makes CALLS getppid() and exits. Prints "done" at the end.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char path[4096], line[16];
	long count, calls;

	if (argc == 3 && argv[1][0] == 'c' && argv[1][1] == 'h') {	/* "child CALLS" */
		calls = atol(argv[2]);
		for (long i = 0; i < calls; i++)
			syscall(SYS_getppid);
		return 0;
	}
	if (argc != 4)
		return 2;
	count = atol(argv[2]);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (long i = 0; i < count; i++) {
		pid_t pid;

		snprintf(path, sizeof(path), "%s/c%ld", argv[1], i);
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			char *args[] = { path, "child", argv[3], NULL };

			execv(path, args);
			_exit(127);
		}
		if (waitpid(pid, NULL, 0) != pid)
			return 1;
	}
	printf("done\n");
	fflush(stdout);
	return 0;
}
