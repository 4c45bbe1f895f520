/* Calls into libgreet.so after the dump point. */
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *greet(void);

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	syscall(SYS_kill, getpid(), SIGQUIT);
	printf("%s\n", greet());
	return 0;
}
