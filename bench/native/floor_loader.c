/* floor_loader OBJ: attach every program of OBJ, say "ready", wait for SIGTERM
 * or SIGINT, detach. The signals are blocked before "ready" is printed and
 * taken with sigwait, so one sent right after "ready" is never lost (with a
 * handler and pause() it could arrive before pause() and leave the programs
 * attached for good). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	sigset_t stop;
	int sig;

	if (argc != 2)
		return 2;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "floor_loader: cannot load %s\n", argv[1]);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__attach(prog)) {
			fprintf(stderr, "floor_loader: cannot attach %s\n", bpf_program__name(prog));
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	sigwait(&stop, &sig);
	bpf_object__close(obj);
	return 0;
}
