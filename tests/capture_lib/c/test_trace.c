/* Trace files: round trip, a corrupt block skipped, a cut-short file. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "../../../capture_lib/src/internal.h"
#include "syscap_backend.h"
#define SYSCAP_PROBE_INLINE static inline
#include "syscap_probe.h"

static char path[] = "/tmp/syscap-test-trace-XXXXXX";

static const char names[] = "read\0write\0\0getppid\0";

/*
 * ev as the probes write it, filled by their own code (syscap_probe.h), and
 * queued as the recorder queues a ring's record: the round trips check the
 * library's decoder against what both backends write.
 */
static int add_event(struct trace_writer *w, const struct syscap_event *ev)
{
	struct syscap_rec r;

	memset(&r, 0, sizeof(r));
	if (ev->kind != SYSCAP_EV_SYSCALL) {
		syscap_fill_proc(&r, ev->kind, ev->ts_ns, ev->ret, ev->tgid, ev->tid,
				 ev->proc.parent_tgid, ev->proc.parent_tid, ev->flags, ev->cpu);
		memcpy(r.proc.comm, ev->proc.comm, SYSCAP_COMM_LEN);
		return trace_writer_add_rec(w, &r, r.ts_ns, 0, NULL);
	}
	syscap_fill_syscall(&r, ev->ts_ns, ev->dur_ns, ev->ret, ev->tgid, ev->tid, ev->seq,
			    ev->nr, ev->raw_nr, ev->flags, ev->cpu);
	return trace_writer_add_rec(w, &r, r.ts_ns, r.sys.dur_ns, (const uint64_t *)ev->args);
}

/* syscap_pack_rec with the record's own time and duration */
static size_t pack(struct syscap_pack *st, const struct syscap_rec *r, const uint64_t *args,
		   uint8_t *out)
{
	return syscap_pack_rec(st, r, r->ts_ns, r->kind == SYSCAP_EV_SYSCALL ? r->sys.dur_ns : 0,
			       args, out);
}

static void write_trace(uint32_t blocks_of_events, int finish)
{
	struct syscap_trace_header h;
	struct syscap_trace_stats st = { .events = 42, .drops = 3 };
	struct syscap_trace_sysrow row = { .nr = 3, .calls = 42 };
	struct trace_writer *w;
	char err[256];
	uint32_t seq = 0;

	syscap_trace_header_init(&h, "bpf", 2);
	h.nsyscalls = 4;
	w = trace_writer_open(path, SYSCAP_CREATE_FORCE, &h, names, sizeof(names) - 1, err, sizeof(err));
	CHECK(w != NULL);
	for (uint32_t b = 0; b < blocks_of_events; b++) {
		for (int i = 0; i < 100; i++) {
			struct syscap_event e;

			memset(&e, 0, sizeof(e));
			e.kind = SYSCAP_EV_SYSCALL;
			e.seq = seq++;
			e.nr = 3;
			CHECK_EQ(add_event(w, &e), 0);
		}
		CHECK_EQ(trace_writer_flush(w), 0);
	}
	CHECK_EQ(trace_writer_stats(w, SYSCAP_BLOCK_STATS, &st, &row, 1), 0);
	if (finish)
		CHECK_EQ(trace_writer_stats(w, SYSCAP_BLOCK_END, &st, &row, 1), 0);
	trace_writer_close(w);
}

/* Count events and check their sequence numbers are consecutive. */
static uint32_t read_all(struct syscap_trace *t, int *stats_blocks, uint32_t *gaps)
{
	struct syscap_trace_block b;
	uint32_t n = 0, next = 0;

	*stats_blocks = 0;
	*gaps = 0;
	while (syscap_trace_next(t, &b)) {
		if (b.type == SYSCAP_BLOCK_EVENTS) {
			for (uint32_t i = 0; i < b.count; i++) {
				if (b.events[i].seq != next)
					(*gaps)++;
				next = b.events[i].seq + 1;
			}
			n += b.count;
		} else if (b.type == SYSCAP_BLOCK_STATS || b.type == SYSCAP_BLOCK_END) {
			CHECK_EQ(b.stats->events, 42);
			CHECK_EQ(b.rows[0].calls, 42);
			(*stats_blocks)++;
		}
	}
	return n;
}

static void test_round_trip(void)
{
	struct syscap_trace *t;
	char err[256];
	int stats;
	uint32_t gaps;

	write_trace(5, 1);
	t = syscap_trace_open(path, err, sizeof(err));
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(!strcmp(syscap_trace_header(t)->backend, "bpf"));
	CHECK(!strcmp(syscap_trace_name(t, 0), "read"));
	CHECK(!strcmp(syscap_trace_name(t, 3), "getppid"));
	CHECK(syscap_trace_name(t, 2) == NULL);
	CHECK(syscap_trace_name(t, 99) == NULL);
	CHECK_EQ(read_all(t, &stats, &gaps), 500);
	CHECK_EQ(stats, 2);
	CHECK_EQ(gaps, 0);
	CHECK(syscap_trace_complete(t));
	CHECK(!strcmp(syscap_trace_warnings(t), ""));
	syscap_trace_rewind(t);
	CHECK_EQ(read_all(t, &stats, &gaps), 500);
	syscap_trace_close(t);
}

static void test_corrupt_block_is_skipped(void)
{
	struct syscap_trace *t;
	struct stat st;
	char err[256];
	int fd, stats;
	uint32_t gaps;
	off_t second;

	write_trace(5, 1);
	CHECK(stat(path, &st) == 0);
	/* flip a byte in the second event block's payload */
	t = syscap_trace_open(path, err, sizeof(err));
	{
		struct syscap_trace_block b;

		CHECK(syscap_trace_next(t, &b) && syscap_trace_next(t, &b));
		CHECK_EQ(b.type, SYSCAP_BLOCK_EVENTS);
		second = (off_t)b.offset;
	}
	syscap_trace_close(t);
	fd = open(path, O_RDWR);
	CHECK(pwrite(fd, "\xff", 1, second + (off_t)sizeof(struct syscap_block_header) + 200) == 1);
	close(fd);

	t = syscap_trace_open(path, err, sizeof(err));
	CHECK(t != NULL);
	CHECK_EQ(read_all(t, &stats, &gaps), 400);
	CHECK_EQ(gaps, 1);			/* the 100 records of the bad block */
	CHECK(syscap_trace_complete(t));
	CHECK(strstr(syscap_trace_warnings(t), "corrupt block at offset") != NULL);
	syscap_trace_close(t);
}

/* A block whose CRC matches but whose bytes are not packed records (a
 * crafted file) is skipped like a corrupt one. */
static void test_undecodable_packed_block(void)
{
	struct syscap_block_header bh;
	struct syscap_trace_block b;
	struct syscap_trace *t;
	uint8_t payload[SYSCAP_BLOCK_BYTES];
	char err[256];
	int fd, stats;
	uint32_t gaps;
	off_t second;

	write_trace(3, 1);
	t = syscap_trace_open(path, err, sizeof(err));
	CHECK(syscap_trace_next(t, &b) && syscap_trace_next(t, &b));
	second = (off_t)b.offset;
	syscap_trace_close(t);
	fd = open(path, O_RDWR);
	CHECK(pread(fd, &bh, sizeof(bh), second) == (ssize_t)sizeof(bh));
	CHECK(bh.len <= sizeof(payload));
	CHECK(pread(fd, payload, bh.len, second + (off_t)sizeof(bh)) == (ssize_t)bh.len);
	payload[0] |= 0x80;		/* a tag bit no record has */
	bh.crc = 0;
	bh.crc = syscap_crc32(syscap_crc32(0, &bh, sizeof(bh)), payload, bh.len);
	CHECK(pwrite(fd, &bh, sizeof(bh), second) == (ssize_t)sizeof(bh));
	CHECK(pwrite(fd, payload, bh.len, second + (off_t)sizeof(bh)) == (ssize_t)bh.len);
	close(fd);

	t = syscap_trace_open(path, err, sizeof(err));
	CHECK(t != NULL);
	CHECK_EQ(read_all(t, &stats, &gaps), 200);
	CHECK_EQ(gaps, 1);
	CHECK(syscap_trace_complete(t));
	CHECK(strstr(syscap_trace_warnings(t), "are not packed records; skipped") != NULL);
	syscap_trace_close(t);
}

static void test_cut_short_file(void)
{
	struct syscap_trace *t;
	struct stat st;
	char err[256];
	int stats;
	uint32_t gaps;

	write_trace(3, 0);
	CHECK(stat(path, &st) == 0);
	CHECK(truncate(path, st.st_size - 10) == 0);	/* into the STATS block */
	t = syscap_trace_open(path, err, sizeof(err));
	CHECK(t != NULL);
	CHECK_EQ(read_all(t, &stats, &gaps), 300);
	CHECK_EQ(stats, 0);
	CHECK(!syscap_trace_complete(t));
	CHECK(strstr(syscap_trace_warnings(t), "truncated") != NULL);
	syscap_trace_close(t);
}

static void test_not_a_trace(void)
{
	char err[256] = "";
	int fd = open(path, O_WRONLY | O_TRUNC);

	CHECK(write(fd, "hello, this is not a trace file at all, nor is it long enough?"
		       "........................................................................"
		       "........................................................................",
		    206) == 206);
	close(fd);
	CHECK(syscap_trace_open(path, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "not a syscap trace") != NULL);
}

/* A header over a names table, with its CRC. buf must hold it (8-aligned). */
static size_t make_header(uint64_t *buf, const char *names, uint32_t names_len,
			  uint32_t nsyscalls)
{
	struct syscap_trace_header h;

	syscap_trace_header_init(&h, "bpf", 1);
	h.nsyscalls = nsyscalls;
	h.names_len = names_len;
	h.header_size = (uint32_t)sizeof(h) + names_len;
	h.crc = 0;
	h.crc = syscap_crc32(syscap_crc32(0, &h, sizeof(h)), names, names_len);
	memcpy(buf, &h, sizeof(h));
	memcpy((char *)buf + sizeof(h), names, names_len);
	return sizeof(h) + names_len;
}

static void test_event_count_overflowing_32_bits(void)
{
	/* count * 48 wraps to 0 in 32 bits: a block claiming 2^28 records in 0 bytes */
	uint64_t buf[64] = { 0 };
	size_t n = make_header(buf, "read\0write\0\0\0\0\0", 16, 2);
	struct syscap_block_header bh = {
		.magic = SYSCAP_BLOCK_MAGIC, .type = SYSCAP_BLOCK_EVENTS, .count = 1u << 28,
	};
	struct syscap_trace_block b;
	struct syscap_trace *t;
	char err[256];

	bh.crc = syscap_crc32(0, &bh, sizeof(bh));
	memcpy((char *)buf + n, &bh, sizeof(bh));
	t = syscap_trace_open_mem(buf, n + sizeof(bh), "mem", err, sizeof(err));
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(!strcmp(syscap_trace_name(t, 1), "write"));
	CHECK_EQ(syscap_trace_next(t, &b), 0);
	CHECK(strstr(syscap_trace_warnings(t), "truncated") != NULL);
	CHECK_EQ(syscap_trace_next(t, &b), 0);
	syscap_trace_close(t);
}

static void test_names_table_must_end_in_nul(void)
{
	uint64_t buf[32] = { 0 };
	char err[256] = "";
	size_t n = make_header(buf, "read\0writewrites", 16, 2);

	CHECK(syscap_trace_open_mem(buf, n, "mem", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "names table") != NULL);
	/* more names claimed than the table has bytes for */
	n = make_header(buf, "read\0write\0\0\0\0\0", 16, 17);
	CHECK(syscap_trace_open_mem(buf, n, "mem", err, sizeof(err)) == NULL);
	/* a header whose size would put the blocks off their 8-byte alignment */
	n = make_header(buf, "read\0write\0\0\0\0", 15, 2);
	CHECK(syscap_trace_open_mem(buf, n, "mem", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "header is damaged") != NULL);
}

/* One record of each kind, every field set to something of its own. */
static void sample_events(struct syscap_event ev[4])
{
	memset(ev, 0, 4 * sizeof(*ev));
	ev[0].kind = SYSCAP_EV_SYSCALL;
	ev[0].ts_ns = 0x1122334455667788ULL;
	ev[0].dur_ns = 0x0102030405060708ULL;
	ev[0].ret = -4095;
	ev[0].tgid = 4000000;
	ev[0].tid = 4000001;
	ev[0].seq = 0xfffffffe;
	ev[0].nr = SYSCAP_NR_COMPAT;
	ev[0].raw_nr = 0x12345678;
	ev[0].flags = SYSCAP_F_COMPAT | SYSCAP_F_NOENTRY;
	ev[0].cpu = 255;
	for (int i = 0; i < 6; i++)
		ev[0].args[i] = 0xa0a0a0a0a0a0a0a0ULL + (uint64_t)i;
	ev[1].kind = SYSCAP_EV_FORK;
	ev[1].ts_ns = 7;
	ev[1].tgid = 9;
	ev[1].tid = 9;
	ev[1].cpu = 1;
	ev[1].proc.parent_tgid = 8;
	ev[1].proc.parent_tid = 10;
	memcpy(ev[1].proc.comm, "fifteen-chars!!", 16);
	ev[2] = ev[1];
	ev[2].kind = SYSCAP_EV_EXEC;
	ev[3] = ev[1];
	ev[3].kind = SYSCAP_EV_EXIT;
	ev[3].ret = -9;		/* killed: an int exit code */
	ev[3].flags = SYSCAP_F_GROUP_DEAD;
}

/* Compact records (version 2), with and without arguments: every field read
 * back as written, arguments only when the trace has them, half the bytes. */
static void test_compact_records(void)
{
	for (int args = 0; args < 2; args++) {
		struct syscap_event ev[4], want;
		struct syscap_trace_header h;
		struct syscap_trace_block b;
		struct trace_writer *w;
		struct syscap_trace *t;
		char err[256];
		struct stat st;
		uint32_t n = 0;

		sample_events(ev);
		syscap_trace_header_init(&h, "kmod", 1);
		h.nsyscalls = 4;
		if (args)
			h.record_size = SYSCAP_REC_ARGS_SIZE;
		w = trace_writer_open(path, SYSCAP_CREATE_FORCE, &h, names, sizeof(names) - 1, err,
				      sizeof(err));
		CHECK(w != NULL);
		if (!w)
			return;
		for (int i = 0; i < 4; i++)
			CHECK_EQ(add_event(w, &ev[i]), 0);
		CHECK_EQ(trace_writer_flush(w), 0);
		trace_writer_close(w);
		CHECK(stat(path, &st) == 0);
		t = syscap_trace_open(path, err, sizeof(err));
		CHECK(t != NULL);
		if (!t)
			return;
		/* packed: one block, each record in less than its struct */
		CHECK_EQ(syscap_trace_header(t)->record_version, SYSCAP_TRACE_PACKED);
		CHECK((uint64_t)st.st_size < syscap_trace_header(t)->header_size +
		      sizeof(struct syscap_block_header) +
		      4 * (args ? SYSCAP_REC_ARGS_SIZE : SYSCAP_REC_SIZE));
		while (syscap_trace_next(t, &b)) {
			CHECK_EQ(b.type, SYSCAP_BLOCK_EVENTS);
			for (uint32_t i = 0; i < b.count && n < 4; i++, n++) {
				want = ev[n];
				if (!args && want.kind == SYSCAP_EV_SYSCALL)
					memset(want.args, 0, sizeof(want.args));
				CHECK(!memcmp(&b.events[i], &want, sizeof(want)));
			}
		}
		CHECK_EQ(n, 4);
		syscap_trace_close(t);
	}
}

/* A trace of version-1 records (struct syscap_event as is), as syscap wrote
 * them before version 2, still reads, in place. */
static void test_version1_records(void)
{
	static uint64_t buf[(sizeof(struct syscap_trace_header) + 8 +
			     sizeof(struct syscap_block_header) + 4 * SYSCAP_EVENT_SIZE) / 8];
	struct syscap_block_header bh = {
		.magic = SYSCAP_BLOCK_MAGIC, .type = SYSCAP_BLOCK_EVENTS, .count = 4,
		.len = 4 * SYSCAP_EVENT_SIZE,
	};
	struct syscap_trace_header h;
	struct syscap_trace_block b;
	struct syscap_event ev[4];
	struct syscap_trace *t;
	uint8_t *p = (uint8_t *)buf;
	char err[256];

	sample_events(ev);
	syscap_trace_header_init(&h, "bpf", 1);
	h.record_version = SYSCAP_RECORD_VERSION;
	h.record_size = SYSCAP_EVENT_SIZE;
	h.nsyscalls = 1;
	h.names_len = 8;
	h.header_size = sizeof(h) + 8;
	h.crc = 0;
	h.crc = syscap_crc32(syscap_crc32(0, &h, sizeof(h)), "read\0\0\0\0", 8);
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), "read\0\0\0\0", 8);
	memcpy(p + h.header_size + sizeof(bh), ev, sizeof(ev));
	bh.crc = syscap_crc32(syscap_crc32(0, &bh, sizeof(bh)), ev, sizeof(ev));
	memcpy(p + h.header_size, &bh, sizeof(bh));
	t = syscap_trace_open_mem(buf, sizeof(buf), "v1", err, sizeof(err));
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK_EQ(syscap_trace_next(t, &b), 1);
	CHECK_EQ(b.count, 4);
	CHECK(!memcmp(b.events, ev, sizeof(ev)));
	CHECK(b.events == (const void *)(p + h.header_size + sizeof(bh)));	/* in place */
	syscap_trace_close(t);
	/* a record size that matches neither version is refused in one line */
	h.record_size = SYSCAP_REC_SIZE;
	h.crc = 0;
	h.crc = syscap_crc32(syscap_crc32(0, &h, sizeof(h)), "read\0\0\0\0", 8);
	memcpy(p, &h, sizeof(h));
	CHECK(syscap_trace_open_mem(buf, sizeof(buf), "v1", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "48-byte records of version 1") != NULL);
}

static void test_not_a_regular_file(void)
{
	char err[256] = "";

	CHECK(syscap_trace_open("/tmp", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "not a regular file") != NULL);
}

/*
 * A trace recorded with a counter clock names it in the header and says how
 * its ticks became nanoseconds in a CLOCK block, which readers of the events
 * pass over; a trace of the monotonic clock has no such block.
 */
static void test_clock_block(void)
{
	struct syscap_trace_stats st = { .events = 42 };
	struct syscap_trace_sysrow row = { .nr = 3, .calls = 42 };
	struct syscap_trace_header h;
	struct syscap_trace_clock tc;
	struct syscap_trace_block b;
	struct syscap_clock c;
	struct trace_writer *w;
	struct syscap_trace *t;
	struct syscap_event e;
	char err[256];
	int stats;
	uint32_t gaps;

	syscap_clock_set(&c, "tsc", 2500000000ULL, 1000, 5000000);
	syscap_trace_header_init(&h, "kmod", 2);
	memcpy(h.clock, c.source, sizeof(h.clock));
	h.nsyscalls = 4;
	w = trace_writer_open(path, SYSCAP_CREATE_FORCE, &h, names, sizeof(names) - 1, err,
			      sizeof(err));
	CHECK(w != NULL);
	if (!w)
		return;
	CHECK_EQ(trace_writer_clock(w, &c), 0);
	memset(&e, 0, sizeof(e));
	e.kind = SYSCAP_EV_SYSCALL;
	e.nr = 3;
	CHECK_EQ(add_event(w, &e), 0);
	CHECK_EQ(trace_writer_stats(w, SYSCAP_BLOCK_END, &st, &row, 1), 0);
	trace_writer_close(w);
	t = syscap_trace_open(path, err, sizeof(err));
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(!strcmp(syscap_trace_header(t)->clock, "tsc"));
	CHECK_EQ(syscap_trace_clock(t, &tc), 1);
	CHECK(!strcmp(tc.source, "tsc"));
	CHECK_EQ(tc.hz, 2500000000ULL);
	CHECK_EQ(tc.ref_ticks, 1000);
	CHECK_EQ(tc.ref_ns, 5000000);
	CHECK_EQ(tc.mult, c.mult);
	CHECK(syscap_trace_next(t, &b) == 1);
	CHECK_EQ(b.type, SYSCAP_BLOCK_CLOCK);
	CHECK_EQ(b.count, 0);	/* no records, no rows */
	syscap_trace_rewind(t);
	CHECK_EQ(read_all(t, &stats, &gaps), 1);
	CHECK(syscap_trace_complete(t));
	syscap_trace_close(t);

	/* the monotonic clock: no block */
	syscap_clock_set(&c, "monotonic", 0, 0, 0);
	write_trace(1, 1);
	t = syscap_trace_open(path, err, sizeof(err));
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(!strcmp(syscap_trace_header(t)->clock, "monotonic"));
	CHECK_EQ(syscap_trace_clock(t, &tc), 0);
	syscap_trace_close(t);
}

/* A value of up to 64 bits, small ones most often (as in real records). */
static uint64_t rnd_val(void)
{
	switch (check_rand() % 4) {
	case 0:
		return check_rand() % 4;
	case 1:
		return check_rand() % 100000;
	case 2:
		return ~0ULL - check_rand() % 4;
	default:
		return check_rand();
	}
}

/*
 * A record as a ring holds it; the previous one's fields now and then, and
 * half the time a syscall that continues it as most do (same task, next seq,
 * no flags, no raw number: the packer's fast path), but for one field.
 */
static void rnd_rec(struct syscap_rec *r, const struct syscap_rec *prev, uint64_t *args)
{
	static const uint8_t kinds[] = { SYSCAP_EV_SYSCALL, SYSCAP_EV_SYSCALL, SYSCAP_EV_FORK,
					 SYSCAP_EV_EXEC, SYSCAP_EV_EXIT, 0, 5, 200 };
	int next = check_rand() % 2, odd = next ? (int)(check_rand() % 16) : -1;

	memset(r, 0, sizeof(*r));
	r->kind = next && odd != 0 ? SYSCAP_EV_SYSCALL : kinds[check_rand() % sizeof(kinds)];
	r->ts_ns = check_rand() % 2 ? prev->ts_ns + check_rand() % 5000 : rnd_val();
	r->tgid = next && odd != 1 ? prev->tgid :
		  check_rand() % 2 ? prev->tgid : (uint32_t)rnd_val();
	r->tid = next && odd != 2 ? prev->tid : check_rand() % 2 ? prev->tid : (uint32_t)rnd_val();
	r->cpu = next && odd != 3 ? prev->cpu : check_rand() % 2 ? prev->cpu : (uint16_t)rnd_val();
	r->seq = next && odd != 4 ? prev->seq + 1 :
		 check_rand() % 2 ? prev->seq + 1 : (uint32_t)rnd_val();
	r->flags = next && odd != 5 ? 0 : check_rand() % 2 ? 0 : (uint8_t)check_rand();
	if (r->kind < SYSCAP_EV_SYSCALL || r->kind > SYSCAP_EV_EXIT) {
		/* a kind unknown to the packing: any bytes */
		for (size_t i = 0; i < sizeof(r->sys); i++)
			((uint8_t *)&r->sys)[i] = (uint8_t)check_rand();
	} else if (r->kind == SYSCAP_EV_SYSCALL) {
		r->sys.ret = (int64_t)rnd_val();
		r->sys.dur_ns = rnd_val();
		r->sys.nr = (uint16_t)rnd_val();
		r->sys.reserved = (next && odd != 6) || check_rand() % 4 ? 0 : (uint16_t)rnd_val();
		r->sys.raw_nr = (next && odd != 7) || check_rand() % 2 ? 0 : (uint32_t)rnd_val();
	} else {
		size_t n = check_rand() % (SYSCAP_COMM_LEN + 1);

		r->proc.parent_tgid = (uint32_t)rnd_val();
		r->proc.parent_tid = (uint32_t)rnd_val();
		for (size_t i = 0; i < n; i++)
			r->proc.comm[i] = (char)(1 + check_rand() % 255);
	}
	for (int i = 0; i < 6; i++)
		args[i] = rnd_val();
}

/* Packed records unpack to the very bytes packed, and a cut one does not. */
static void test_pack_round_trip(void)
{
	uint8_t buf[SYSCAP_PACK_MAX_BYTES * 64];

	for (int round = 0; round < 2000; round++) {
		struct syscap_pack w = { .args = round % 2 }, r = { .args = round % 2 };
		struct syscap_rec in[64], prev, out;
		uint64_t args[64][6], got[6];
		size_t len[64], off = 0;
		int n = 1 + (int)(check_rand() % 64);

		memset(&prev, 0, sizeof(prev));
		for (int i = 0; i < n; i++) {
			rnd_rec(&in[i], &prev, args[i]);
			prev = in[i];
			len[i] = pack(&w, &in[i], args[i], buf + off);
			CHECK(len[i] >= 5 && len[i] <= SYSCAP_PACK_MAX_BYTES);
			off += len[i];
		}
		off = 0;
		for (int i = 0; i < n; i++) {
			struct syscap_pack cut = r;

			/* every shorter prefix is refused */
			if (check_rand() % 8 == 0)
				for (size_t k = 0; k < len[i]; k++)
					CHECK_EQ(syscap_unpack_rec(&cut, buf + off, k, &out, got), -1);
			CHECK_EQ(syscap_unpack_rec(&r, buf + off, len[i] + 7, &out, got),
				 (long)len[i]);
			CHECK(!memcmp(&out, &in[i], sizeof(out)));
			if (r.args && in[i].kind == SYSCAP_EV_SYSCALL)
				CHECK(!memcmp(got, args[i], sizeof(got)));
			off += len[i];
		}
	}
}

/*
 * The packer writes the time and duration it is given, not the record's (the
 * recorder reads records in place in counter ticks and converts them apart):
 * on the one-test path and the general one alike.
 */
static void test_pack_takes_the_callers_times(void)
{
	uint8_t buf[SYSCAP_PACK_MAX_BYTES];

	for (int round = 0; round < 200; round++) {
		struct syscap_pack w = { 0 }, r = { 0 };
		struct syscap_rec in, prev, want, out;
		uint64_t args[6], ts = 0;

		memset(&prev, 0, sizeof(prev));
		for (int i = 0; i < 32; i++) {
			uint64_t dur;

			rnd_rec(&in, &prev, args);
			prev = in;
			want = in;
			ts += 1 + check_rand() % 100000;	/* "converted": any rising time */
			want.ts_ns = ts;
			dur = in.kind == SYSCAP_EV_SYSCALL ? in.sys.dur_ns / 3 + 1 : 0;
			if (in.kind == SYSCAP_EV_SYSCALL)
				want.sys.dur_ns = dur;
			CHECK(syscap_pack_rec(&w, &in, ts, dur, NULL, buf) > 0);
			CHECK(syscap_unpack_rec(&r, buf, sizeof(buf), &out, NULL) > 0);
			CHECK(!memcmp(&out, &want, sizeof(out)));
		}
	}
}

/*
 * The bytes of a syscall that continues the record before it (the packer's
 * fast path), as syscap_trace.h lays them out, also where its seq wraps.
 */
static void test_pack_bytes(void)
{
	static const uint8_t want[] = {
		SYSCAP_EV_SYSCALL | SYSCAP_PACK_SAME_TASK | SYSCAP_PACK_NEXT_SEQ |
			SYSCAP_PACK_NO_FLAGS | SYSCAP_PACK_NO_RAW,
		0xb8, 0x17,	/* ts_ns +1500, zigzag 3000 */
		0xa2, 0x42,	/* ret 4241, zigzag 8482 */
		0xac, 0x02,	/* dur_ns 300 */
		0x6e,		/* nr 110 */
	};
	struct syscap_pack w = { 0 }, r = { 0 };
	struct syscap_rec rec, out;
	uint8_t buf[SYSCAP_PACK_MAX_BYTES];

	memset(&rec, 0, sizeof(rec));
	rec.kind = SYSCAP_EV_SYSCALL;
	rec.tgid = 4242;
	rec.tid = 4243;
	rec.cpu = 3;
	rec.seq = UINT32_MAX;
	rec.ts_ns = 1000000;
	CHECK(pack(&w, &rec, NULL, buf) > 0);
	CHECK(syscap_unpack_rec(&r, buf, sizeof(buf), &out, NULL) > 0);
	rec.ts_ns += 1500;
	rec.seq = 0;
	rec.sys.ret = 4241;
	rec.sys.dur_ns = 300;
	rec.sys.nr = 110;
	CHECK_EQ(pack(&w, &rec, NULL, buf), sizeof(want));
	CHECK(!memcmp(buf, want, sizeof(want)));
	CHECK_EQ(syscap_unpack_rec(&r, buf, sizeof(buf), &out, NULL), (long)sizeof(want));
	CHECK(!memcmp(&out, &rec, sizeof(out)));
	/* another CPU, or a seq that skips one, is written out (1 byte each) */
	for (int i = 0; i < 2; i++) {
		rec.ts_ns += 1500;
		rec.cpu = 4;
		rec.seq = i ? 3 : 1;
		CHECK_EQ(pack(&w, &rec, NULL, buf), sizeof(want) + 2);
		CHECK_EQ(buf[0], want[0] & ~SYSCAP_PACK_NEXT_SEQ);
		CHECK(!memcmp(buf + 1, want + 1, 2));
		CHECK_EQ(syscap_unpack_rec(&r, buf, sizeof(buf), &out, NULL),
			 (long)sizeof(want) + 2);
		CHECK(!memcmp(&out, &rec, sizeof(out)));
	}
}

/* Varints as LEB128 writes them, at every length's edges; the byte after a
 * short one may be written but is not counted. */
static void test_varint_edges(void)
{
	for (int bits = 0; bits <= 64; bits++) {
		for (int d = -1; d <= 1; d++) {
			uint64_t v = (bits == 64 ? 0 : 1ULL << bits) + (uint64_t)d;
			uint8_t got[16], want[16];
			size_t n = 0, len;

			if (bits == 64 && d >= 0)
				v = UINT64_MAX - (uint64_t)d;
			for (uint64_t x = v; x >= 0x80; x >>= 7)
				want[n++] = (uint8_t)(x | 0x80);
			want[n] = (uint8_t)(v >> (7 * n));
			n++;
			len = (size_t)(syscap_put_u(got, v) - got);
			CHECK_EQ(len, n);
			CHECK(!memcmp(got, want, n));
		}
	}
}

/* A typical run of one process's syscalls on one CPU packs small. */
static void test_pack_size(void)
{
	struct syscap_pack w = { 0 };
	struct syscap_rec r;
	uint8_t buf[SYSCAP_PACK_MAX_BYTES];
	size_t total = 0;

	memset(&r, 0, sizeof(r));
	r.kind = SYSCAP_EV_SYSCALL;
	r.tgid = r.tid = 4242;
	r.cpu = 1;
	r.ts_ns = 123456789012345ULL;
	pack(&w, &r, NULL, buf);
	for (int i = 0; i < 1000; i++) {
		r.ts_ns += 1500 + (uint64_t)(i % 7) * 100;
		r.seq++;
		r.sys.nr = (uint16_t)(i % 3 ? 110 : 0);
		r.sys.ret = i % 3 ? 4241 : 64;
		r.sys.dur_ns = 300 + (uint64_t)(i % 5) * 40;
		total += pack(&w, &r, NULL, buf);
	}
	CHECK(total <= 1000 * 9);
}

int main(void)
{
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	test_round_trip();
	test_corrupt_block_is_skipped();
	test_undecodable_packed_block();
	test_cut_short_file();
	test_not_a_trace();
	test_event_count_overflowing_32_bits();
	test_names_table_must_end_in_nul();
	test_not_a_regular_file();
	test_compact_records();
	test_version1_records();
	test_clock_block();
	test_pack_round_trip();
	test_pack_takes_the_callers_times();
	test_pack_bytes();
	test_pack_size();
	test_varint_edges();
	unlink(path);
	return check_report("test_trace");
}
