/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * syscap record format: the one definition shared by the eBPF program,
 * the kernel module and the user-space consumer (capture_lib).
 *
 * Every record in a ring and in a trace file is one struct syscap_rec
 * (SYSCAP_REC_SIZE bytes), optionally followed by the call's arguments,
 * little-endian on every architecture syscap supports. Producers fill every
 * field, cpu included, and zero the reserved ones: both probes do it through
 * syscap_probe.h. Consumers decode records into struct syscap_event, the
 * record of version 1 (what traces held before version 2).
 * Syscall records are written once per syscall, at exit, carrying the entry
 * time and the duration measured from a per-thread entry timestamp.
 * Bump SYSCAP_RECORD_VERSION whenever the layout changes.
 */
#ifndef SYSCAP_RECORD_H
#define SYSCAP_RECORD_H

#if defined(__KERNEL__) || defined(__BPF__) || defined(__bpf__)
/* the kernel and vmlinux.h provide __u8 .. __u64 */
#else
#include <linux/types.h>
#endif

/*
 * Record versions: 1 is struct syscap_event (traces written before version
 * 2, still read), 2 struct syscap_rec (rings and traces).
 */
#define SYSCAP_RECORD_VERSION	1
#define SYSCAP_REC_VERSION	2

/*
 * The syscall number space of counters, filters and records: the native
 * table's numbers (x86-64 and arm64 stay well below 510), plus two slots for
 * calls that have no number of their own there. Their records carry the
 * number the task passed in raw_nr.
 */
#define SYSCAP_MAX_SYSCALLS	512
#define SYSCAP_NR_COMPAT	510	/* a 32-bit (compat) task's syscall */
#define SYSCAP_NR_OTHER		511	/* a number outside the native table:
					 * syscall(-1), syscall(1000), x32 */
#define SYSCAP_COMM_LEN		16
#define SYSCAP_MAX_COMMS	8
#define SYSCAP_MAX_CPUS		256

/* syscap_event.kind */
enum syscap_kind {
	SYSCAP_EV_SYSCALL	= 1,	/* one finished (or never-returning) syscall */
	SYSCAP_EV_FORK		= 2,	/* a task was created: tgid/tid are the child's */
	SYSCAP_EV_EXEC		= 3,	/* a successful exec: proc.comm is the new comm */
	SYSCAP_EV_EXIT		= 4,	/* a task exited: ret is the exit code */
};

/* syscap_event.flags */
#define SYSCAP_F_NORETURN	0x01	/* exit/exit_group (or exec on old arm64):
					 * written when the task left; ret is 0 */
#define SYSCAP_F_COMPAT		0x02	/* 32-bit compat task: nr is
					 * SYSCAP_NR_COMPAT, raw_nr the number in
					 * the compat table */
#define SYSCAP_F_GROUP_DEAD	0x04	/* on EXIT: the last thread of the
					 * process exited */
#define SYSCAP_F_NOENTRY	0x08	/* the kernel skipped this syscall's entry
					 * tracepoint (seccomp denied it): ts_ns
					 * is the exit time, dur_ns 0 */
#define SYSCAP_F_SAMPLED	0x10	/* sampled mode: one syscall of many, sent
					 * for its duration; its call is already
					 * in the counts (seq is 0) */

struct syscap_proc_info {
	__u32 parent_tgid;		/* FORK: the creator; EXEC: old tid */
	__u32 parent_tid;
	__u64 reserved;
	char comm[SYSCAP_COMM_LEN];	/* FORK/EXEC/EXIT: the task's comm */
	__u64 pad[2];
};

struct syscap_event {
	__u64 ts_ns;		/* entry time (syscall) or event time, CLOCK_MONOTONIC */
	__u64 dur_ns;		/* syscall duration; 0 for process events */
	__s64 ret;		/* syscall return value; exit code for EXIT */
	union {
		__u64 args[6];			/* SYSCALL: arguments */
		struct syscap_proc_info proc;	/* FORK / EXEC / EXIT */
	};
	__u32 tgid;
	__u32 tid;
	__u32 seq;		/* per-CPU sequence number of syscall records
				 * generated on this CPU, counting drops: a gap
				 * in a CPU's sequence is exactly the loss */
	__u16 nr;		/* syscall number (SYSCALL) */
	__u8 kind;		/* enum syscap_kind */
	__u8 flags;		/* SYSCAP_F_* */
	__u16 cpu;		/* the CPU whose ring carried the record: with
				 * seq it orders and checks records per CPU */
	__u16 reserved0;	/* zero */
	__u32 raw_nr;		/* for nr SYSCAP_NR_COMPAT / SYSCAP_NR_OTHER:
				 * the number the task passed; else zero */
};

#define SYSCAP_EVENT_SIZE	96

/*
 * The compact record (record version 2): what report, top, replay and the
 * Perfetto export need, in half the bytes of struct syscap_event. Rings and
 * trace files carry it; arguments follow it only when the capture asked for
 * them. Readers decode it into struct syscap_event, whose fields it keeps: a
 * process record's exit code fits 32 bits (the kernel's exit code is an int)
 * and its seq is always 0.
 *
 * In a trace, a record with arguments is struct syscap_rec then __u64
 * args[6] (record_size SYSCAP_REC_ARGS_SIZE). In a ring, behind the 8-byte
 * ring header, the arguments start at SYSCAP_RING_ARGS_OFF (after 8 bytes of
 * zeros, so that they fill the second of two 64-byte slots of the eBPF rings)
 * and a record has them when its length is at least SYSCAP_RING_ARGS_LEN.
 */
struct syscap_rec {
	__u64 ts_ns;		/* as syscap_event.ts_ns */
	__u32 tgid;
	__u32 tid;
	__u8 kind;		/* enum syscap_kind */
	__u8 flags;		/* SYSCAP_F_* */
	__u16 cpu;
	union {
		__u32 seq;	/* SYSCALL: as syscap_event.seq */
		__s32 code;	/* EXIT: the exit code; FORK/EXEC: 0 */
	};
	union {
		struct {
			__s64 ret;
			__u64 dur_ns;
			__u16 nr;
			__u16 reserved;	/* zero */
			__u32 raw_nr;
		} sys;		/* SYSCALL */
		struct {
			__u32 parent_tgid;
			__u32 parent_tid;
			char comm[SYSCAP_COMM_LEN];
		} proc;		/* FORK / EXEC / EXIT */
	};
};

#define SYSCAP_REC_SIZE		48
#define SYSCAP_REC_ARGS_SIZE	(SYSCAP_REC_SIZE + 6 * 8)
#define SYSCAP_RING_ARGS_OFF	56
#define SYSCAP_RING_ARGS_LEN	(SYSCAP_RING_ARGS_OFF + 6 * 8)

/*
 * Per-CPU counters kept by the probe. Totals are exact even when a ring
 * overflows: the ring then only loses detail, and the loss is counted here.
 */
struct syscap_cpu_stats {
	__u64 events;		/* syscall records generated (passed the filters) */
	__u64 drops;		/* syscall records lost because the ring was full */
	__u64 proc_events;	/* FORK/EXEC/EXIT records generated */
	__u64 proc_drops;	/* FORK/EXEC/EXIT records lost */
	__u64 calls[SYSCAP_MAX_SYSCALLS];
	__u64 errors[SYSCAP_MAX_SYSCALLS];
	__u64 total_ns[SYSCAP_MAX_SYSCALLS];
};

/* syscap_filter.flags */
#define SYSCAP_FILTER_SYSCALLS		0x01	/* only syscalls set in the bitmap */
#define SYSCAP_FILTER_PIDS		0x02	/* only processes in the include set
						 * (the set follows fork) */
#define SYSCAP_FILTER_COMM		0x04	/* only tasks whose comm is listed */
#define SYSCAP_FILTER_COMM_EXCLUDE	0x08	/* ... or: all but those listed */
#define SYSCAP_FILTER_FAILED		0x10	/* only failed syscalls (-4095..-1) */
#define SYSCAP_FILTER_PIDSET		0x20	/* the process set may have entries:
						 * set by the backend, not the caller */

/* values of the process set (kernel map or table), keyed by tgid */
#define SYSCAP_PID_INCLUDE	1
#define SYSCAP_PID_EXCLUDE	2

/*
 * The in-kernel filter. The process set itself lives in a kernel table
 * keyed by tgid (BPF hash map / module hash table), updated separately.
 */
struct syscap_filter {
	__u64 syscalls[SYSCAP_MAX_SYSCALLS / 64];	/* bitmap by syscall number */
	__u32 flags;			/* SYSCAP_FILTER_* */
	__u32 self_tgid;		/* the consumer: never traced (each backend
					 * sets it, in the kernel's numbering) */
	__u32 ncomm;			/* entries used in comm[] */
	__u32 generation;		/* bumped on every change: cached
					 * per-task verdicts are then recomputed */
	char comm[SYSCAP_MAX_COMMS][SYSCAP_COMM_LEN];
};

/*
 * Count mode (what `syscap top` uses): instead of a record per syscall the
 * probe adds one to a per-CPU counter keyed by process and syscall, and no
 * timestamps are taken. The consumer reads the map and takes differences.
 */
struct syscap_count_key {
	__u32 tgid;
	__u32 nr;
};

struct syscap_count_val {
	__u64 calls;
	__u64 errors;
};

#define SYSCAP_COUNT_KEYS	(1 << 18)	/* process x syscall pairs */

/*
 * The kernel's restart codes (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND,
 * ERESTART_RESTARTBLOCK): a syscall cut off by a signal, restarted or ended
 * with its thread. User space never sees them as an errno: such a call is
 * interrupted, not failed.
 */
static inline int syscap_is_interrupted(__s64 ret)
{
	return ret >= -516 && ret <= -512 && ret != -515;
}

/* A failed syscall: -4095..-1, restart codes excepted. */
static inline int syscap_is_error(__s64 ret)
{
	return ret < 0 && ret >= -4095 && !syscap_is_interrupted(ret);
}

#endif /* SYSCAP_RECORD_H */
