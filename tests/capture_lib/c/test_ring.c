/* The drain loop against a ring laid out exactly like a BPF ring buffer,
 * data pages mapped twice back to back. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"
#include "syscap_backend.h"

#define RING_SIZE (16 * 4096)

struct ring_fixture {
	struct syscap_ring r;
	uint64_t cons, prod;
	uint8_t *data;
};

static void setup(struct ring_fixture *f)
{
	int fd = memfd_create("ring", 0);
	uint8_t *base;

	memset(f, 0, sizeof(*f));
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, RING_SIZE) == 0);
	base = mmap(NULL, 2 * RING_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(base != MAP_FAILED);
	CHECK(mmap(base, RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == base);
	CHECK(mmap(base + RING_SIZE, RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		   fd, 0) == base + RING_SIZE);
	close(fd);
	f->data = base;
	f->r.size = RING_SIZE;
	f->r.consumer_pos = &f->cons;
	f->r.producer_pos = &f->prod;
	f->r.data = base;
}

static void teardown(struct ring_fixture *f)
{
	munmap(f->data, 2 * RING_SIZE);
}

/* Produce one record at prod with the given header flags. */
static void produce(struct ring_fixture *f, uint32_t seq, uint32_t flags)
{
	uint64_t off = f->prod & (RING_SIZE - 1);
	struct syscap_event ev;
	uint32_t hdr[2] = { SYSCAP_EVENT_SIZE | flags, 0 };

	memset(&ev, 0, sizeof(ev));
	ev.kind = SYSCAP_EV_SYSCALL;
	ev.seq = seq;
	ev.ts_ns = 1000 + seq;
	/* write through the first mapping, wrapping by hand as a producer does */
	for (size_t i = 0; i < sizeof(hdr); i++)
		f->data[(off + i) & (RING_SIZE - 1)] = ((uint8_t *)hdr)[i];
	for (size_t i = 0; i < sizeof(ev); i++)
		f->data[(off + 8 + i) & (RING_SIZE - 1)] = ((uint8_t *)&ev)[i];
	f->prod += SYSCAP_RB_HDR_SZ + SYSCAP_EVENT_SIZE;
}

struct seen {
	uint32_t seqs[4096];
	int n;
	struct ring_fixture *f;
	uint64_t cons_at_start;
	int cons_moved_mid_batch;
};

static void collect(void *ctx, const struct syscap_event *ev)
{
	struct seen *s = ctx;

	if (*s->f->r.consumer_pos != s->cons_at_start)
		s->cons_moved_mid_batch = 1;
	s->seqs[s->n++] = ev->seq;
}

static long drain(struct ring_fixture *f, struct seen *s, long max)
{
	s->f = f;
	s->cons_at_start = f->cons;
	return syscap_ring_drain(&f->r, collect, s, max);
}

static void test_order_and_batch_publication(void)
{
	struct ring_fixture f;
	struct seen s = { 0 };

	setup(&f);
	for (uint32_t i = 0; i < 100; i++)
		produce(&f, i, 0);
	CHECK_EQ(syscap_ring_used(&f.r), 100 * (SYSCAP_EVENT_SIZE + 8));
	CHECK_EQ(drain(&f, &s, 1000), 100);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(s.seqs[i], i);
	CHECK(!s.cons_moved_mid_batch);
	CHECK_EQ(f.cons, f.prod);
	CHECK_EQ(syscap_ring_used(&f.r), 0);
	CHECK_EQ(f.r.max_used, 100 * (SYSCAP_EVENT_SIZE + 8));
	teardown(&f);
}

static void test_busy_record_stops_drain(void)
{
	struct ring_fixture f;
	struct seen s = { 0 };

	setup(&f);
	produce(&f, 0, 0);
	produce(&f, 1, SYSCAP_RB_BUSY_BIT);
	produce(&f, 2, 0);
	CHECK_EQ(drain(&f, &s, 1000), 1);
	CHECK_EQ(f.cons, SYSCAP_EVENT_SIZE + 8);	/* stops before the busy one */
	/* the producer commits: the rest comes, in order */
	f.data[(SYSCAP_EVENT_SIZE + 8) + 3] &= 0x7f;
	s.n = 0;
	CHECK_EQ(drain(&f, &s, 1000), 2);
	CHECK_EQ(s.seqs[0], 1);
	CHECK_EQ(s.seqs[1], 2);
	teardown(&f);
}

static void test_discarded_record_skipped(void)
{
	struct ring_fixture f;
	struct seen s = { 0 };

	setup(&f);
	produce(&f, 0, 0);
	produce(&f, 1, SYSCAP_RB_DISCARD_BIT);
	produce(&f, 2, 0);
	CHECK_EQ(drain(&f, &s, 1000), 2);
	CHECK_EQ(s.seqs[1], 2);
	CHECK_EQ(f.cons, f.prod);
	teardown(&f);
}

static void test_wraparound_is_contiguous(void)
{
	struct ring_fixture f;
	struct seen s = { 0 };
	uint32_t total = 0;

	setup(&f);
	/* run the positions past the end of the data several times */
	for (int round = 0; round < 5; round++) {
		uint32_t base = total;

		for (uint32_t i = 0; i < 500; i++)
			produce(&f, total++, 0);
		s.n = 0;
		CHECK_EQ(drain(&f, &s, 4096), 500);
		for (uint32_t i = 0; i < 500; i++)
			CHECK_EQ(s.seqs[i], base + i);
	}
	CHECK(f.cons > 2 * RING_SIZE);
	teardown(&f);
}

static void test_max_records_limits_batch(void)
{
	struct ring_fixture f;
	struct seen s = { 0 };

	setup(&f);
	for (uint32_t i = 0; i < 10; i++)
		produce(&f, i, 0);
	CHECK_EQ(drain(&f, &s, 4), 4);
	CHECK_EQ(f.cons, 4 * (SYSCAP_EVENT_SIZE + 8));
	s.n = 0;
	CHECK_EQ(drain(&f, &s, 100), 6);
	CHECK_EQ(s.seqs[0], 4);
	teardown(&f);
}

int main(void)
{
	test_order_and_batch_publication();
	test_busy_record_stops_drain();
	test_discarded_record_skipped();
	test_wraparound_is_contiguous();
	test_max_records_limits_batch();
	return check_report("test_ring");
}
