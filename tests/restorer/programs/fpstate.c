/* Values in xmm8 and the upper half of ymm9 across the dump point, which sits inside the
 * asm block (a raw kill syscall), so the compiler cannot save them anywhere else.
 * argv[1]: "kernel" (SIGQUIT), "stop" (SIGSTOP, for gcore), else no signal (kill 0). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	uint64_t xmm_in = 0x1122334455667788ull, xmm_out = 0, ymm_out[4] = {0};
	uint64_t ymm_in[4] = {1, 2, 0xaaaabbbbccccddddull, 0xeeeeffff00001111ull};
	const char *mode = argc > 1 ? argv[1] : "none";
	long sig = !strcmp(mode, "stop") ? SIGSTOP : !strcmp(mode, "kernel") ? SIGQUIT : 0;
	long nr = SYS_kill, pid = getpid();

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("--- dump point ---\n");
	__asm__ volatile(
		"movq %[xin], %%xmm8\n\t"
		"vmovdqu (%[yin]), %%ymm9\n\t"
		"syscall\n\t"
		"movq %%xmm8, %[xout]\n\t"
		"vmovdqu %%ymm9, (%[yout])\n\t"
		: [xout] "=r"(xmm_out), "+a"(nr)
		: [xin] "r"(xmm_in), [yin] "r"(ymm_in), [yout] "r"(ymm_out), "D"(pid), "S"(sig)
		: "rcx", "r11", "xmm8", "xmm9", "memory");
	printf("xmm8 %s\n", xmm_out == xmm_in ? "kept" : "lost");
	printf("ymm9 %s\n", !memcmp(ymm_in, ymm_out, sizeof(ymm_in)) ? "kept" : "lost");
	return 0;
}
