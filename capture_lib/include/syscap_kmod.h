/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ioctl and mmap ABI of /dev/syscap (kmod/syscap.c), shared by the module
 * and capture_lib's kmod backend. Every ioctl argument is a fixed-size struct;
 * bump SYSCAP_KMOD_ABI whenever one of them or the mmap layout changes.
 *
 * One open file at a time: a second open() fails with EBUSY. open, every ioctl
 * and mmap need CAP_PERFMON or CAP_SYS_ADMIN in the caller (EPERM otherwise),
 * whatever the device node's mode.
 *
 * mmap layout. Each possible CPU c owns a window of cpu_stride bytes of file
 * offset starting at c * cpu_stride (cpu_stride = 2 * page + 2 * ring_size):
 *   +0                 consumer position page: the only page that may be
 *                      mapped writable, and only when mapped on its own
 *   +page              producer position page, read-only
 *   +2*page            the ring_size data bytes, then the same pages again,
 *                      read-only: a record never wraps for the reader
 * This is the BPF ring buffer layout (see syscap_backend.h): map the consumer
 * page read-write (one page at +0) and the rest read-only (page + 2 *
 * ring_size bytes at +page). A mapping must stay inside one CPU's window.
 * The ring size can only change while nothing is mapped and capture is
 * stopped. Records are struct syscap_rec behind the 8-byte header (with
 * arguments after SET_ARGS, at SYSCAP_RING_ARGS_OFF); the module writes no
 * busy bit (it publishes producer_pos after the record) and puts 0 in pg_off.
 *
 * Sequence numbers: syscall records carry a per-CPU sequence that counts
 * records generated on that CPU, dropped ones included (a gap is the loss);
 * FORK/EXEC/EXIT records carry seq 0, as the eBPF program's do.
 */
#ifndef SYSCAP_KMOD_H
#define SYSCAP_KMOD_H

#ifdef __KERNEL__
#include <linux/ioctl.h>
#include <linux/types.h>
#else
#include <sys/ioctl.h>
#include <linux/types.h>
#endif
#include "syscap_record.h"

#define SYSCAP_KMOD_ABI		6
#define SYSCAP_KMOD_DEV		"/dev/syscap"

/* Ring sizes accepted by SYSCAP_IOC_SET_RING: powers of two in this range. */
#define SYSCAP_KMOD_RING_MIN	4096ULL
#define SYSCAP_KMOD_RING_MAX	(256ULL << 20)

struct syscap_kmod_info {
	__u32 abi;		/* SYSCAP_KMOD_ABI */
	__u32 record_version;	/* SYSCAP_REC_VERSION */
	__u32 record_size;	/* SYSCAP_REC_SIZE */
	__u32 page_size;
	__u32 nr_cpu_ids;	/* CPU ids are 0..nr_cpu_ids-1 */
	__u32 running;		/* capture started */
	__u64 ring_size;	/* data bytes per CPU */
	__u64 watermark;	/* unread bytes that make poll() report POLLIN */
	__u64 cpu_stride;	/* file offset between two CPUs' windows */
	__u64 possible[SYSCAP_MAX_CPUS / 64];	/* CPUs that have a ring */
	__u64 missed;		/* syscalls not followed: task table full */
	__u64 pidset_full;	/* children not added: process set full */
	__u64 count_slots;	/* count mode: counters per CPU */
	__u64 reserved[3];
};

/*
 * The clock of the records' ts_ns and dur_ns, and of the per-CPU total_ns.
 * MONOTONIC: CLOCK_MONOTONIC nanoseconds (ktime_get_mono_fast_ns). COUNTER:
 * ticks of the CPU's cycle counter (get_cycles(): the TSC on x86, CNTVCT on
 * arm64), which the consumer converts with SYSCAP_IOC_GET_CLOCK's reading.
 * AUTO (SET_CLOCK only): the counter where the kernel trusts it as a clock
 * across CPUs (x86: a TSC the kernel has not marked unstable that is
 * constant and nonstop, or is the kernel's own clocksource; arm64: always),
 * else MONOTONIC. AUTO is what a new file has.
 */
#define SYSCAP_KMOD_CLOCK_AUTO		0
#define SYSCAP_KMOD_CLOCK_MONOTONIC	1
#define SYSCAP_KMOD_CLOCK_COUNTER	2

struct syscap_kmod_clock {
	__u32 clock;		/* SYSCAP_KMOD_CLOCK_MONOTONIC or _COUNTER */
	__u32 reserved;
	__u64 hz;		/* COUNTER: ticks per second; MONOTONIC: 0 */
	__u64 ref_ticks;	/* COUNTER: a reading of the counter ... */
	__u64 ref_ns;		/* ... and CLOCK_MONOTONIC at that instant */
};

struct syscap_kmod_ring {
	__u64 size;		/* data bytes per CPU: a power of two */
	__u64 watermark;	/* 1..size, or 0 for size / 4 */
};

struct syscap_kmod_pid {
	__u32 tgid;
	__u32 value;		/* SYSCAP_PID_INCLUDE, _EXCLUDE, or 0: remove */
};

struct syscap_kmod_stats {
	__u64 buf;		/* user pointer: ncpu struct syscap_cpu_stats */
	__u32 ncpu;		/* entries in buf (1..SYSCAP_MAX_CPUS); ids at
				 * or above nr_cpu_ids, and CPUs that are not
				 * possible, are filled with zeros */
	__u32 entry_size;	/* sizeof(struct syscap_cpu_stats) */
};

/*
 * Count mode: instead of a record per syscall, the probe adds to per-CPU
 * counters keyed by process x syscall (struct syscap_count_key) and takes no
 * timestamps, as the eBPF backend's count mode does. READ_COUNTS copies every
 * counter of every CPU (the same key may come once per CPU: sum them);
 * FORGET_COUNT drops one key on every CPU once its process is gone.
 */
#define SYSCAP_KMOD_MODE_RECORDS	0
#define SYSCAP_KMOD_MODE_COUNTS		1
#define SYSCAP_KMOD_MODE_SAMPLED	2	/* counts, plus one record (flagged
						 * SYSCAP_F_SAMPLED) for about one
						 * call in the sample period */

struct syscap_kmod_count {
	__u32 tgid;
	__u32 nr;
	__u64 calls;
	__u64 errors;
};

struct syscap_kmod_counts {
	__u64 buf;		/* user pointer: room for max entries */
	__u32 max;		/* entries buf holds */
	__u32 n;		/* out: entries written; with ENOSPC, entries
				 * there are */
};

#define SYSCAP_IOC_MAGIC	0xb7
#define SYSCAP_IOC_GET_INFO	_IOR(SYSCAP_IOC_MAGIC, 1, struct syscap_kmod_info)
/* Stopped and unmapped only (else EBUSY). */
#define SYSCAP_IOC_SET_RING	_IOW(SYSCAP_IOC_MAGIC, 2, struct syscap_kmod_ring)
/* Takes effect for every task at its next syscall. The caller's generation
 * is ignored: the module gives every filter (and every SET_PID) a new one.
 * self_tgid is ignored too: the caller is the consumer, never traced. */
#define SYSCAP_IOC_SET_FILTER	_IOW(SYSCAP_IOC_MAGIC, 3, struct syscap_filter)
#define SYSCAP_IOC_SET_PID	_IOW(SYSCAP_IOC_MAGIC, 4, struct syscap_kmod_pid)
/* Counters since the last START; exact once capture is stopped. */
#define SYSCAP_IOC_READ_STATS	_IOW(SYSCAP_IOC_MAGIC, 5, struct syscap_kmod_stats)
/* Both idempotent. START resets the counters and the per-task state. */
#define SYSCAP_IOC_START	_IO(SYSCAP_IOC_MAGIC, 6)
#define SYSCAP_IOC_STOP		_IO(SYSCAP_IOC_MAGIC, 7)
/* Stopped only (else EBUSY): SYSCAP_KMOD_MODE_RECORDS or _COUNTS. */
#define SYSCAP_IOC_SET_MODE	_IOW(SYSCAP_IOC_MAGIC, 8, __u32)
#define SYSCAP_IOC_READ_COUNTS	_IOWR(SYSCAP_IOC_MAGIC, 9, struct syscap_kmod_counts)
#define SYSCAP_IOC_FORGET_COUNT	_IOW(SYSCAP_IOC_MAGIC, 10, struct syscap_count_key)
/* sampled mode's period: a power of two (default 64); allowed while running */
#define SYSCAP_IOC_SET_SAMPLE_PERIOD	_IOW(SYSCAP_IOC_MAGIC, 11, __u32)
/*
 * Sampled mode, while running: 1 registers the entry probe that takes the
 * samples (a sampling window opens), 0 removes it; START registers it. EINVAL
 * in another mode or when stopped.
 */
#define SYSCAP_IOC_SAMPLE_WINDOW	_IOW(SYSCAP_IOC_MAGIC, 12, __u32)
/* 1: syscall records carry their arguments (SYSCAP_RING_ARGS_LEN bytes), 0:
 * not (the default); EBUSY while running */
#define SYSCAP_IOC_SET_ARGS	_IOW(SYSCAP_IOC_MAGIC, 13, __u32)
/* SYSCAP_KMOD_CLOCK_*: EBUSY while running, EOPNOTSUPP for COUNTER where the
 * CPU has none */
#define SYSCAP_IOC_SET_CLOCK	_IOW(SYSCAP_IOC_MAGIC, 14, __u32)
/* The clock in use, with a fresh reference reading for COUNTER */
#define SYSCAP_IOC_GET_CLOCK	_IOR(SYSCAP_IOC_MAGIC, 15, struct syscap_kmod_clock)

#endif /* SYSCAP_KMOD_H */
