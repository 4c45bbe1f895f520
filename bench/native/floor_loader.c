/* floor_loader OBJ: attach every program of OBJ that names its attach point, say "ready", wait for SIGTERM
 * or SIGINT, detach. A ring buffer map named "records" in OBJ is emptied
 * every 10 ms (records dropped unread), so its producer never finds it full;
 * so are the rings of slots of floor_slots.bpf.c ("ring_pos" and "ring_slots",
 * sized here for every possible CPU). The signals are blocked before "ready" is printed and
 * taken with sigtimedwait, so one sent right after "ready" is never lost (with a
 * handler and pause() it could arrive before pause() and leave the programs
 * attached for good). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/libbpf.h>
#include "syscap_slots.h"

#define SLOTS_SHIFT	15	/* floor_slots.bpf.c's */

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
	struct bpf_map *slots, *posmap;
	struct syscap_ring_pos *pos = NULL;
	int ncpu = libbpf_num_possible_cpus();
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	sigset_t stop;

	if (argc != 2)
		return 2;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	obj = bpf_object__open_file(argv[1], NULL);
	slots = obj ? bpf_object__find_map_by_name(obj, "ring_slots") : NULL;
	posmap = obj ? bpf_object__find_map_by_name(obj, "ring_pos") : NULL;
	if (slots && posmap && ncpu > 0) {
		bpf_map__set_max_entries(slots, (unsigned int)ncpu << SLOTS_SHIFT);
		bpf_map__set_max_entries(posmap, (unsigned int)ncpu);
	}
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
	if (slots && posmap) {
		void *m = mmap(NULL, (size_t)ncpu * sizeof(*pos), PROT_READ | PROT_WRITE, MAP_SHARED,
			       bpf_map__fd(posmap), 0);

		if (m == MAP_FAILED) {
			fprintf(stderr, "floor_loader: cannot map the ring positions\n");
			return 1;
		}
		pos = m;
	}
	printf("ready\n");
	fflush(stdout);
	while (sigtimedwait(&stop, NULL, &tick) < 0) {
		if (rb)
			ring_buffer__consume(rb);
		for (int cpu = 0; pos && cpu < ncpu; cpu++)
			__atomic_store_n(&pos[cpu].consumer,
					 __atomic_load_n(&pos[cpu].producer, __ATOMIC_ACQUIRE),
					 __ATOMIC_RELEASE);
	}
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
