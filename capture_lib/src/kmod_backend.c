// SPDX-License-Identifier: BSD-2-Clause
/*
 * The kernel module backend: /dev/syscap (kmod/syscap.c) behind the consumer
 * API of syscap_backend.h. The module's rings have the BPF ring buffer layout,
 * so syscap_ring_drain() reads them like the eBPF backend's; this file only
 * opens the device, maps one ring per possible CPU and turns the ops into
 * ioctls (syscap_kmod.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "syscap_backend.h"
#include "syscap_kmod.h"

#if defined(__x86_64__) || defined(__i386__)
#define COUNTER_NAME	"tsc"
#else
#define COUNTER_NAME	"cntvct"
#endif

struct kmod_priv {
	int fd;
	struct syscap_kmod_info info;
	struct syscap_kmod_count *counts;	/* READ_COUNTS buffer */
	size_t ncounts;				/* entries it holds */
};

static int fd_of(struct syscap_backend *b)
{
	return ((struct kmod_priv *)b->priv)->fd;
}

static int xioctl(struct syscap_backend *b, unsigned long cmd, void *arg)
{
	return ioctl(fd_of(b), cmd, arg) ? -errno : 0;
}

static int kmod_set_filter(struct syscap_backend *b, const struct syscap_filter *f)
{
	return xioctl(b, SYSCAP_IOC_SET_FILTER, (void *)f);
}

static int kmod_set_pid(struct syscap_backend *b, uint32_t tgid, int value)
{
	struct syscap_kmod_pid req = { .tgid = tgid, .value = (__u32)value };

	return xioctl(b, SYSCAP_IOC_SET_PID, &req);
}

static int kmod_read_stats(struct syscap_backend *b, struct syscap_cpu_stats *out, int ncpu)
{
	struct syscap_kmod_stats req = {
		.buf = (__u64)(uintptr_t)out,
		.ncpu = (__u32)ncpu,
		.entry_size = sizeof(*out),
	};
	int ret, cpu, nr;

	if (ncpu <= 0 || ncpu > SYSCAP_MAX_CPUS)
		return -EINVAL;
	ret = xioctl(b, SYSCAP_IOC_READ_STATS, &req);
	if (ret || !b->clock.hz)
		return ret;
	for (cpu = 0; cpu < ncpu; cpu++)
		for (nr = 0; nr < SYSCAP_MAX_SYSCALLS; nr++)
			out[cpu].total_ns[nr] = syscap_clock_dur(&b->clock, out[cpu].total_ns[nr]);
	return 0;
}

/*
 * The module's clock, as b->clock; the rings convert what they hand on when
 * it is a counter. The counter's name is the architecture's.
 */
static int read_clock(struct syscap_backend *b)
{
	struct syscap_kmod_clock c;
	int ret = xioctl(b, SYSCAP_IOC_GET_CLOCK, &c);
	int i;

	if (ret)
		return ret;
	if (c.clock == SYSCAP_KMOD_CLOCK_COUNTER && c.hz)
		syscap_clock_set(&b->clock, COUNTER_NAME, c.hz, c.ref_ticks, c.ref_ns);
	else
		syscap_clock_set(&b->clock, "monotonic", 0, 0, 0);
	for (i = 0; i < b->nrings; i++)
		b->rings[i].clock = b->clock.hz ? &b->clock : NULL;
	return 0;
}

/* A new paired reading of the counter and CLOCK_MONOTONIC (a counter only). */
static int kmod_clock_anchor(struct syscap_backend *b)
{
	struct syscap_kmod_clock c;
	int ret;

	if (!b->clock.hz)
		return 0;
	ret = xioctl(b, SYSCAP_IOC_GET_CLOCK, &c);
	if (ret)
		return ret;
	if (c.clock == SYSCAP_KMOD_CLOCK_COUNTER && c.hz == b->clock.hz)
		syscap_clock_anchor(&b->clock, c.ref_ticks, c.ref_ns);
	return 0;
}

static int kmod_set_clock(struct syscap_backend *b, int clock)
{
	__u32 v = (__u32)clock;
	int ret = xioctl(b, SYSCAP_IOC_SET_CLOCK, &v);

	return ret ? ret : read_clock(b);
}

static uint64_t kmod_missed(struct syscap_backend *b)
{
	struct syscap_kmod_info info;

	if (xioctl(b, SYSCAP_IOC_GET_INFO, &info))
		return 0;
	return info.missed;
}

static int kmod_start(struct syscap_backend *b)
{
	return xioctl(b, SYSCAP_IOC_START, NULL);
}

static int kmod_stop(struct syscap_backend *b)
{
	return xioctl(b, SYSCAP_IOC_STOP, NULL);
}

static int kmod_set_args(struct syscap_backend *b, int on)
{
	__u32 v = !!on;
	int ret = xioctl(b, SYSCAP_IOC_SET_ARGS, &v);

	if (!ret)
		b->record_bytes = SYSCAP_RB_HDR_SZ + (on ? SYSCAP_RING_ARGS_LEN : SYSCAP_REC_SIZE);
	return ret;
}

static int kmod_set_mode(struct syscap_backend *b, int mode)
{
	__u32 kmode;

	if (mode == SYSCAP_MODE_RECORDS)
		kmode = SYSCAP_KMOD_MODE_RECORDS;
	else if (mode == SYSCAP_MODE_COUNTS)
		kmode = SYSCAP_KMOD_MODE_COUNTS;
	else if (mode == SYSCAP_MODE_SAMPLED)
		kmode = SYSCAP_KMOD_MODE_SAMPLED;
	else
		return -EINVAL;
	return xioctl(b, SYSCAP_IOC_SET_MODE, &kmode);
}

static int kmod_set_sample_period(struct syscap_backend *b, uint32_t period)
{
	return xioctl(b, SYSCAP_IOC_SET_SAMPLE_PERIOD, &period);
}

static int kmod_sample_window(struct syscap_backend *b, int open)
{
	uint32_t v = !!open;

	return xioctl(b, SYSCAP_IOC_SAMPLE_WINDOW, &v);
}

/* Every CPU's counters, summed per process x syscall. */
static int kmod_read_counts(struct syscap_backend *b, syscap_count_fn fn, void *ctx)
{
	struct kmod_priv *p = b->priv;
	struct syscap_kmod_counts req;
	int ret;

	for (;;) {
		req.buf = (__u64)(uintptr_t)p->counts;
		req.max = (__u32)p->ncounts;
		req.n = 0;
		ret = xioctl(b, SYSCAP_IOC_READ_COUNTS, &req);
		if (ret != -ENOSPC)
			break;
		/* more counters than room: grow to what the module reports */
		free(p->counts);
		p->ncounts = (size_t)req.n + req.n / 4 + 64;
		p->counts = calloc(p->ncounts, sizeof(*p->counts));
		if (!p->counts) {
			p->ncounts = 0;
			return -ENOMEM;
		}
	}
	if (ret)
		return ret;
	syscap_count_sum(p->counts, req.n, fn, ctx);
	return 0;
}

static int kmod_forget_count(struct syscap_backend *b, const struct syscap_count_key *k)
{
	return xioctl(b, SYSCAP_IOC_FORGET_COUNT, (void *)k);
}

static void kmod_close(struct syscap_backend *b)
{
	struct kmod_priv *p;
	int i;

	if (!b)
		return;
	p = b->priv;
	for (i = 0; i < b->nrings; i++)
		if (b->rings[i].map_base)
			munmap(b->rings[i].map_base, b->rings[i].map_len);
	free(b->rings);
	if (p && p->fd >= 0)
		close(p->fd);	/* the module stops capture on release */
	if (p)
		free(p->counts);
	free(p);
	free(b);
}

static const struct syscap_backend_ops kmod_ops = {
	.set_filter = kmod_set_filter,
	.set_pid = kmod_set_pid,
	.read_stats = kmod_read_stats,
	.missed = kmod_missed,
	.set_mode = kmod_set_mode,
	.set_sample_period = kmod_set_sample_period,
	.sample_window = kmod_sample_window,
	.set_args = kmod_set_args,
	.set_clock = kmod_set_clock,
	.clock_anchor = kmod_clock_anchor,
	.read_counts = kmod_read_counts,
	.forget_count = kmod_forget_count,
	.start = kmod_start,
	.stop = kmod_stop,
	.close = kmod_close,
};

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/*
 * One CPU's ring: one reservation of address space, the consumer page mapped
 * read-write at its start and producer page + data (twice) read-only after
 * it, so a single munmap releases both.
 */
static int map_ring(int fd, const struct syscap_kmod_info *info, int cpu, struct syscap_ring *r)
{
	size_t page = info->page_size, len = 2 * page + 2 * info->ring_size;
	off_t off = (off_t)cpu * (off_t)info->cpu_stride;
	uint8_t *base, *p;

	base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	p = mmap(base, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, off);
	if (p != MAP_FAILED)
		p = mmap(base + page, len - page, PROT_READ, MAP_SHARED | MAP_FIXED, fd,
			 off + (off_t)page);
	if (p == MAP_FAILED) {
		int e = -errno;

		munmap(base, len);
		return e;
	}
	r->cpu = cpu;
	r->size = info->ring_size;
	r->consumer_pos = (volatile uint64_t *)base;
	r->producer_pos = (const volatile uint64_t *)(base + page);
	r->data = base + 2 * page;
	r->max_used = 0;
	r->map_base = base;
	r->map_len = len;
	return 0;
}

int syscap_kmod_open(struct syscap_backend **out, uint64_t ring_size, char *err, size_t errlen)
{
	struct syscap_filter filter;
	struct syscap_backend *b;
	struct kmod_priv *p;
	int cpu, ret;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	p = calloc(1, sizeof(*p));
	if (!b || !p) {
		free(b);
		free(p);
		return fail(err, errlen, -ENOMEM, "kmod backend: out of memory");
	}
	b->name = "kmod";
	syscap_clock_set(&b->clock, "monotonic", 0, 0, 0);
	b->ops = &kmod_ops;
	b->priv = p;
	b->wait_fd = -1;
	b->record_bytes = SYSCAP_RB_HDR_SZ + SYSCAP_REC_SIZE;
	p->fd = open(SYSCAP_KMOD_DEV, O_RDWR | O_CLOEXEC);
	if (p->fd < 0) {
		ret = -errno;
		kmod_close(b);
		if (ret == -ENOENT || ret == -ENXIO || ret == -ENODEV)
			return fail(err, errlen, ret,
				    "%s does not exist: load the module (modprobe syscap, or insmod kmod/syscap.ko)",
				    SYSCAP_KMOD_DEV);
		if (ret == -EBUSY)
			return fail(err, errlen, ret,
				    "%s is in use: another syscap consumer is running (one at a time)",
				    SYSCAP_KMOD_DEV);
		if (ret == -EACCES)
			return fail(err, errlen, ret, "cannot open %s (mode 0600): run as root",
				    SYSCAP_KMOD_DEV);
		if (ret == -EPERM)
			return fail(err, errlen, ret,
				    "%s needs CAP_PERFMON or CAP_SYS_ADMIN: run as root",
				    SYSCAP_KMOD_DEV);
		return fail(err, errlen, ret, "cannot open %s: %s", SYSCAP_KMOD_DEV, strerror(-ret));
	}
	if (ring_size) {
		struct syscap_kmod_ring req = { .size = ring_size, .watermark = 0 };

		ret = xioctl(b, SYSCAP_IOC_SET_RING, &req);
		if (ret) {
			kmod_close(b);
			return fail(err, errlen, ret,
				    "ring size %llu refused (%s): use a power of two from %llu to %llu bytes",
				    (unsigned long long)ring_size, strerror(-ret),
				    SYSCAP_KMOD_RING_MIN, SYSCAP_KMOD_RING_MAX);
		}
	}
	ret = xioctl(b, SYSCAP_IOC_GET_INFO, &p->info);
	if (ret || p->info.abi != SYSCAP_KMOD_ABI || p->info.record_size != SYSCAP_REC_SIZE) {
		kmod_close(b);
		return fail(err, errlen, ret ? ret : -EPROTO,
			    "the loaded syscap module speaks another ABI (%u, want %u): rebuild and reload kmod/",
			    ret ? 0 : p->info.abi, SYSCAP_KMOD_ABI);
	}
	b->ncpu = (int)p->info.nr_cpu_ids;
	b->rings = calloc(b->ncpu, sizeof(*b->rings));
	if (!b->rings) {
		kmod_close(b);
		return fail(err, errlen, -ENOMEM, "kmod backend: out of memory");
	}
	for (cpu = 0; cpu < b->ncpu; cpu++) {
		if (!(p->info.possible[cpu / 64] & (1ULL << (cpu % 64))))
			continue;
		ret = map_ring(p->fd, &p->info, cpu, &b->rings[b->nrings]);
		if (ret) {
			kmod_close(b);
			return fail(err, errlen, ret, "cannot map the ring of CPU %d: %s", cpu,
				    strerror(-ret));
		}
		b->nrings++;
	}
	ret = read_clock(b);
	if (ret) {
		kmod_close(b);
		return fail(err, errlen, ret, "cannot read the module's clock: %s", strerror(-ret));
	}
	/* Until the caller sets its own filter: everything but ourselves. */
	memset(&filter, 0, sizeof(filter));
	filter.self_tgid = (__u32)getpid();
	ret = kmod_set_filter(b, &filter);
	if (ret) {
		kmod_close(b);
		return fail(err, errlen, ret, "cannot set the filter: %s", strerror(-ret));
	}
	b->wait_fd = p->fd;
	*out = b;
	return 0;
}
