/*
 * Workers for the filter-flip tests.
 *
 *   flip_workers SHMFILE N
 *
 * SHMFILE is a file of at least 4 + 4 * (1 + N) bytes shared with the test:
 *   u32 round      written by the test: the round number, 0 before the first
 *   u32 done       written by the test: nonzero ends the workers
 *   u32 ack[N]     written by worker i: the last round it marked
 * Starts N workers named flip-0 .. flip-N-1 (comm), prints their pids on one
 * line once every worker runs. Each worker loops on getppid() and
 * sched_yield(), so it keeps entering the probes while the test changes the
 * filter; when it sees a new round r it makes one close(-r), which fails with
 * EBADF (the round is in the record's first argument), and acks r. With a
 * failed-only filter the getppid calls make the probes compute verdicts but
 * write no records; the close records tell, round by round, which workers the
 * filter in force at that round let through. Exits 0 when every worker did.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 16

struct shared {
	uint32_t round;
	uint32_t done;
	uint32_t ack[MAX_WORKERS];
};

static int worker(struct shared *sh, int i, int ready)
{
	uint32_t last = 0;
	char name[16];

	snprintf(name, sizeof(name), "flip-%d", i);
	if (prctl(PR_SET_NAME, name) || write(ready, "r", 1) != 1)
		return 1;
	close(ready);
	while (!__atomic_load_n(&sh->done, __ATOMIC_ACQUIRE)) {
		uint32_t r = __atomic_load_n(&sh->round, __ATOMIC_ACQUIRE);

		if (r != last) {
			syscall(SYS_close, -(long)r);
			__atomic_store_n(&sh->ack[i], r, __ATOMIC_RELEASE);
			last = r;
		}
		syscall(SYS_getppid);
		sched_yield();
	}
	return 0;
}

int main(int argc, char **argv)
{
	pid_t pids[MAX_WORKERS];
	struct shared *sh;
	int n, fd, p[2], st, bad = 0;
	char c;

	if (argc != 3 || (n = atoi(argv[2])) < 1 || n > MAX_WORKERS) {
		fprintf(stderr, "usage: flip_workers SHMFILE N(1-%d)\n", MAX_WORKERS);
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || pipe(p))
		return 1;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (sh == MAP_FAILED)
		return 1;
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return 1;
		if (pids[i] == 0) {
			close(p[0]);
			_exit(worker(sh, i, p[1]));
		}
	}
	close(p[1]);
	for (int i = 0; i < n; i++)
		if (read(p[0], &c, 1) != 1)
			return 1;
	for (int i = 0; i < n; i++)
		printf("%d%c", (int)pids[i], i == n - 1 ? '\n' : ' ');
	fflush(stdout);
	for (int i = 0; i < n; i++)
		if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	return bad ? 1 : 0;
}
