// SPDX-License-Identifier: BSD-2-Clause
/*
 * Trace reader: maps the file and hands out blocks in place. A block whose
 * CRC or framing is wrong is skipped by scanning for the next valid block;
 * an incomplete last block (a killed recorder) ends the data. Every skip and
 * the reason the data ended are kept as warnings for the user.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

struct syscap_trace {
	const uint8_t *map;
	size_t size;
	const struct syscap_trace_header *hdr;
	const char **names;		/* nr -> name inside the map */
	uint64_t off;			/* next block */
	uint64_t data_start;
	int complete;
	int warned_end;
	char *warnings;
	size_t wlen;
};

static void warn(struct syscap_trace *t, const char *fmt, unsigned long long a,
		 unsigned long long b)
{
	char line[256];
	int n = snprintf(line, sizeof(line), fmt, a, b);
	char *nw;

	if (n <= 0)
		return;
	nw = realloc(t->warnings, t->wlen + (size_t)n + 2);
	if (!nw)
		return;
	t->warnings = nw;
	memcpy(t->warnings + t->wlen, line, (size_t)n);
	t->wlen += (size_t)n;
	t->warnings[t->wlen++] = '\n';
	t->warnings[t->wlen] = 0;
}

struct syscap_trace *syscap_trace_open(const char *path, char *err, size_t errlen)
{
	struct syscap_trace *t = calloc(1, sizeof(*t));
	struct syscap_trace_header h;
	struct stat st;
	uint32_t crc;
	int fd = -1;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot open trace %s: %s", path, strerror(errno));
		goto fail;
	}
	if ((size_t)st.st_size < sizeof(h)) {
		snprintf(err, errlen, "%s is not a syscap trace: %lld bytes is shorter than a header "
			 "(record one with 'syscap record -o FILE')", path, (long long)st.st_size);
		goto fail;
	}
	t->size = (size_t)st.st_size;
	t->map = mmap(NULL, t->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (t->map == MAP_FAILED) {
		t->map = NULL;
		snprintf(err, errlen, "cannot map trace %s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	memcpy(&h, t->map, sizeof(h));
	if (memcmp(h.magic, SYSCAP_TRACE_MAGIC, 8)) {
		snprintf(err, errlen, "%s is not a syscap trace (bad magic); record one with "
			 "'syscap record -o FILE'", path);
		goto fail;
	}
	if (h.version != SYSCAP_TRACE_VERSION || h.record_size != SYSCAP_EVENT_SIZE) {
		snprintf(err, errlen, "%s has trace format %u with %u-byte records; this syscap "
			 "reads format %u with %u-byte records: use a matching syscap version",
			 path, h.version, h.record_size, SYSCAP_TRACE_VERSION, SYSCAP_EVENT_SIZE);
		goto fail;
	}
	if (h.header_size != sizeof(h) + h.names_len || h.header_size > t->size) {
		snprintf(err, errlen, "%s: header is damaged (size %u, file %zu bytes)", path,
			 h.header_size, t->size);
		goto fail;
	}
	crc = h.crc;
	h.crc = 0;
	if (syscap_crc32(syscap_crc32(0, &h, sizeof(h)), t->map + sizeof(h), h.names_len) != crc) {
		snprintf(err, errlen, "%s: header is damaged (CRC mismatch); the trace cannot be "
			 "decoded", path);
		goto fail;
	}
	t->hdr = (const struct syscap_trace_header *)t->map;
	t->names = calloc(h.nsyscalls ? h.nsyscalls : 1, sizeof(*t->names));
	if (!t->names) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	{
		const char *p = (const char *)t->map + sizeof(h);
		const char *end = p + h.names_len;

		for (uint32_t i = 0; i < h.nsyscalls && p < end; i++) {
			size_t len = strnlen(p, (size_t)(end - p));

			if (p + len == end)
				break;
			t->names[i] = len ? p : NULL;
			p += len + 1;
		}
	}
	t->data_start = t->off = h.header_size;
	return t;
fail:
	if (fd >= 0)
		close(fd);
	syscap_trace_close(t);
	return NULL;
}

const struct syscap_trace_header *syscap_trace_header(struct syscap_trace *t)
{
	return t->hdr;
}

const char *syscap_trace_name(struct syscap_trace *t, uint32_t nr)
{
	return nr < t->hdr->nsyscalls ? t->names[nr] : NULL;
}

/* 1: valid block at off; 0: not a block; -1: a block cut short by EOF. */
static int check_block(struct syscap_trace *t, uint64_t off)
{
	struct syscap_block_header bh;
	uint32_t crc;

	if (off + sizeof(bh) > t->size)
		return off < t->size ? -1 : 0;
	memcpy(&bh, t->map + off, sizeof(bh));
	if (bh.magic != SYSCAP_BLOCK_MAGIC)
		return 0;
	if (bh.len > SYSCAP_BLOCK_BYTES)
		return 0;
	if (off + sizeof(bh) + bh.len > t->size)
		return -1;
	if (bh.type == SYSCAP_BLOCK_EVENTS && bh.len != bh.count * SYSCAP_EVENT_SIZE)
		return 0;
	if ((bh.type == SYSCAP_BLOCK_STATS || bh.type == SYSCAP_BLOCK_END) &&
	    bh.len != sizeof(struct syscap_trace_stats) +
		      bh.count * sizeof(struct syscap_trace_sysrow))
		return 0;
	crc = bh.crc;
	bh.crc = 0;
	if (syscap_crc32(syscap_crc32(0, &bh, sizeof(bh)), t->map + off + sizeof(bh), bh.len) != crc)
		return 0;
	return 1;
}

int syscap_trace_next(struct syscap_trace *t, struct syscap_trace_block *out)
{
	const struct syscap_block_header *bh;
	int ok;

	if (t->complete)
		return 0;
	ok = check_block(t, t->off);
	if (ok == 0 && t->off < t->size) {
		uint64_t bad = t->off, o;

		for (o = bad + 8; o + sizeof(*bh) <= t->size; o += 8)
			if (check_block(t, o) == 1)
				break;
		if (o + sizeof(*bh) <= t->size) {
			warn(t, "corrupt block at offset %llu: skipped %llu bytes to the next valid "
			     "block", (unsigned long long)bad, (unsigned long long)(o - bad));
			t->off = o;
			ok = 1;
		} else {
			if (!t->warned_end)
				warn(t, "truncated: no valid block after offset %llu (%llu bytes "
				     "unreadable)", (unsigned long long)bad,
				     (unsigned long long)(t->size - bad));
			t->warned_end = 1;
			return 0;
		}
	}
	if (ok <= 0) {
		if (!t->warned_end) {
			if (ok < 0)
				warn(t, "truncated: incomplete block at offset %llu (%llu bytes); the "
				     "recorder did not finish", (unsigned long long)t->off,
				     (unsigned long long)(t->size - t->off));
			else
				warn(t, "truncated: the trace has no end marker after offset %llu; the "
				     "recorder did not finish", (unsigned long long)t->off, 0ULL);
		}
		t->warned_end = 1;
		return 0;
	}
	bh = (const struct syscap_block_header *)(t->map + t->off);
	memset(out, 0, sizeof(*out));
	out->type = bh->type;
	out->count = bh->count;
	out->offset = t->off;
	if (bh->type == SYSCAP_BLOCK_EVENTS) {
		out->events = (const struct syscap_event *)(bh + 1);
	} else if (bh->type == SYSCAP_BLOCK_STATS || bh->type == SYSCAP_BLOCK_END) {
		out->stats = (const struct syscap_trace_stats *)(bh + 1);
		out->rows = (const struct syscap_trace_sysrow *)(out->stats + 1);
	}
	t->off += sizeof(*bh) + bh->len;
	if (bh->type == SYSCAP_BLOCK_END)
		t->complete = 1;
	return 1;
}

int syscap_trace_complete(struct syscap_trace *t)
{
	return t->complete;
}

const char *syscap_trace_warnings(struct syscap_trace *t)
{
	return t->warnings ? t->warnings : "";
}

void syscap_trace_rewind(struct syscap_trace *t)
{
	t->off = t->data_start;
	t->complete = 0;
	t->warned_end = 0;
	free(t->warnings);
	t->warnings = NULL;
	t->wlen = 0;
}

void syscap_trace_close(struct syscap_trace *t)
{
	if (!t)
		return;
	if (t->map)
		munmap((void *)t->map, t->size);
	free(t->names);
	free(t->warnings);
	free(t);
}
