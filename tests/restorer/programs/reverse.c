/* Reverse execution: a loop that reads four bytes of stdin, calls tick() and writes one
 * line per round. argv[1] "kernel": dump core (SIGQUIT) before the loop. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

long total;

__attribute__((noinline)) long tick(long i)
{
	total += i * i;
	return total;
}

int main(int argc, char **argv)
{
	char line[64], word[4];

	if (argc > 1 && !strcmp(argv[1], "kernel"))
		syscall(SYS_kill, getpid(), SIGQUIT);
	for (long i = 1; i <= 4; i++) {
		ssize_t got = read(0, word, sizeof word);
		long t = tick(i);
		int n = snprintf(line, sizeof line, "tick %ld total %ld read %.*s\n", i, t,
				 (int)(got > 0 ? got : 0), word);
		write(1, line, n);
	}
	return 0;
}
