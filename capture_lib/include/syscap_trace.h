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
	SYSCAP_BLOCK_EVENTS = 1,	/* payload: count struct syscap_event */
	SYSCAP_BLOCK_STATS = 2,		/* payload: struct syscap_trace_stats + rows */
	SYSCAP_BLOCK_END = 3,		/* payload: struct syscap_trace_stats + rows */
};

struct syscap_trace_header {
	char magic[8];			/* SYSCAP_TRACE_MAGIC */
	uint32_t version;		/* SYSCAP_TRACE_VERSION */
	uint32_t record_version;	/* SYSCAP_RECORD_VERSION */
	uint32_t record_size;		/* SYSCAP_EVENT_SIZE */
	uint32_t header_size;		/* this struct + names */
	char arch[16];			/* "x86_64", "aarch64" (uname -m) */
	char release[64];		/* kernel release (uname -r) */
	char clock[16];			/* "monotonic": the clock of ts_ns */
	char backend[16];		/* "bpf", "kmod" */
	uint64_t start_mono_ns;		/* capture start, CLOCK_MONOTONIC */
	uint64_t start_real_ns;		/* the same instant, CLOCK_REALTIME */
	uint32_t ncpu;
	uint32_t nsyscalls;		/* entries in the names table */
	uint32_t names_len;		/* bytes of names that follow */
	uint32_t crc;			/* CRC-32 of this struct (crc = 0) + names */
};

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

#define SYSCAP_BLOCK_BYTES	(256 * 1024)	/* EVENTS payload per block, at most */

#endif /* SYSCAP_TRACE_H */
