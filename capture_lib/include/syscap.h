/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * capture_lib's C API: live capture sessions, aggregation into snapshots,
 * and trace files. This is what the Python binding (cffi) sees; per-event
 * work stays on this side.
 */
#ifndef SYSCAP_H
#define SYSCAP_H

#include <stddef.h>
#include <stdint.h>
#include "syscap_record.h"
#include "syscap_trace.h"

#define SYSCAP_HIST_BUCKETS	64	/* log2 buckets of nanoseconds */
#define SYSCAP_SAMPLE_PERIOD	64	/* SAMPLED mode's default: one call in 64 */

/* ---- snapshots ---------------------------------------------------------- */

struct syscap_snap_row {		/* one syscall, in one process or in all */
	uint32_t tgid;			/* 0 in the all-process rows */
	uint32_t nr;
	uint64_t count;
	uint64_t errors;
	uint64_t total_ns;
	uint64_t p50_ns;
	uint64_t p99_ns;
	int32_t last_errno;		/* positive errno of the last failure, or 0 */
	uint32_t samples;		/* durations behind total_ns, p50, p99: count,
					 * or fewer when latency is 2 (sampled) */
};

struct syscap_snap_proc {
	uint32_t tgid;
	uint32_t exited;		/* the process ended */
	char comm[SYSCAP_COMM_LEN];
	uint64_t count;
	uint64_t errors;
	uint64_t total_ns;
	uint64_t p50_ns;
	uint64_t p99_ns;
	uint32_t first_row;		/* its rows: rows[first_row .. first_row + nrows) */
	uint32_t nrows;			/* sorted by count, highest first */
};

struct syscap_snap_ring {
	int32_t cpu;
	uint32_t reserved;
	uint64_t size;
	uint64_t used;
	uint64_t max_used;
	uint64_t events;		/* since start (kernel counter) */
	uint64_t drops;			/* since start (kernel counter) */
};

struct syscap_snapshot {
	uint64_t start_ns;		/* interval, CLOCK_MONOTONIC */
	uint64_t end_ns;
	uint64_t events;		/* syscall records aggregated in the interval */
	uint64_t drops;			/* syscall records lost in the interval */
	uint64_t missed;		/* probe runs skipped by the kernel, since start */
	uint32_t nprocs;
	uint32_t nrows;
	uint32_t nsys;
	uint32_t nrings;
	uint32_t latency;		/* 1: durations of every call (total_ns, p50, p99
					 * hold); 2: of a sample (total_ns estimated as
					 * count x the samples' mean); 0: none */
	uint32_t reserved;
	struct syscap_snap_proc *procs;	/* sorted by count, highest first */
	struct syscap_snap_row *rows;
	struct syscap_snap_row *sys;	/* per syscall over all processes */
	struct syscap_snap_ring *rings;
	/* per syscall over all processes: [SYSCAP_MAX_SYSCALLS][SYSCAP_HIST_BUCKETS]
	 * counts in log2 buckets of duration (bucket b: [2^(b-1), 2^b) ns, b 0: 0 ns) */
	const uint32_t *sys_hist;
};

/* ---- aggregation (used by live sessions, reports and replay) ------------- */

struct syscap_agg;

struct syscap_agg *syscap_agg_new(void);
void syscap_agg_free(struct syscap_agg *a);
/* Only events of this process (0: all) are aggregated. */
void syscap_agg_set_pid(struct syscap_agg *a, uint32_t tgid);
/* Look up comms of processes never seen in a FORK/EXEC record in /proc. */
void syscap_agg_use_proc(struct syscap_agg *a, int on);
void syscap_agg_add(struct syscap_agg *a, const struct syscap_event *ev, uint32_t n);
/* Add counts without durations (count mode); the interval's snapshot then
 * says latency 0. */
void syscap_agg_add_count(struct syscap_agg *a, uint32_t tgid, uint32_t nr, uint64_t calls,
			  uint64_t errors);
/* Whether the records added carry durations (default 1); 2: the counts come
 * from syscap_agg_add_count and records flagged SYSCAP_F_SAMPLED add only
 * their durations. */
void syscap_agg_set_timed(struct syscap_agg *a, int timed);
/* Add events with ts_ns < until_ns; returns how many of ev[0..n) it took
 * (it stops at the first later one). */
uint32_t syscap_agg_add_until(struct syscap_agg *a, const struct syscap_event *ev, uint32_t n,
			      uint64_t until_ns);
/*
 * Build a snapshot of everything added since the previous snapshot, then
 * start a new interval. The arrays belong to the aggregator and stay valid
 * until its next snapshot.
 */
int syscap_agg_snapshot(struct syscap_agg *a, struct syscap_snapshot *out);

/* ---- live capture --------------------------------------------------------- */

struct syscap_session;

/* backend: "bpf", "kmod" or "auto". ring_size: bytes per CPU (power of 2). */
struct syscap_session *syscap_session_open(const char *backend, uint64_t ring_size,
					   char *err, size_t errlen);
const char *syscap_session_backend(struct syscap_session *s);
int syscap_session_ncpu(struct syscap_session *s);
/* self_tgid and generation are filled in here. */
int syscap_session_set_filter(struct syscap_session *s, const struct syscap_filter *f);
int syscap_session_set_pid(struct syscap_session *s, uint32_t tgid, int value);
enum syscap_mode {
	SYSCAP_MODE_RECORDS = 0,	/* one record per syscall, with its duration */
	SYSCAP_MODE_COUNTS = 1,		/* counts per process x syscall in the kernel */
	SYSCAP_MODE_SAMPLED = 2,	/* COUNTS, plus the durations of a sample */
};
/* Choose the mode while stopped. COUNTS and SAMPLED: -ENOTSUP when the
 * backend has no such mode (the eBPF backend before 5.15), and nothing can
 * be recorded to a trace file. */
int syscap_session_set_mode(struct syscap_session *s, int mode);
/* SAMPLED: about one syscall in period (a power of two, default 64) gets
 * its duration measured; may change while running. */
int syscap_session_set_sample_period(struct syscap_session *s, uint32_t period);
/*
 * SAMPLED: samples are taken only inside sampling windows that together
 * cover ppm parts per million of the time (1000000, the default: always).
 * Outside them the entry probe is detached and a call costs what count mode
 * costs; counts stay exact throughout. -ENOTSUP when the backend cannot
 * detach its entry probe. May change while running.
 */
int syscap_session_set_sample_duty(struct syscap_session *s, uint32_t ppm);
/*
 * Sampled mode's plan: the densest sample whose cost stays within
 * budget_pct percent of one CPU at rate_per_s syscalls a second. While a
 * window is open the entry probe adds enter_ns to every call and a timed
 * call sample_ns more: rate x duty x (enter_ns + sample_ns / period) ns a
 * second. A sample costs least with period 1 (every call in a window timed),
 * so the duty is cut first and the period (a power of two) raised only below
 * SYSCAP_MIN_DUTY_PPM. Without windows (an entry probe that cannot be
 * detached: windows 0) the duty is 1 and only the samples' own cost is counted.
 */
#define SYSCAP_DUTY_FULL	1000000u	/* duty_ppm of "always" */
#define SYSCAP_MIN_DUTY_PPM	1000u		/* windows cover at least 0.1 % */
#define SYSCAP_MAX_SAMPLE_PERIOD	(1u << 20)
#define SYSCAP_SAMPLE_COST_NS	500	/* a sample's cost, if not measured */
#define SYSCAP_ENTER_COST_NS	100	/* the entry probe's, if not measured */
struct syscap_sample_plan {
	uint32_t period;
	uint32_t duty_ppm;
};
void syscap_sample_plan(double rate_per_s, double budget_pct, double sample_ns, double enter_ns,
			int windows, struct syscap_sample_plan *out);
/*
 * SAMPLED with a budget: plan the sample (syscap_sample_plan, windows where
 * the backend has them) and set its period and duty, only when the plan
 * differs from the one the session set last; setting either directly
 * forgets that plan. sample_ns, enter_ns: measured costs, or 0 for
 * SYSCAP_SAMPLE_COST_NS and SYSCAP_ENTER_COST_NS. out (may be NULL): the
 * plan. 0, -EINVAL for a budget_pct outside (0, 100], or the -errno of
 * setting it (nothing is then remembered).
 */
int syscap_session_plan_samples(struct syscap_session *s, double rate_per_s, double budget_pct,
				double sample_ns, double enter_ns, struct syscap_sample_plan *out);
struct syscap_windows {
	uint64_t opened;		/* sampling windows opened since open */
	uint64_t open_ns;		/* how long the closed ones were open */
};
void syscap_session_sample_windows(struct syscap_session *s, struct syscap_windows *out);
/* Capture each syscall's arguments and write them into the trace (before
 * syscap_session_record; off by default: records are then SYSCAP_REC_SIZE
 * bytes in the trace, with them SYSCAP_REC_ARGS_SIZE, and they take twice
 * the ring space). 0, -EBUSY once recording or running. */
int syscap_session_set_args(struct syscap_session *s, int on);
/*
 * The probes' clock (before start and before syscap_session_record). Times
 * reach the caller in CLOCK_MONOTONIC nanoseconds whatever the clock: a
 * counter's ticks are converted as they are drained. AUTO: the cheapest clock
 * the kernel trusts across CPUs (the module: the CPU's counter where it is
 * one, else the monotonic clock; eBPF: always the monotonic clock).
 * COUNTER: the CPU's counter even where the kernel has not found it in step
 * across CPUs. 0, -EBUSY once recording or running, -ENOTSUP where the
 * backend or CPU has no such clock.
 */
enum syscap_clock_kind {
	SYSCAP_CLOCK_AUTO = 0,
	SYSCAP_CLOCK_MONOTONIC = 1,
	SYSCAP_CLOCK_COUNTER = 2,
};
int syscap_session_set_clock(struct syscap_session *s, int clock);
/* The clock the probes read: "monotonic", "tsc" or "cntvct". */
const char *syscap_session_clock(struct syscap_session *s);
/* Record every drained record into a trace file (before start), created as
 * syscap_create_output(path, flags) does. */
int syscap_session_record(struct syscap_session *s, const char *path, uint32_t flags,
			  const char *names, uint32_t names_len, uint32_t nsyscalls, char *err,
			  size_t errlen);
/* The same into an open fd (a pipe, stdout), which the session then owns
 * and closes when the trace is finished; on failure it stays the caller's. */
int syscap_session_record_fd(struct syscap_session *s, int fd, const char *names,
			     uint32_t names_len, uint32_t nsyscalls, char *err, size_t errlen);
/* Aggregate drained records for snapshots (off by default for record). */
void syscap_session_aggregate(struct syscap_session *s, int on);
/* Attach the probes and start the consumer thread. */
int syscap_session_start(struct syscap_session *s, char *err, size_t errlen);
/* Attach the probes only: records stay in the rings for syscap_session_read. */
int syscap_session_attach(struct syscap_session *s, char *err, size_t errlen);
/* Detach the probes only (records stay in the rings). */
int syscap_session_detach(struct syscap_session *s);
/* Detach, drain what is left, finish the trace file (END block). */
int syscap_session_stop(struct syscap_session *s);
int syscap_session_snapshot(struct syscap_session *s, struct syscap_snapshot *out);
/* Exact kernel totals since start: fills st; rows (may be NULL) gets up to
 * max nonzero syscalls; returns the number of nonzero syscalls. */
int syscap_session_totals(struct syscap_session *s, struct syscap_trace_stats *st,
			  struct syscap_trace_sysrow *rows, int max);
/* Records consumed since start. */
uint64_t syscap_session_consumed(struct syscap_session *s);
/*
 * Delivery: how long syscall records waited between their syscall's exit
 * and the drain pass that consumed them, since the session was opened
 * (log2 buckets of ns, as sys_hist, and the longest wait). In count and
 * sampled modes the samples wait for the snapshot that drains them.
 */
struct syscap_delivery {
	uint64_t records;
	uint64_t max_ns;
	uint64_t hist[SYSCAP_HIST_BUCKETS];
};
void syscap_session_delivery(struct syscap_session *s, struct syscap_delivery *out);
/*
 * Count and sampled modes: the processes that have counters in the kernel
 * right now (inspection and tests): up to max tgids into out, ascending;
 * returns how many there are, or -errno.
 */
long syscap_session_counted_tgids(struct syscap_session *s, uint32_t *out, long max);
/* First error the consumer thread hit (e.g. trace write failed), or NULL. */
const char *syscap_session_error(struct syscap_session *s);
void syscap_session_close(struct syscap_session *s);

/* Copy up to max pending records out of the rings (tools and tests; only
 * when the consumer thread is not running). */
long syscap_session_read(struct syscap_session *s, struct syscap_event *out, long max);

/* ---- privileges (src/privileges.c) ---------------------------------------- */

/* Keep only the capabilities in keep (bit n: capability n) in this thread's
 * effective and permitted sets; clear its inheritable and ambient sets and,
 * where allowed (CAP_SETPCAP), the bounding set. Only the calling thread
 * changes: call it before starting any other. 0, or -errno with err set. */
int syscap_drop_capabilities(uint64_t keep, char *err, size_t errlen);
/* 1 if session s still reads its kernel maps with only the capabilities in
 * keep, 0 if not (tried in a forked child), -errno if that cannot be told. */
int syscap_session_works_with(struct syscap_session *s, uint64_t keep);

/* ---- files syscap writes (src/output_file.c) ------------------------------ */

#define SYSCAP_CREATE_FORCE	1	/* replace an existing regular file */

/*
 * Open path to write a trace or an export into: a new file of mode 0600
 * (less what the umask takes), created with O_EXCL, so neither an existing
 * file nor a symbolic link (dangling or not) at path is ever written through.
 * With SYSCAP_CREATE_FORCE an existing regular file is unlinked first; a
 * symbolic link is refused all the same. A character device or FIFO
 * (/dev/null) is opened as it is. Returns the fd, or -errno and one line in
 * err.
 */
int syscap_create_output(const char *path, uint32_t flags, char *err, size_t errlen);

/* ---- trace files ---------------------------------------------------------- */

struct syscap_trace;

struct syscap_trace_block {
	uint32_t type;			/* enum syscap_block_type */
	uint32_t count;			/* events, or stats rows */
	uint64_t offset;		/* in the file */
	const struct syscap_event *events;		/* EVENTS: in place (version 1) or
							 * decoded, valid until the next call */
	const struct syscap_trace_stats *stats;		/* STATS/END */
	const struct syscap_trace_sysrow *rows;		/* STATS/END */
};

struct syscap_trace *syscap_trace_open(const char *path, char *err, size_t errlen);
/* The same over a trace already in memory (8-byte aligned; it must outlive
 * the reader). name is used in messages. The file path maps the file and
 * comes here, so tests and fuzzers exercise the real parser. */
struct syscap_trace *syscap_trace_open_mem(const void *buf, size_t size, const char *name,
					   char *err, size_t errlen);
const struct syscap_trace_header *syscap_trace_header(struct syscap_trace *t);
/* 1 if the trace's syscall records carry their arguments (version-1
 * traces always do; versions 2 and 3 with syscap record --args), else 0. */
int syscap_trace_has_args(struct syscap_trace *t);
/* 1 with *out filled when the probes read a counter (the header's clock
 * names it) and the recorder converted its ticks; 0 otherwise. */
int syscap_trace_clock(struct syscap_trace *t, struct syscap_trace_clock *out);
/* The name of syscall nr from the trace's own table, or NULL. */
const char *syscap_trace_name(struct syscap_trace *t, uint32_t nr);
/* 1 and a block, or 0 at the end of the readable data. */
int syscap_trace_next(struct syscap_trace *t, struct syscap_trace_block *out);
/* After the end: 1 if the file ended cleanly (END block), else 0. */
int syscap_trace_complete(struct syscap_trace *t);
/* Newline-separated notes on skipped or truncated data ("" if none). */
const char *syscap_trace_warnings(struct syscap_trace *t);
/* Give back the memory of the file's blocks before the last one returned
 * (a reader of a large trace stays small; a rewind reads them again). */
void syscap_trace_release_read(struct syscap_trace *t);
void syscap_trace_rewind(struct syscap_trace *t);
void syscap_trace_close(struct syscap_trace *t);

/* Fill header fields that describe this machine (arch, release, clock). */
void syscap_trace_header_init(struct syscap_trace_header *h, const char *backend, int ncpu);

/* ---- Perfetto export (src/export_perfetto.c) ------------------------------ */

struct syscap_export_opts {
	uint64_t syscalls[SYSCAP_MAX_SYSCALLS / 64];	/* bitmap, if has_syscalls */
	uint32_t has_syscalls;
	uint32_t npids;			/* 0: every process */
	const uint32_t *pids;		/* these processes and the children they fork */
	uint64_t start_ns;		/* window on entry time, CLOCK_MONOTONIC; 0: open */
	uint64_t end_ns;		/* 0: open */
	uint64_t counter_ns;		/* width of the calls/s bins, at least 1 ms */
	uint32_t create_flags;		/* for the output: SYSCAP_CREATE_* */
	uint32_t reserved;
};

struct syscap_export_result {
	uint64_t records;		/* records read (all kinds) */
	uint64_t slices;		/* syscall slices written */
	uint64_t counters;		/* counter values written */
	uint64_t processes;
	uint64_t threads;
	uint64_t late;			/* calls that missed their counter bin */
	uint64_t bytes;			/* size of the output */
	int32_t complete;		/* the trace had its end marker */
	uint32_t reserved;
};

/* Write the trace at trace_path to out_path in Perfetto's JSON trace-event
 * format, streaming. 0, or -1 with err set. */
int syscap_export_perfetto(const char *trace_path, const char *out_path,
			   const struct syscap_export_opts *o, struct syscap_export_result *r,
			   char *err, size_t errlen);

#endif /* SYSCAP_H */
