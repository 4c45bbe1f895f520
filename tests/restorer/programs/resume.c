/* PIE, TLS, heap growth and clock_gettime after the dump point.
 * argv[1]: "kernel" dumps with SIGQUIT, "stop" stops with SIGSTOP (for gcore),
 * anything else runs straight through. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static __thread long tls_counter = 1000;

static void dump_point(const char *mode)
{
	printf("--- dump point ---\n");
	if (!strcmp(mode, "kernel"))
		syscall(SYS_kill, getpid(), SIGQUIT);
	else if (!strcmp(mode, "stop"))
		syscall(SYS_kill, getpid(), SIGSTOP);
}

int main(int argc, char **argv)
{
	struct timespec t0, t1, wall;
	char *blocks[300];
	long sum = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 16; i++) {
		blocks[i] = malloc(100000);
		memset(blocks[i], 'a' + i, 100000);
		tls_counter += i;
	}
	printf("before: tls=%ld\n", tls_counter);
	dump_point(argc > 1 ? argv[1] : "none");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("monotonic advanced: %s\n",
	       (t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec >= t0.tv_nsec)) ?
		       "yes" : "no");
	clock_gettime(CLOCK_REALTIME, &wall);
	printf("realtime plausible: %s\n", wall.tv_sec > 1700000000 ? "yes" : "no");
	for (int i = 16; i < 300; i++) { /* about 28 MB more heap */
		blocks[i] = malloc(100000);
		memset(blocks[i], 'a' + i % 26, 100000);
		tls_counter += i;
	}
	for (int i = 0; i < 300; i++)
		sum += blocks[i][i * 7];
	printf("after: tls=%ld sum=%ld\n", tls_counter, sum);
	return 3;
}
