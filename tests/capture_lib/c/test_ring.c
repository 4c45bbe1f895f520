/* The drain loop against a ring laid out exactly like a BPF ring buffer,
 * data pages mapped twice back to back. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "check.h"
#include "syscap_slots.h"
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

#define REC	(SYSCAP_RB_HDR_SZ + SYSCAP_REC_SIZE)

/*
 * Produce one record of len payload bytes at prod with the given header
 * flags: a struct syscap_rec, and when len reaches SYSCAP_RING_ARGS_LEN its
 * arguments (args[i] = seq * 10 + i) at SYSCAP_RING_ARGS_OFF.
 */
static void produce_len(struct ring_fixture *f, uint32_t seq, uint32_t flags, uint32_t len)
{
	uint64_t off = f->prod & (RING_SIZE - 1);
	uint8_t payload[2 * SYSCAP_SLOT_SIZE] = { 0 };
	struct syscap_rec rec;
	uint32_t hdr[2] = { len | flags, 0 };

	memset(&rec, 0, sizeof(rec));
	rec.kind = SYSCAP_EV_SYSCALL;
	rec.seq = seq;
	rec.ts_ns = 1000 + seq;
	memcpy(payload, &rec, sizeof(rec));
	if (len >= SYSCAP_RING_ARGS_LEN)
		for (int i = 0; i < 6; i++) {
			uint64_t a = (uint64_t)seq * 10 + (uint64_t)i;

			memcpy(payload + SYSCAP_RING_ARGS_OFF + 8 * i, &a, 8);
		}
	/* write through the first mapping, wrapping by hand as a producer does */
	for (size_t i = 0; i < sizeof(hdr); i++)
		f->data[(off + i) & (RING_SIZE - 1)] = ((uint8_t *)hdr)[i];
	for (size_t i = 0; i < len; i++)
		f->data[(off + 8 + i) & (RING_SIZE - 1)] = payload[i];
	f->prod += (SYSCAP_RB_HDR_SZ + len + 7) & ~7u;
}

static void produce(struct ring_fixture *f, uint32_t seq, uint32_t flags)
{
	produce_len(f, seq, flags, SYSCAP_REC_SIZE);
}

struct seen {
	uint32_t seqs[4096];
	uint64_t arg1[4096];	/* args[1], or ~0 for a record without */
	int n;
	struct ring_fixture *f;
	uint64_t cons_at_start;
	int cons_moved_mid_batch;
};

static void collect(void *ctx, const struct syscap_rec *rec, const uint64_t *args)
{
	struct seen *s = ctx;

	if (*s->f->r.consumer_pos != s->cons_at_start)
		s->cons_moved_mid_batch = 1;
	s->arg1[s->n] = args ? args[1] : ~0ULL;
	s->seqs[s->n++] = rec->seq;
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
	CHECK_EQ(syscap_ring_used(&f.r), 100 * (REC));
	CHECK_EQ(drain(&f, &s, 1000), 100);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(s.seqs[i], i);
	CHECK(!s.cons_moved_mid_batch);
	CHECK_EQ(f.cons, f.prod);
	CHECK_EQ(syscap_ring_used(&f.r), 0);
	CHECK_EQ(f.r.max_used, 100 * (REC));
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
	CHECK_EQ(f.cons, REC);	/* stops before the busy one */
	/* the producer commits: the rest comes, in order */
	f.data[(REC) + 3] &= 0x7f;
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
	CHECK_EQ(f.cons, 4 * (REC));
	s.n = 0;
	CHECK_EQ(drain(&f, &s, 100), 6);
	CHECK_EQ(s.seqs[0], 4);
	teardown(&f);
}

/*
 * Records with arguments as both backends write them: the module's (104
 * bytes) and the eBPF slots' (two 64-byte slots, a discarded slot before a
 * pair that would straddle the end), among records without.
 */
static void test_records_with_arguments(void)
{
	struct ring_fixture f;
	struct seen s = { 0 };
	uint32_t seq = 0;

	setup(&f);
	produce(&f, seq++, 0);
	produce_len(&f, seq++, 0, SYSCAP_RING_ARGS_LEN);
	produce_len(&f, seq++, 0, SYSCAP_SLOT_ARGS_LEN);
	produce_len(&f, seq++, SYSCAP_SLOT_DISCARD, SYSCAP_SLOT_LEN);
	produce_len(&f, seq++, 0, SYSCAP_SLOT_ARGS_LEN);
	produce_len(&f, seq++, 0, SYSCAP_SLOT_LEN);
	CHECK_EQ(drain(&f, &s, 1000), 5);
	CHECK_EQ(f.cons, f.prod);
	CHECK_EQ(f.prod, 56 + 112 + 128 + 64 + 128 + 64);
	CHECK_EQ(s.seqs[0], 0);
	CHECK_EQ(s.arg1[0], ~0ULL);
	CHECK_EQ(s.seqs[1], 1);
	CHECK_EQ(s.arg1[1], 11);
	CHECK_EQ(s.arg1[2], 21);
	CHECK_EQ(s.seqs[3], 4);		/* the discarded slot is skipped */
	CHECK_EQ(s.arg1[3], 41);
	CHECK_EQ(s.arg1[4], ~0ULL);
	teardown(&f);
}

/* Records in a counter's ticks come out in nanoseconds. */
struct timed {
	uint64_t ts[8], dur[8];
	uint32_t parent_tid[8];
	int n;
};

static void collect_times(void *ctx, const struct syscap_rec *rec, const uint64_t *args)
{
	struct timed *t = ctx;

	(void)args;
	t->ts[t->n] = rec->ts_ns;
	t->dur[t->n] = rec->kind == SYSCAP_EV_SYSCALL ? rec->sys.dur_ns : 0;
	t->parent_tid[t->n] = rec->kind == SYSCAP_EV_SYSCALL ? 0 : rec->proc.parent_tid;
	t->n++;
}

static void produce_timed(struct ring_fixture *f, uint8_t kind, uint64_t ts, uint64_t dur)
{
	uint64_t off = f->prod & (RING_SIZE - 1);
	uint32_t hdr[2] = { SYSCAP_REC_SIZE, 0 };
	struct syscap_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.kind = kind;
	rec.ts_ns = ts;
	if (kind == SYSCAP_EV_SYSCALL) {
		rec.sys.dur_ns = dur;
	} else {
		rec.proc.parent_tgid = 77;
		rec.proc.parent_tid = 78;
	}
	memcpy(f->data + off, hdr, sizeof(hdr));
	memcpy(f->data + off + 8, &rec, sizeof(rec));
	f->prod += REC;
}

static void test_counter_ticks_become_nanoseconds(void)
{
	struct ring_fixture f;
	struct syscap_clock c;
	struct timed t = { 0 };

	setup(&f);
	/* 2.5 GHz, 1000 ticks read at 5 ms */
	syscap_clock_set(&c, "tsc", 2500000000ULL, 1000, 5000000);
	CHECK(!strcmp(c.source, "tsc"));
	f.r.clock = &c;
	produce_timed(&f, SYSCAP_EV_SYSCALL, 1000 + 2500, 2500);
	produce_timed(&f, SYSCAP_EV_SYSCALL, 0, 25);		/* before the reference */
	produce_timed(&f, SYSCAP_EV_FORK, 1000 + 25000, 0);
	produce_timed(&f, SYSCAP_EV_SYSCALL, 1000 + (1ULL << 62), 0);	/* no overflow */
	CHECK_EQ(syscap_ring_drain(&f.r, collect_times, &t, 100), 4);
	CHECK_EQ(t.ts[0], 5001000);
	CHECK_EQ(t.dur[0], 1000);
	CHECK_EQ(t.ts[1], 5000000 - 400);
	CHECK_EQ(t.dur[1], 10);
	CHECK_EQ(t.ts[2], 5010000);
	CHECK_EQ(t.parent_tid[2], 78);	/* a process record keeps its other fields */
	/* 2^62 ticks: 58 years, within a part in 10^9 (the rate's rounding) */
	CHECK(t.ts[3] >= 5000000 + (1ULL << 62) / 5 * 2 - (1ULL << 62) / 1000000000 &&
	      t.ts[3] <= 5000000 + (1ULL << 62) / 5 * 2 + (1ULL << 62) / 1000000000);
	/* the ring itself still holds ticks: the records are converted copies */
	CHECK_EQ(((const struct syscap_rec *)(f.data + 8))->ts_ns, 3500);
	teardown(&f);

	/* after anchors, a record in any segment converts as syscap_clock_ns does
	 * (the drain's newest-segment path and the search agree) */
	setup(&f);
	syscap_clock_set(&c, "tsc", 2500000000ULL, 1000, 5000000);
	syscap_clock_anchor(&c, 1000 + 2500000000ULL, 5000000 + 1000000000 + 3000);
	syscap_clock_anchor(&c, 1000 + 5000000000ULL, 5000000 + 2000000000 - 7000);
	CHECK_EQ(c.nseg, 3);
	f.r.clock = &c;
	memset(&t, 0, sizeof(t));
	{
		const uint64_t at[4] = { 500, 1000 + 1250000000ULL, 1000 + 3750000000ULL,
					 1000 + 6000000000ULL };

		for (int i = 0; i < 4; i++)
			produce_timed(&f, SYSCAP_EV_SYSCALL, at[i], 2500);
		CHECK_EQ(syscap_ring_drain(&f.r, collect_times, &t, 100), 4);
		for (int i = 0; i < 4; i++) {
			CHECK_EQ(t.ts[i], syscap_clock_ns(&c, at[i]));
			CHECK_EQ(t.dur[i], 1000);
		}
		CHECK(t.ts[1] < t.ts[2] && t.ts[2] < t.ts[3]);
	}
	teardown(&f);

	/* a rate that is no whole number of nanoseconds a tick: 24 MHz */
	syscap_clock_set(&c, "cntvct", 24000000, 0, 0);
	CHECK_EQ(syscap_clock_ns(&c, 24000000), 1000000000);
	CHECK_EQ(syscap_clock_dur(&c, 24), 1000);
	/* three hours of ticks: within 100 ns */
	CHECK(syscap_clock_ns(&c, 3 * 24000000ULL * 3600) + 100 >= 3ULL * 3600 * 1000000000 &&
	      syscap_clock_ns(&c, 3 * 24000000ULL * 3600) <= 3ULL * 3600 * 1000000000 + 100);
	/* monotonic: as they are */
	syscap_clock_set(&c, "monotonic", 0, 0, 0);
	CHECK_EQ(syscap_clock_ns(&c, 123456789), 123456789);
	CHECK_EQ(syscap_clock_dur(&c, 42), 42);
}

#define HZ24	24000000ULL

/* CLOCK_MONOTONIC at tick t of a 24 MHz counter that runs ppm slow, plus off */
static uint64_t truth(uint64_t t, int64_t ppm, int64_t off)
{
	return (uint64_t)((__int128)t * 1000000000 * (1000000 + ppm) / ((__int128)HZ24 * 1000000)) +
	       (uint64_t)off;
}

/* ns of ticks from..to (step apart) never go back; the last one's */
static uint64_t check_monotonic(const struct syscap_clock *c, uint64_t from, uint64_t to,
				uint64_t step)
{
	uint64_t prev = syscap_clock_ns(c, from), t, ns;

	for (t = from + step; t <= to; t += step) {
		ns = syscap_clock_ns(c, t);
		CHECK(ns >= prev);
		prev = ns;
	}
	return prev;
}

static void test_a_drifting_counter_is_followed_without_a_step(void)
{
	struct syscap_clock c;
	uint64_t before[8], t, k, i, worst = 0;

	/* the counter runs 200 ppm slow against CLOCK_MONOTONIC: at the rate
	 * the kernel calibrated, a second of ticks is 200 us short */
	syscap_clock_set(&c, "cntvct", HZ24, 0, 0);
	for (k = 1; k <= 20; k++) {
		t = k * HZ24;
		for (i = 0; i < 8; i++)	/* times already handed on */
			before[i] = syscap_clock_ns(&c, t - HZ24 + i * (HZ24 / 8));
		syscap_clock_anchor(&c, t, truth(t, 200, 0));
		for (i = 0; i < 8; i++)	/* ... do not change */
			CHECK_EQ(syscap_clock_ns(&c, t - HZ24 + i * (HZ24 / 8)), before[i]);
		/* no step at the reading: one tick is 42 ns */
		CHECK(syscap_clock_ns(&c, t) - syscap_clock_ns(&c, t - 1) <= 43);
		check_monotonic(&c, t - HZ24, t + HZ24, 9973);
		if (k >= 3)	/* once the rate is measured: on the line */
			for (i = 0; i <= 16; i++) {
				uint64_t x = t + i * (HZ24 / 16), a = syscap_clock_ns(&c, x);
				uint64_t b = truth(x, 200, 0), d = a > b ? a - b : b - a;

				worst = d > worst ? d : worst;
			}
	}
	CHECK(worst <= 50);
	/* without the readings the same second would be 200 us off */
	syscap_clock_set(&c, "cntvct", HZ24, 0, 0);
	CHECK(truth(20 * HZ24, 200, 0) - syscap_clock_ns(&c, 20 * HZ24) >= 20 * 199000);
}

static void test_a_reading_ahead_is_caught_up_forward_and_one_behind_by_slewing(void)
{
	struct syscap_clock c;
	uint64_t t = HZ24, k, last;
	int64_t d;

	/* CLOCK_MONOTONIC steps 5 ms ahead of the line: the times follow at
	 * once, forward */
	syscap_clock_set(&c, "tsc", HZ24, 0, 0);
	syscap_clock_anchor(&c, t, truth(t, 0, 5000000));
	CHECK_EQ(syscap_clock_ns(&c, t), truth(t, 0, 5000000));
	CHECK(syscap_clock_ns(&c, t - 1) < syscap_clock_ns(&c, t));

	/* a reading 5 ms behind the line: never back; slower by the measured
	 * rate (within 500 ppm) and the slew (500 ppm more) */
	syscap_clock_set(&c, "tsc", HZ24, 0, 0);
	last = 0;
	for (k = 1; k <= 14; k++) {
		t = k * HZ24;
		syscap_clock_anchor(&c, t, truth(t, 0, -5000000));
		CHECK(syscap_clock_ns(&c, t) >= last);
		last = check_monotonic(&c, t, t + HZ24, 10007);
		d = (int64_t)(syscap_clock_ns(&c, t + HZ24) - truth(t + HZ24, 0, -5000000));
		if (k == 1)	/* one second: 500 us to 1 ms closer */
			CHECK(d >= 3999000 && d <= 4501000);
		if (k == 2)	/* the rate is measured: 500 us a second */
			CHECK(d >= 3499000 && d <= 3501000);
		if (k >= 10)
			CHECK(d >= -50 && d <= 50);
	}
	/* a reading no newer than the last changes nothing */
	k = c.nseg;
	syscap_clock_anchor(&c, t, truth(t, 0, 0));
	syscap_clock_anchor(&c, t - 5, truth(t, 0, 0));
	CHECK_EQ(c.nseg, k);
	/* a monotonic clock takes no readings */
	syscap_clock_set(&c, "monotonic", 0, 0, 0);
	syscap_clock_anchor(&c, 10, 10);
	CHECK_EQ(syscap_clock_ns(&c, 123), 123);
}

static void test_old_readings_are_let_go_and_older_ticks_count_back(void)
{
	struct syscap_clock c;
	uint64_t k;

	syscap_clock_set(&c, "cntvct", HZ24, 1000, 7000000000ULL);
	for (k = 1; k <= 3 * SYSCAP_CLOCK_SEGS; k++)
		syscap_clock_anchor(&c, 1000 + k * HZ24, truth(k * HZ24, 100, 7000000000LL));
	CHECK_EQ(c.nseg, SYSCAP_CLOCK_SEGS);
	CHECK_EQ(c.seg[0].ticks, 1000 + (2 * SYSCAP_CLOCK_SEGS + 1) * HZ24);
	/* a syscall that entered before the oldest kept reading: its time
	 * counts back from there, in order, and no later than the start */
	check_monotonic(&c, 0, c.seg[1].ticks, HZ24 / 3);
	CHECK(syscap_clock_ns(&c, 1000) <= 7000000000ULL + 100 * 200 * SYSCAP_CLOCK_SEGS * 1000);
	/* the first reading stays the trace's reference */
	CHECK_EQ(c.ref_ticks, 1000);
	CHECK_EQ(c.ref_ns, 7000000000ULL);
}

int main(void)
{
	test_counter_ticks_become_nanoseconds();
	test_a_drifting_counter_is_followed_without_a_step();
	test_a_reading_ahead_is_caught_up_forward_and_one_behind_by_slewing();
	test_old_readings_are_let_go_and_older_ticks_count_back();
	test_order_and_batch_publication();
	test_busy_record_stops_drain();
	test_discarded_record_skipped();
	test_wraparound_is_contiguous();
	test_max_records_limits_batch();
	test_records_with_arguments();
	return check_report("test_ring");
}
