// SPDX-License-Identifier: BSD-2-Clause
/*
 * Trace writer: records are packed (record version 3, pack.h) into a block
 * buffer, written with a single write() per block (header and payload
 * together), so a recorder killed at any moment leaves only whole blocks
 * behind it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"
#include "syscap_backend.h"

uint64_t syscap_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t syscap_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Copy a string, cut to fit, always terminated. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

void syscap_trace_header_init(struct syscap_trace_header *h, const char *backend, int ncpu)
{
	struct utsname u;

	memset(h, 0, sizeof(*h));
	memcpy(h->magic, SYSCAP_TRACE_MAGIC, 8);
	h->version = SYSCAP_TRACE_VERSION;
	h->record_version = SYSCAP_REC_VERSION;
	h->record_size = SYSCAP_REC_SIZE;
	if (uname(&u) == 0) {
		copy_str(h->arch, sizeof(h->arch), u.machine);
		copy_str(h->release, sizeof(h->release), u.release);
	}
	copy_str(h->clock, sizeof(h->clock), "monotonic");
	copy_str(h->backend, sizeof(h->backend), backend ? backend : "");
	h->start_mono_ns = syscap_mono_ns();
	h->start_real_ns = syscap_real_ns();
	h->ncpu = (uint32_t)ncpu;
}

static int write_all(struct trace_writer *w, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len) {
		ssize_t n = write(w->fd, b, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(w->err, sizeof(w->err), "writing the trace file failed: %s",
				 strerror(errno));
			return -errno;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

struct trace_writer *trace_writer_open_fd(int fd, const struct syscap_trace_header *h,
					  const char *names, uint32_t names_len, char *err,
					  size_t errlen)
{
	struct trace_writer *w = calloc(1, sizeof(*w));
	struct syscap_trace_header hdr = *h;
	static const uint8_t zeros[8];
	uint32_t pad = (8 - (sizeof(hdr) + names_len) % 8) % 8;

	if (h->record_version != SYSCAP_REC_VERSION ||
	    (h->record_size != SYSCAP_REC_SIZE && h->record_size != SYSCAP_REC_ARGS_SIZE)) {
		snprintf(err, errlen, "cannot write %u-byte records of version %u",
			 h->record_size, h->record_version);
		goto fail;
	}
	if (!w || !(w->buf = malloc(sizeof(struct syscap_block_header) + SYSCAP_BLOCK_BYTES))) {
		snprintf(err, errlen, "out of memory for the trace writer");
		goto fail;
	}
	w->fd = fd;
	w->pack.args = h->record_size == SYSCAP_REC_ARGS_SIZE;
	hdr.record_version = SYSCAP_TRACE_PACKED;
	hdr.names_len = names_len + pad;
	hdr.header_size = (uint32_t)sizeof(hdr) + hdr.names_len;
	hdr.crc = 0;
	hdr.crc = syscap_crc32(0, &hdr, sizeof(hdr));
	hdr.crc = syscap_crc32(hdr.crc, names, names_len);
	hdr.crc = syscap_crc32(hdr.crc, zeros, pad);
	if (write_all(w, &hdr, sizeof(hdr)) || write_all(w, names, names_len) ||
	    write_all(w, zeros, pad)) {
		snprintf(err, errlen, "%s", w->err);
		goto fail;
	}
	return w;
fail:
	if (w)
		free(w->buf);
	free(w);
	return NULL;
}

struct trace_writer *trace_writer_open(const char *path, uint32_t flags,
				       const struct syscap_trace_header *h,
				       const char *names, uint32_t names_len, char *err,
				       size_t errlen)
{
	char why[256] = "";
	struct trace_writer *w;
	int fd = syscap_create_output(path, flags, err, errlen);

	if (fd < 0)
		return NULL;
	w = trace_writer_open_fd(fd, h, names, names_len, why, sizeof(why));
	if (!w) {
		snprintf(err, errlen, "%s: %s", path, why);
		close(fd);
	}
	return w;
}

static int write_block(struct trace_writer *w, uint32_t type, uint32_t count, uint32_t len)
{
	struct syscap_block_header *bh = (struct syscap_block_header *)w->buf;

	bh->magic = SYSCAP_BLOCK_MAGIC;
	bh->type = type;
	bh->len = len;
	bh->count = count;
	bh->seq = w->seq++;
	bh->crc = 0;
	bh->reserved = 0;
	bh->crc = syscap_crc32(0, w->buf, sizeof(*bh) + len);
	return write_all(w, w->buf, sizeof(*bh) + len);
}

int trace_writer_flush(struct trace_writer *w)
{
	uint32_t len = (w->used + 7) & ~7u;
	int ret;

	if (!w->count)
		return 0;
	memset(w->buf + sizeof(struct syscap_block_header) + w->used, 0, len - w->used);
	ret = write_block(w, SYSCAP_BLOCK_EVENTS, w->count, len);
	w->count = 0;
	w->used = 0;
	memset(&w->pack.prev, 0, sizeof(w->pack.prev));
	return ret;
}

int trace_writer_stats(struct trace_writer *w, uint32_t type, const struct syscap_trace_stats *st,
		       const struct syscap_trace_sysrow *rows, uint32_t nrows)
{
	uint8_t *p = w->buf + sizeof(struct syscap_block_header);
	size_t len = sizeof(*st) + (size_t)nrows * sizeof(*rows);
	int ret = trace_writer_flush(w);

	if (ret)
		return ret;
	if (len > SYSCAP_BLOCK_BYTES)
		return -E2BIG;
	memcpy(p, st, sizeof(*st));
	memcpy(p + sizeof(*st), rows, (size_t)nrows * sizeof(*rows));
	return write_block(w, type, nrows, (uint32_t)len);
}

int trace_writer_block(struct trace_writer *w, uint32_t type, uint32_t count, const void *payload,
		       uint32_t len)
{
	int ret = trace_writer_flush(w);

	if (ret)
		return ret;
	if (len > SYSCAP_BLOCK_BYTES || len % 8)
		return -E2BIG;
	memcpy(w->buf + sizeof(struct syscap_block_header), payload, len);
	return write_block(w, type, count, len);
}

const char *trace_writer_error(struct trace_writer *w)
{
	return w->err[0] ? w->err : NULL;
}

int trace_writer_clock(struct trace_writer *w, const struct syscap_clock *c)
{
	struct syscap_trace_clock tc;

	if (!c->hz)
		return 0;
	memset(&tc, 0, sizeof(tc));
	memcpy(tc.source, c->source, sizeof(tc.source));
	tc.source[sizeof(tc.source) - 1] = 0;
	tc.hz = c->hz;
	tc.ref_ticks = c->ref_ticks;
	tc.ref_ns = c->ref_ns;
	tc.mult = c->mult;
	return trace_writer_block(w, SYSCAP_BLOCK_CLOCK, 1, &tc, sizeof(tc));
}

void trace_writer_free(struct trace_writer *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w);
}

void trace_writer_close(struct trace_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	free(w);
}

int syscap_sum_stats(const struct syscap_cpu_stats *percpu, int ncpu,
		     struct syscap_trace_stats *st, struct syscap_trace_sysrow *rows, int max)
{
	int n = 0;

	memset(st, 0, sizeof(*st));
	st->mono_ns = syscap_mono_ns();
	for (int c = 0; c < ncpu; c++) {
		st->events += percpu[c].events;
		st->drops += percpu[c].drops;
		st->proc_events += percpu[c].proc_events;
		st->proc_drops += percpu[c].proc_drops;
	}
	for (uint32_t nr = 0; nr < SYSCAP_MAX_SYSCALLS; nr++) {
		struct syscap_trace_sysrow r = { .nr = nr };

		for (int c = 0; c < ncpu; c++) {
			r.calls += percpu[c].calls[nr];
			r.errors += percpu[c].errors[nr];
			r.total_ns += percpu[c].total_ns[nr];
		}
		if (!r.calls)
			continue;
		if (rows && n < max)
			rows[n] = r;
		n++;
	}
	return n;
}
