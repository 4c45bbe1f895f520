// SPDX-License-Identifier: BSD-2-Clause
/*
 * Trace writer: records are packed (record version 3, pack.h) into a block
 * buffer, written with a single write() per block (header and payload
 * together), so a recorder killed at any moment leaves only whole blocks
 * behind it.
 *
 * A trace file the writer creates itself is written with direct I/O where
 * its file system allows it: the trace's bytes go from the writer's buffer
 * to the disk, with no copy into the page cache and no page the kernel
 * allocates and zeroes for them (under an emulator, where copying and
 * zeroing run a byte at a time, that was most of what writing a record cost
 * the traced machine, docs/capture.md), and the trace does not push the
 * traced programs' files out of the cache. Direct I/O writes whole aligned
 * pages: the file's last, partial page is written padded with zeros and
 * written again with the next block; the padding is cut off at the end
 * (syscap_trace.h). Elsewhere, writes are plain.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int write_failed(struct trace_writer *w, int e)
{
	snprintf(w->err, sizeof(w->err), "writing the trace file failed: %s", strerror(e));
	return -e;
}

/* dbuf's room: the partial page, a whole block, and the padding after it */
#define DIO_BYTES (SYSCAP_BLOCK_BYTES + 3 * SYSCAP_TRACE_PAGE)

/*
 * Write dbuf's whole pages and its partial one padded; keep the partial one,
 * and pack the next block right after it (buf), so that no block is copied.
 */
static int dio_flush(struct trace_writer *w)
{
	size_t whole = w->dtail & ~(size_t)(SYSCAP_TRACE_PAGE - 1), part = w->dtail - whole;
	size_t out = whole + (part ? SYSCAP_TRACE_PAGE : 0), done = 0;

	memset(w->dbuf + w->dtail, 0, out - w->dtail);
	while (done < out) {
		ssize_t n = pwrite(w->fd, w->dbuf + done, out - done, (off_t)(w->doff + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && (fcntl(w->fd, F_GETFL) & O_DIRECT)) {
			/* the file system took O_DIRECT but not these writes:
			 * the same pages, through the page cache */
			int fl = fcntl(w->fd, F_GETFL);

			if (fl >= 0 && fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) == 0)
				continue;
			errno = EINVAL;
		}
		if (n < 0)
			return write_failed(w, errno);
		if (n == 0)
			return write_failed(w, EIO);
		done += (size_t)n;
	}
	w->doff += whole;
	memmove(w->dbuf, w->dbuf + whole, part);
	w->dtail = part;
	w->buf = w->dbuf + part;
	return 0;
}

static int dio_write(struct trace_writer *w, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len) {
		size_t n = DIO_BYTES - SYSCAP_TRACE_PAGE - w->dtail;
		int ret;

		if (n > len)
			n = len;
		memcpy(w->dbuf + w->dtail, b, n);
		w->dtail += n;
		b += n;
		len -= n;
		ret = dio_flush(w);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Direct I/O for a regular file fd, where the file system takes it; left as
 * it is (plain writes) otherwise.
 */
static void dio_start(struct trace_writer *w)
{
	struct stat st;
	void *buf;
	int fl = fcntl(w->fd, F_GETFL);

	if (fl < 0 || fstat(w->fd, &st) || !S_ISREG(st.st_mode) || st.st_size != 0)
		return;
	if (posix_memalign(&buf, SYSCAP_TRACE_PAGE, DIO_BYTES))
		return;
	if (fcntl(w->fd, F_SETFL, fl | O_DIRECT)) {
		free(buf);
		return;
	}
	free(w->buf);
	w->buf = w->dbuf = buf;
	w->dtail = 0;
	w->doff = 0;
}

/* The end of direct I/O: the padding after the last byte cut off. */
static void dio_end(struct trace_writer *w)
{
	if (!w->dbuf)
		return;
	if (ftruncate(w->fd, (off_t)(w->doff + w->dtail)) != 0) {
		/* the padding stays: readers take it for the end */
	}
	free(w->dbuf);
	w->buf = w->dbuf = NULL;
}

static int write_all(struct trace_writer *w, const void *p, size_t len)
{
	const uint8_t *b = p;

	if (w->dbuf)
		return dio_write(w, p, len);

	while (len) {
		ssize_t n = write(w->fd, b, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return write_failed(w, errno);
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static struct trace_writer *writer_open(int fd, int direct, const struct syscap_trace_header *h,
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
	if (direct)
		dio_start(w);
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
	if (w) {
		dio_end(w);
		free(w->buf);
	}
	free(w);
	return NULL;
}

struct trace_writer *trace_writer_open_fd(int fd, const struct syscap_trace_header *h,
					  const char *names, uint32_t names_len, char *err,
					  size_t errlen)
{
	/* the caller's file, flags included: written as it is */
	return writer_open(fd, 0, h, names, names_len, err, errlen);
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
	w = writer_open(fd, 1, h, names, names_len, why, sizeof(why));
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
	if (w->dbuf) {	/* packed in place, after the file's partial page */
		w->dtail += sizeof(*bh) + len;
		return dio_flush(w);
	}
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
	size_t len = sizeof(*st) + (size_t)nrows * sizeof(*rows);
	int ret = trace_writer_flush(w);
	uint8_t *p = w->buf + sizeof(struct syscap_block_header);	/* after the flush */

	if (ret)
		return ret;
	if (len > SYSCAP_BLOCK_BYTES)
		return -E2BIG;
	memcpy(p, st, sizeof(*st));
	if (nrows)
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
	dio_end(w);
	free(w->buf);
	free(w);
}

void trace_writer_close(struct trace_writer *w)
{
	if (!w)
		return;
	dio_end(w);
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
