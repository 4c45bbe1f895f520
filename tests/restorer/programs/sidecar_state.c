/* State a core does not hold: a file read part way, a SIGUSR1 handler, a lowered
 * RLIMIT_NOFILE, the working directory; with a second argument, a socket pair first (so
 * the file is fd 5, not 3). SIGUSR2 is blocked (gcore does not save the mask). Prints "fd N first: XXXXX" and "ready", then answers each line
 * on stdin: "cwd" prints the working directory, "lim" the RLIMIT_NOFILE soft limit, anything
 * else the next 5 bytes of the file. SIGUSR1 prints "usr1 handler ran". */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_usr1(int sig)
{
	static const char msg[] = "usr1 handler ran\n";

	(void)sig;
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(4);
}

int main(int argc, char **argv)
{
	char buf[4096];
	struct sigaction sa;
	sigset_t block;
	struct rlimit lim;
	int fd, sv[2];
	ssize_t n;

	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 2 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return 3;
	fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		return 3;
	n = read(fd, buf, 5);
	printf("fd %d first: %.*s\n", fd, (int)(n > 0 ? n : 0), buf);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	getrlimit(RLIMIT_NOFILE, &lim);
	lim.rlim_cur = 100;
	setrlimit(RLIMIT_NOFILE, &lim);
	printf("ready\n");
	while ((n = read(0, buf, sizeof(buf) - 1)) > 0) {
		if (strncmp(buf, "cwd", 3) == 0) {
			printf("cwd %s\n", getcwd(buf, sizeof(buf)) ? buf : "?");
		} else if (strncmp(buf, "lim", 3) == 0) {
			getrlimit(RLIMIT_NOFILE, &lim);
			printf("lim %llu\n", (unsigned long long)lim.rlim_cur);
		} else {
			n = read(fd, buf, 5);
			printf("next: %.*s\n", (int)(n > 0 ? n : 0), buf);
		}
	}
	return 0;
}
