/*
 * A workload with known syscall rates, for rate queries.
 *
 *   pace TICKS GETPPID WRITES FAILS
 *
 * Every 10 ms (absolute CLOCK_MONOTONIC deadlines, so the rate does not
 * drift) it makes GETPPID getppid(), WRITES one-byte write() to /dev/null
 * and FAILS openat() of a missing file, for TICKS ticks: rates are 100x the
 * per-tick counts per second. Raw syscalls, so libc adds or elides none.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec next;
	long ticks, getppid_n, writes, fails;
	int fd;

	if (argc != 5)
		return 2;
	ticks = atol(argv[1]);
	getppid_n = atol(argv[2]);
	writes = atol(argv[3]);
	fails = atol(argv[4]);
	fd = open("/dev/null", O_WRONLY);
	if (fd < 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (long t = 0; t < ticks; t++) {
		for (long i = 0; i < getppid_n; i++)
			syscall(SYS_getppid);
		for (long i = 0; i < writes; i++)
			syscall(SYS_write, fd, "x", 1);
		for (long i = 0; i < fails; i++)
			syscall(SYS_openat, AT_FDCWD, "/nonexistent/syscap", O_RDONLY);
		next.tv_nsec += 10000000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	return 0;
}
