// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer target for trace files: the path `syscap report`, `top --replay`
 * and `syscap export` take through capture_lib. Each input is parsed from
 * memory (the same parser the file path uses after mmap), every block and
 * record is read and aggregated as the report does, the trace is replayed
 * in steps as top does, and it is exported to Perfetto JSON through the real
 * file path. The input's bytes are also decoded as packed records.
 *
 *   make -C capture_lib fuzz fuzz-run FUZZ_SECONDS=30
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "internal.h"

/* The input as a file for the exporter, which takes a path: a memfd, so no
 * run leaves files behind, however it ends. Its output goes to /dev/null. */
static int in_fd = -1;
static char in_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	in_fd = memfd_create("syscap-fuzz-input", MFD_CLOEXEC);
	if (in_fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(in_path, sizeof(in_path), "/proc/self/fd/%d", in_fd);
	return 0;
}

/* Read every byte a consumer may read, so ASan sees any access outside the input. */
static volatile uint64_t sink;

static void touch_names(struct syscap_trace *t)
{
	const struct syscap_trace_header *h = syscap_trace_header(t);

	sink += h->start_mono_ns + h->ncpu + strnlen(h->arch, sizeof(h->arch));
	for (uint32_t nr = 0; nr <= h->nsyscalls && nr < 4 * SYSCAP_MAX_SYSCALLS; nr++) {
		const char *name = syscap_trace_name(t, nr);

		if (name)
			sink += strlen(name);
	}
	sink += syscap_trace_name(t, UINT32_MAX) != NULL;
	{
		struct syscap_trace_clock c;

		if (syscap_trace_clock(t, &c))
			sink += strlen(c.source) + c.hz + c.mult;
	}
}

/* One pass as build_report does: all records into the aggregator. */
static void report_pass(struct syscap_trace *t)
{
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_trace_block b;
	struct syscap_snapshot snap;

	if (!a)
		return;
	while (syscap_trace_next(t, &b)) {
		if (b.type == SYSCAP_BLOCK_EVENTS) {
			syscap_agg_add(a, b.events, b.count);
			if (b.count)
				sink += b.events[b.count - 1].ts_ns + b.events[b.count - 1].dur_ns;
		} else if (b.type == SYSCAP_BLOCK_STATS || b.type == SYSCAP_BLOCK_END) {
			sink += b.stats->mono_ns + b.stats->drops + b.stats->max_used;
			for (uint32_t i = 0; i < b.count; i++) {
				const char *name = syscap_trace_name(t, b.rows[i].nr);

				sink += b.rows[i].calls + (name ? strlen(name) : 0);
			}
		}
	}
	if (syscap_agg_snapshot(a, &snap) == 0) {
		for (uint32_t i = 0; i < snap.nsys; i++) {
			const char *name = syscap_trace_name(t, snap.sys[i].nr);

			sink += snap.sys[i].count + (name ? strlen(name) : 0);
		}
		for (uint32_t i = 0; i < snap.nprocs; i++)
			sink += strnlen(snap.procs[i].comm, SYSCAP_COMM_LEN) + snap.procs[i].nrows;
	}
	sink += syscap_trace_complete(t) + strlen(syscap_trace_warnings(t));
	syscap_agg_free(a);
}

/* As ReplaySource does: records fed up to a clock that advances in steps. */
static void replay_pass(struct syscap_trace *t)
{
	struct syscap_agg *a = syscap_agg_new();
	struct syscap_trace_block b;
	struct syscap_snapshot snap;
	uint64_t now = syscap_trace_header(t)->start_mono_ns;
	int steps = 0;

	if (!a)
		return;
	syscap_trace_rewind(t);
	while (syscap_trace_next(t, &b)) {
		uint32_t pos = 0;

		if (b.type != SYSCAP_BLOCK_EVENTS)
			continue;
		while (pos < b.count && steps < 64) {
			pos += syscap_agg_add_until(a, b.events + pos, b.count - pos, now);
			if (pos < b.count) {
				now = b.events[pos].ts_ns + 1;	/* jump to the next record */
				steps++;
				syscap_agg_snapshot(a, &snap);
			}
		}
	}
	syscap_agg_snapshot(a, &snap);
	syscap_agg_free(a);
}

static void export_file(const uint8_t *data, size_t size)
{
	struct syscap_export_opts o = { .counter_ns = 100000000 };
	struct syscap_export_result r;
	char err[512];

	if (ftruncate(in_fd, 0) || (size && pwrite(in_fd, data, size, 0) != (ssize_t)size))
		abort();
	if (syscap_export_perfetto(in_path, "/dev/null", &o, &r, err, sizeof(err)))
		sink += strlen(err);
}

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/*
 * Structure-aware part: after libFuzzer's own mutation, most inputs get
 * their header and block CRCs recomputed, so a change to a length, a count
 * or a record reaches the code behind the checksum instead of stopping at
 * it. The rest keep the mutation as it is, for the resynchronising path.
 */
static void fix_crcs(uint8_t *data, size_t size)
{
	struct syscap_trace_header h;
	uint64_t off;

	if (size < sizeof(h))
		return;
	memcpy(&h, data, sizeof(h));
	if ((uint64_t)sizeof(h) + h.names_len > size)
		return;
	h.crc = 0;
	h.crc = syscap_crc32(syscap_crc32(0, &h, sizeof(h)), data + sizeof(h), h.names_len);
	memcpy(data + offsetof(struct syscap_trace_header, crc), &h.crc, sizeof(h.crc));
	off = (uint64_t)sizeof(h) + h.names_len;
	while (size - off >= sizeof(struct syscap_block_header)) {
		struct syscap_block_header bh;

		memcpy(&bh, data + off, sizeof(bh));
		if (bh.magic != SYSCAP_BLOCK_MAGIC) {
			off += 8;	/* as the reader scans */
			continue;
		}
		if (bh.len > size - off - sizeof(bh))
			break;
		bh.crc = 0;
		bh.crc = syscap_crc32(syscap_crc32(0, &bh, sizeof(bh)), data + off + sizeof(bh), bh.len);
		memcpy(data + off + offsetof(struct syscap_block_header, crc), &bh.crc, sizeof(bh.crc));
		off += sizeof(bh) + bh.len;
	}
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	if (seed % 8)
		fix_crcs(data, size);
	return size;
}

/*
 * The input as the payload of a packed EVENTS block (record version 3), with
 * and without arguments. A block's CRC keeps mutated payloads from reaching
 * the decoder through a file, but a crafted file carries a matching CRC: the
 * decoder must stand any bytes on its own.
 */
static void unpack_pass(const uint8_t *data, size_t size)
{
	for (int args = 0; args < 2; args++) {
		struct syscap_pack st = { .args = args };
		const uint8_t *p = data, *end = data + size;
		struct syscap_event ev;
		struct syscap_rec r;
		uint64_t a[6];
		long n;

		while (p < end && (n = syscap_unpack_rec(&st, p, (size_t)(end - p), &r, a)) > 0) {
			if (n > end - p)
				abort();	/* took bytes it was not given */
			syscap_rec_decode(&r, args ? a : NULL, &ev);
			sink += ev.ts_ns + ev.dur_ns + ev.nr + ev.args[5] + ev.proc.comm[15];
			p += n;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The file path hands the parser a page-aligned mapping. */
	uint8_t *buf = aligned_alloc(8, size ? (size + 7) & ~(size_t)7 : 8);
	struct syscap_trace *t;
	char err[512];

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	t = syscap_trace_open_mem(buf, size, "fuzz input", err, sizeof(err));
	if (t) {
		touch_names(t);
		report_pass(t);
		report_pass(t);		/* after the end: nothing more, no rescan */
		syscap_trace_rewind(t);
		report_pass(t);
		replay_pass(t);
		syscap_trace_close(t);
	} else {
		sink += strlen(err);
	}
	free(buf);
	export_file(data, size);
	unpack_pass(data, size);
	return 0;
}
