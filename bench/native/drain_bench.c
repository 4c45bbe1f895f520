/*
 * drain_bench [SECONDS]: capture_lib's drain + aggregate rate on one core.
 *
 * A producer (this thread, between timed sections) fills a double-mapped
 * ring of 8 MiB with records spread over 1000 processes x 20 syscalls; the
 * timed part is syscap_ring_drain() feeding syscap_agg_add() through the
 * record's decoding, exactly the consumer's live path when it aggregates.
 * Prints events per second.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "../../capture_lib/src/internal.h"

#define RING (8u << 20)
#define REC (SYSCAP_RB_HDR_SZ + SYSCAP_REC_SIZE)

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void on_event(void *ctx, const struct syscap_rec *rec, const uint64_t *args)
{
	struct syscap_event ev;

	syscap_rec_decode(rec, args, &ev);
	syscap_agg_add(ctx, &ev, 1);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2.0, spent = 0;
	int fd = memfd_create("ring", 0);
	uint8_t *base;
	uint64_t cons = 0, prod = 0, total = 0, rng = 88172645463325252ULL;
	struct syscap_ring r = { .size = RING, .consumer_pos = &cons, .producer_pos = &prod };
	struct syscap_agg *agg = syscap_agg_new();
	struct syscap_snapshot snap;

	if (fd < 0 || ftruncate(fd, RING))
		return 1;
	base = mmap(NULL, 2 * RING, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mmap(base, RING, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	mmap(base + RING, RING, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	r.data = base;
	while (spent < seconds) {
		double t0;

		while (prod - cons + REC <= RING) {	/* fill */
			uint8_t *p = base + (prod & (RING - 1));
			struct syscap_rec *e = (struct syscap_rec *)(p + SYSCAP_RB_HDR_SZ);

			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			*(uint32_t *)p = SYSCAP_REC_SIZE;
			memset(e, 0, sizeof(*e));
			e->kind = SYSCAP_EV_SYSCALL;
			e->tgid = e->tid = 1000 + (uint32_t)(rng % 1000);
			e->sys.nr = (uint16_t)((rng >> 20) % 20);
			e->sys.dur_ns = (rng >> 32) & 0xffff;
			e->sys.ret = (rng & 0xf) ? 0 : -2;
			prod += REC;
		}
		t0 = now();
		total += (uint64_t)syscap_ring_drain(&r, on_event, agg, 1L << 30);
		spent += now() - t0;
		syscap_agg_snapshot(agg, &snap);	/* untimed: a UI's tick */
	}
	printf("%.0f\n", total / spent);
	syscap_agg_free(agg);
	return 0;
}
