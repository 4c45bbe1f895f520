/* floor_loader OBJ: attach every program of OBJ that names its attach point, say "ready", wait for SIGTERM
 * or SIGINT, detach. A ring buffer map named "records" in OBJ is emptied
 * every 10 ms (records dropped unread), so its producer never finds it full. The signals are blocked before "ready" is printed and
 * taken with sigtimedwait, so one sent right after "ready" is never lost (with a
 * handler and pause() it could arrive before pause() and leave the programs
 * attached for good). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>

static int drop(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *records;
	struct ring_buffer *rb = NULL;
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	sigset_t stop;

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
		/* a program with no attach point of its own is run by hand */
		if (!bpf_program__attach(prog) && errno != EOPNOTSUPP) {
			fprintf(stderr, "floor_loader: cannot attach %s\n", bpf_program__name(prog));
			return 1;
		}
	}
	records = bpf_object__find_map_by_name(obj, "records");
	if (records) {
		rb = ring_buffer__new(bpf_map__fd(records), drop, NULL, NULL);
		if (!rb) {
			fprintf(stderr, "floor_loader: cannot map the records ring\n");
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	while (sigtimedwait(&stop, NULL, &tick) < 0)
		if (rb)
			ring_buffer__consume(rb);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
