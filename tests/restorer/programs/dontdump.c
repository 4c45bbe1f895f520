/* A MADV_DONTDUMP region full of 0xab, the kernel's brk before the dump, heap growth after,
 * and SIGUSR1 blocked across the dump (the signal mask). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define REGION (16 * 4096)

int main(int argc, char **argv)
{
	unsigned char *region;
	char *blocks[400];
	long brk_before, brk_after, nonzero = 0;
	sigset_t set;

	setvbuf(stdout, NULL, _IONBF, 0);
	region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(region, 0xab, REGION);
	madvise(region, REGION, MADV_DONTDUMP);
	blocks[0] = malloc(100000);
	memset(blocks[0], 1, 100000);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	brk_before = syscall(SYS_brk, 0);
	printf("--- dump point ---\n");
	if (argc > 1 && !strcmp(argv[1], "kernel"))
		syscall(SYS_kill, getpid(), SIGQUIT);
	for (int i = 0; i < REGION; i++)
		nonzero += region[i] != 0;
	printf("dontdump region: %s\n", nonzero ? "data" : "zeros");
	sigprocmask(SIG_BLOCK, NULL, &set);
	printf("sigusr1 blocked: %s\n", sigismember(&set, SIGUSR1) ? "yes" : "no");
	brk_after = syscall(SYS_brk, 0);
	printf("brk before %#lx after %#lx\n", brk_before, brk_after);
	for (int i = 1; i < 400; i++) { /* about 40 MB */
		blocks[i] = malloc(100000);
		memset(blocks[i], i & 0xff, 100000);
	}
	for (int i = 1; i < 400; i++)
		if (blocks[i][99999] != (char)(i & 0xff) || blocks[0][5] != 1) {
			printf("heap corrupt\n");
			return 1;
		}
	printf("heap grew: ok\n");
	return 0;
}
