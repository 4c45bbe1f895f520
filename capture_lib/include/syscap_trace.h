/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * syscap trace file format.
 *
 *   file   := header names block*
 *   header := struct syscap_trace_header (its own CRC), then names_len bytes
 *             of syscall names: NUL-terminated, in number order 0..nsyscalls-1
 *   block  := struct syscap_block_header, then len bytes of payload
 *
 * Blocks are written whole with one write(), so a recorder killed with
 * SIGKILL leaves a file that is readable up to its last complete block. Each
 * block carries a CRC of its payload; a reader skips a corrupt block by
 * scanning for the next block magic, and reports what it skipped. A clean
 * end is marked by an END block; its absence means "truncated".
 */
#ifndef SYSCAP_TRACE_H
#define SYSCAP_TRACE_H

#include <stdint.h>
#include "syscap_record.h"

#define SYSCAP_TRACE_MAGIC	"SYSCAPTR"
#define SYSCAP_TRACE_VERSION	1
#define SYSCAP_BLOCK_MAGIC	0x4b4c4253u	/* "SBLK" little-endian */

enum syscap_block_type {
	SYSCAP_BLOCK_EVENTS = 1,	/* payload: count records of the header's
					 * record version (below) */
	SYSCAP_BLOCK_STATS = 2,		/* payload: struct syscap_trace_stats + rows */
	SYSCAP_BLOCK_END = 3,		/* payload: struct syscap_trace_stats + rows */
	SYSCAP_BLOCK_STREAM = 4,	/* payload: one interval's aggregate (below);
					 * count = its rows */
	SYSCAP_BLOCK_CLOCK = 5,		/* payload: struct syscap_trace_clock; count 1 */
};

struct syscap_trace_header {
	char magic[8];			/* SYSCAP_TRACE_MAGIC */
	uint32_t version;		/* SYSCAP_TRACE_VERSION */
	uint32_t record_version;	/* SYSCAP_RECORD_VERSION */
	uint32_t record_size;		/* SYSCAP_EVENT_SIZE */
	uint32_t header_size;		/* this struct + names */
	char arch[16];			/* "x86_64", "aarch64" (uname -m) */
	char release[64];		/* kernel release (uname -r) */
	char clock[16];			/* the clock the probes read: "monotonic",
					 * or a counter ("tsc", "cntvct") whose
					 * ticks the recorder converted to
					 * CLOCK_MONOTONIC ns (CLOCK block) */
	char backend[16];		/* "bpf", "kmod" */
	uint64_t start_mono_ns;		/* capture start, CLOCK_MONOTONIC */
	uint64_t start_real_ns;		/* the same instant, CLOCK_REALTIME */
	uint32_t ncpu;
	uint32_t nsyscalls;		/* entries in the names table */
	uint32_t names_len;		/* bytes of names that follow */
	uint32_t crc;			/* CRC-32 of this struct (crc = 0) + names */
};

/*
 * CLOCK payload: the first block of a trace whose probes read a counter.
 * Every time in the trace is CLOCK_MONOTONIC nanoseconds all the same: the
 * recorder converted the ticks from this first reading of both clocks, as
 * ns = ref_ns + (ticks - ref_ticks) x mult / 2^32 (a duration: ticks x mult /
 * 2^32), and from then on slewed onto a new reading each second
 * (syscap_clock_anchor in syscap_backend.h).
 */
struct syscap_trace_clock {
	char source[16];		/* as the header's clock */
	uint64_t hz;			/* ticks per second */
	uint64_t ref_ticks;
	uint64_t ref_ns;
	uint64_t mult;			/* nanoseconds per tick, x 2^32 */
};

/*
 * EVENTS payloads by the header's record_version:
 *   1  count struct syscap_event (96 bytes each)
 *   2  count struct syscap_rec (record_size 48, or 96 with the arguments)
 *   3  count packed struct syscap_rec (SYSCAP_TRACE_PACKED, what syscap
 *      writes; record_size as in 2), then zeros to the next 8 bytes:
 *
 *      tag       one byte (SYSCAP_PACK_*)
 *      ts_ns     minus the previous record's, zigzag varint
 *      tgid tid  varints, unless SAME_TASK: the previous record's
 *      cpu seq   varints, unless NEXT_SEQ: the previous record's cpu and
 *                its seq (code) plus one, modulo 2^32
 *      flags     one byte, unless NO_FLAGS: 0
 *      SYSCALL   ret (zigzag varint), dur_ns, nr (varints), and unless
 *                NO_RAW: raw_nr and reserved (varints, else 0); then
 *                with arguments 6 varints
 *      FORK EXEC EXIT
 *                parent_tgid, parent_tid (varints), the comm's length
 *                (one byte, at most 16) and its bytes (zeros after them)
 *      kind 0    a raw struct syscap_rec (and its 6 arguments), 48 or 96
 *                bytes: any other kind, as is; its tag has no other bit
 *
 *    Varints are LEB128 (7 bits a byte, low first, at most 10 bytes); the
 *    previous record is all zeros at each block's start, so a block decodes
 *    on its own. Typical syscall records take 6-9 bytes.
 */
#define SYSCAP_TRACE_PACKED		3	/* header record_version */
#define SYSCAP_PACK_KIND		0x07	/* the record's kind; 0: raw */
#define SYSCAP_PACK_SAME_TASK		0x08
#define SYSCAP_PACK_NEXT_SEQ		0x10
#define SYSCAP_PACK_NO_FLAGS		0x20
#define SYSCAP_PACK_NO_RAW		0x40
#define SYSCAP_PACK_MAX_BYTES		128	/* one packed record, at most */
#define SYSCAP_PACK_MAX_COUNT		8192	/* packed records in one block */

struct syscap_block_header {
	uint32_t magic;			/* SYSCAP_BLOCK_MAGIC */
	uint32_t type;			/* enum syscap_block_type */
	uint32_t len;			/* payload bytes */
	uint32_t count;			/* records (EVENTS) or rows (STATS/END) */
	uint64_t seq;			/* block number, from 0 */
	uint32_t crc;			/* CRC-32 of this header (crc = 0) + payload */
	uint32_t reserved;
};

/* STATS/END payload: the kernel's exact counters, summed over CPUs, at the
 * time the block was written; then count syscap_trace_sysrow. */
struct syscap_trace_stats {
	uint64_t mono_ns;		/* when these counters were read */
	uint64_t events;		/* syscall records generated */
	uint64_t drops;			/* syscall records lost (ring full) */
	uint64_t proc_events;
	uint64_t proc_drops;
	uint64_t missed;		/* probe runs the kernel skipped */
	uint64_t max_used;		/* highest ring fill seen, bytes (any CPU) */
	uint64_t ring_size;		/* bytes per CPU */
};

struct syscap_trace_sysrow {
	uint32_t nr;
	uint32_t reserved;
	uint64_t calls;
	uint64_t errors;
	uint64_t total_ns;
};

#define SYSCAP_BLOCK_BYTES	(256 * 1024)	/* payload per block, at most */

/*
 * STREAM payload: what syscap-agent's stream mode sends once per interval,
 * the aggregate of that interval (counts are differences, not totals):
 *
 *   struct syscap_stream_head
 *   nprocs  struct syscap_stream_proc    busiest first
 *   nrows   struct syscap_stream_row     each process's rows, in process
 *                                        order: procs[i].nrows of them
 *   nrings  struct syscap_stream_ring
 *   nhist   struct syscap_stream_hist    per syscall over all processes,
 *                                        only the nonzero buckets
 *
 * and nothing else: len is exactly the sum. With SYSCAP_STREAM_F_DEFLATE
 * everything after the head is one zlib stream (RFC 1950) of zlen bytes,
 * padded with zeros to 8; it inflates to exactly the sum above. The agent
 * deflates when that is smaller (a second's counts shrink about 15-fold).
 * An interval too large for one
 * block (SYSCAP_BLOCK_BYTES) is sent as several parts with the same seq,
 * each with its own processes; all but the last have SYSCAP_STREAM_F_MORE,
 * and rings and histograms travel in the last. Readers reject any other
 * version: bump SYSCAP_STREAM_VERSION whenever the layout changes.
 */
#define SYSCAP_STREAM_VERSION	1

#define SYSCAP_STREAM_F_LATENCY	0x01	/* durations measured: total_ns and the
					 * histograms hold (record mode) */
#define SYSCAP_STREAM_F_MORE	0x02	/* another part of this interval follows */
#define SYSCAP_STREAM_F_DEFLATE	0x04	/* the rest of the payload is deflated */
#define SYSCAP_STREAM_F_SAMPLED	0x08	/* with LATENCY: the durations are a
					 * sample's (counts exact, total_ns
					 * estimated, histograms of the sample) */

#define SYSCAP_STREAM_PROC_EXITED	0x01

struct syscap_stream_head {
	uint32_t version;		/* SYSCAP_STREAM_VERSION */
	uint32_t flags;			/* SYSCAP_STREAM_F_* */
	uint64_t seq;			/* interval number, from 0 */
	uint64_t start_ns;		/* the interval, CLOCK_MONOTONIC */
	uint64_t end_ns;
	uint64_t events;		/* kernel: syscalls past the filter, since start */
	uint64_t drops;			/* kernel: records lost, since start */
	uint64_t missed;		/* probe runs the kernel skipped, since start */
	uint64_t agent_cpu_ns;		/* the agent's own CPU time (user + system) */
	uint64_t agent_rss;		/* the agent's resident memory, bytes */
	uint32_t filter_gen;		/* filter commands applied before the
					 * interval began: every count in it was
					 * taken under that filter */
	uint32_t nprocs;
	uint32_t nrows;
	uint32_t nrings;
	uint32_t nhist;
	uint32_t zlen;			/* SYSCAP_STREAM_F_DEFLATE: deflated bytes */
};

struct syscap_stream_proc {
	uint32_t tgid;
	uint32_t flags;			/* SYSCAP_STREAM_PROC_* */
	uint32_t nrows;
	uint32_t reserved;
	char comm[SYSCAP_COMM_LEN];	/* NUL-padded */
};

struct syscap_stream_row {
	uint32_t nr;			/* < SYSCAP_MAX_SYSCALLS */
	uint32_t reserved;
	uint64_t calls;
	uint64_t errors;		/* <= calls */
	uint64_t total_ns;		/* 0 without SYSCAP_STREAM_F_LATENCY */
};

struct syscap_stream_ring {
	int32_t cpu;
	uint32_t reserved;
	uint64_t size;			/* bytes */
	uint64_t used;			/* fill when the interval ended */
	uint64_t max_used;		/* highest fill seen since start */
	uint64_t events;		/* records produced on this CPU, since start */
	uint64_t drops;			/* records lost on this CPU, since start */
};

struct syscap_stream_hist {
	uint16_t nr;			/* < SYSCAP_MAX_SYSCALLS */
	uint16_t bucket;		/* < SYSCAP_STREAM_HIST_BUCKETS: durations in
					 * [2^(b-1), 2^b) ns; bucket 0: 0 ns */
	uint32_t count;			/* calls in the interval */
};

#define SYSCAP_STREAM_HIST_BUCKETS	64

#endif /* SYSCAP_TRACE_H */
