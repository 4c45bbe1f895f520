// SPDX-License-Identifier: BSD-2-Clause
/*
 * tcgprof_mark [N]: runs the tcgprof plugin's marker (mark(), alone in a
 * section the Makefile places at TCGPROF_MARK), which writes a snapshot of
 * every block's counts. With N: a snapshot, N getppid, another snapshot
 * (as the guest's init it is the plugin's own test: then the kernel panics
 * when it returns, and QEMU with -no-reboot exits).
 */
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((noinline, section(".tcgprof_mark"))) void mark(void)
{
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;

	mark();
	if (n > 0) {
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		mark();
	}
	return 0;
}
