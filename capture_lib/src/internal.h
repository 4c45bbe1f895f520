/* SPDX-License-Identifier: BSD-2-Clause */
/* Pieces of capture_lib shared between its C files, not part of the API. */
#ifndef SYSCAP_INTERNAL_H
#define SYSCAP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "syscap.h"
#include "syscap_backend.h"
#include "pack.h"

/* A trace being written: records are packed into buf's block as they come. */
struct trace_writer {
	int fd;
	uint64_t seq;
	uint32_t count;		/* records in the block being filled */
	uint32_t used;		/* their packed bytes */
	struct syscap_pack pack;
	uint8_t *buf;		/* block header + SYSCAP_BLOCK_BYTES */
	char err[256];
};

/* Create path (as syscap_create_output does with flags) and write its
 * header; NULL and a message in err on failure. The header's record_size
 * says whether records carry their arguments (SYSCAP_REC_ARGS_SIZE) or not
 * (SYSCAP_REC_SIZE, as syscap_trace_header_init sets it). */
struct trace_writer *trace_writer_open(const char *path, uint32_t flags,
				       const struct syscap_trace_header *h,
				       const char *names, uint32_t names_len, char *err,
				       size_t errlen);
/* The same onto an open fd (a pipe, stdout), which the writer then owns:
 * trace_writer_close closes it. On failure the fd stays the caller's. */
struct trace_writer *trace_writer_open_fd(int fd, const struct syscap_trace_header *h,
					  const char *names, uint32_t names_len, char *err,
					  size_t errlen);
/* Write the pending partial block, if any. 0 or -errno. */
int trace_writer_flush(struct trace_writer *w);
/* Queue a ring's record at ts_ns, lasting dur_ns (syscap_pack_rec), and its
 * arguments (NULL: none, written as zeros if the trace has arguments); a full
 * block is written out. 0 or -errno. Inline: it runs for every record the
 * recorder takes. */
static inline int trace_writer_add_rec(struct trace_writer *w, const struct syscap_rec *rec,
				       uint64_t ts_ns, uint64_t dur_ns, const uint64_t *args)
{
	uint8_t *p = w->buf + sizeof(struct syscap_block_header) + w->used;

	w->used += (uint32_t)syscap_pack_rec(&w->pack, rec, ts_ns, dur_ns, args, p);
	if (++w->count == SYSCAP_PACK_MAX_COUNT ||
	    w->used > SYSCAP_BLOCK_BYTES - SYSCAP_PACK_MAX_BYTES)
		return trace_writer_flush(w);
	return 0;
}
/* Write a STATS or END block. */
int trace_writer_stats(struct trace_writer *w, uint32_t type, const struct syscap_trace_stats *st,
		       const struct syscap_trace_sysrow *rows, uint32_t nrows);
/* Write any other block (after the pending records): len bytes of payload,
 * a multiple of 8 and at most SYSCAP_BLOCK_BYTES. */
int trace_writer_block(struct trace_writer *w, uint32_t type, uint32_t count, const void *payload,
		       uint32_t len);
/* Close the file (does not flush). */
void trace_writer_close(struct trace_writer *w);
/* Free w but leave its fd open (a failed start: the fd stays the caller's). */
void trace_writer_free(struct trace_writer *w);
/* Say how the records' times were converted: a CLOCK block for a counter
 * clock (nothing for CLOCK_MONOTONIC); right after opening. */
struct syscap_clock;
int trace_writer_clock(struct trace_writer *w, const struct syscap_clock *c);
const char *trace_writer_error(struct trace_writer *w);

/* zlib's CRC-32, by the fastest way this CPU has (src/crc32.c) */
uint32_t syscap_crc32(uint32_t crc, const void *buf, size_t len);
/* which: "pclmul", "armv8-crc" or "zlib" */
const char *syscap_crc32_impl(void);
/* Tests: use the CPU's faster code even where the table was timed faster;
 * its name, or NULL where the CPU has none (not thread-safe: before use). */
const char *syscap_crc32_force_fast(void);

/* The compact record (record.c) with its arguments (or NULL) as an event. */
void syscap_rec_decode(const struct syscap_rec *in, const uint64_t *args,
		       struct syscap_event *ev);

/* The log2 bucket of a duration: ns in [2^(b-1), 2^b), b 0 for 0 ns. */
static inline unsigned int syscap_ns_bucket(uint64_t ns)
{
	return ns ? 64 - (unsigned int)__builtin_clzll(ns) : 0;
}
uint64_t syscap_mono_ns(void);
uint64_t syscap_real_ns(void);

/* Exact totals from per-CPU counters: st (summed), rows (nonzero syscalls,
 * up to max), returns the number of nonzero syscalls. */
int syscap_sum_stats(const struct syscap_cpu_stats *percpu, int ncpu,
		     struct syscap_trace_stats *st, struct syscap_trace_sysrow *rows, int max);

/* Count mode's consumer half (counts.c). */
struct count_table;
struct count_table *count_table_new(void);
void count_table_free(struct count_table *t);
/* The last thread of tgid exited: its counters can go once it is reaped. */
void count_table_exited(struct count_table *t, uint32_t tgid);
/* Read the kernel's counters, add what is new to agg, drop the gone. */
int count_table_poll(struct count_table *t, struct syscap_backend *b, struct syscap_agg *agg);
/* A process's identity: its start time (any nonzero value that differs
 * between two processes with one tgid), or 0 when no process has the tgid. */
typedef uint64_t (*count_start_fn)(void *ctx, uint32_t tgid);
/* The identity from field 22 of /proc/TGID/stat (start time in clock ticks
 * after boot; 1 stands for 0), or 0 when there is no such process. */
uint64_t count_proc_start_time(void *ctx, uint32_t tgid);
/* Identify processes with fn instead of /proc/TGID/stat (unit tests); NULL:
 * as in a pid namespace whose /proc does not show the probe's tgids. */
void count_table_set_identity(struct count_table *t, count_start_fn fn, void *ctx);

/* Hand fn each process x syscall of v[0..n) once, summed over the CPUs that
 * counted it (v is sorted in place). */
struct syscap_kmod_count;
void syscap_count_sum(struct syscap_kmod_count *v, size_t n, syscap_count_fn fn, void *ctx);

#endif /* SYSCAP_INTERNAL_H */
