// SPDX-License-Identifier: BSD-2-Clause
/*
 * Trace reader: maps the file and hands out blocks in place (records of
 * versions 2 and 3 decoded into struct syscap_event first). A block whose
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
	int owns_map;			/* map is ours to munmap */
	const struct syscap_trace_header *hdr;
	const char **names;		/* nr -> name inside the map */
	uint64_t off;			/* next block */
	uint64_t cur;			/* the block syscap_trace_next returned last */
	uint64_t released;		/* the map's pages before this are given back */
	uint64_t data_start;
	uint64_t scan_budget;		/* CRC bytes left for resynchronising */
	uint32_t rec_size;		/* bytes per record in EVENTS blocks */
	uint32_t rec_version;		/* 1: struct syscap_event, 2: struct syscap_rec,
					 * 3: packed syscap_rec (syscap_trace.h) */
	struct syscap_event *decoded;	/* versions 2, 3: the current block, decoded */
	int complete;
	int ended;			/* no more blocks this pass */
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
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	nw = realloc(t->warnings, t->wlen + (size_t)n + 2);
	if (!nw)
		return;
	t->warnings = nw;
	memcpy(t->warnings + t->wlen, line, (size_t)n);
	t->wlen += (size_t)n;
	t->warnings[t->wlen++] = '\n';
	t->warnings[t->wlen] = 0;
}

/*
 * Every size below comes from the file, so every check is done in 64 bits
 * against the bytes that are really there: a trace is untrusted input.
 */
static int parse_header(struct syscap_trace *t, const char *name, char *err, size_t errlen)
{
	struct syscap_trace_header h;
	uint64_t header_size;
	uint32_t crc;

	if (t->size < sizeof(h)) {
		snprintf(err, errlen, "%s is not a syscap trace: %zu bytes is shorter than a header "
			 "(record one with 'syscap record -o FILE')", name, t->size);
		return -1;
	}
	memcpy(&h, t->map, sizeof(h));
	if (memcmp(h.magic, SYSCAP_TRACE_MAGIC, 8)) {
		snprintf(err, errlen, "%s is not a syscap trace (bad magic); record one with "
			 "'syscap record -o FILE'", name);
		return -1;
	}
	if (h.version != SYSCAP_TRACE_VERSION ||
	    !((h.record_version == SYSCAP_RECORD_VERSION && h.record_size == SYSCAP_EVENT_SIZE) ||
	      ((h.record_version == SYSCAP_REC_VERSION || h.record_version == SYSCAP_TRACE_PACKED) &&
	       (h.record_size == SYSCAP_REC_SIZE || h.record_size == SYSCAP_REC_ARGS_SIZE)))) {
		snprintf(err, errlen, "%s has trace format %u with %u-byte records of version %u; "
			 "this syscap reads format %u with records of versions %u to %u: use a "
			 "matching syscap version", name, h.version, h.record_size,
			 h.record_version, SYSCAP_TRACE_VERSION, SYSCAP_RECORD_VERSION,
			 SYSCAP_TRACE_PACKED);
		return -1;
	}
	/* blocks start 8-aligned (the writer pads the names), so records are too */
	header_size = (uint64_t)sizeof(h) + h.names_len;
	if (h.header_size != header_size || header_size > t->size || header_size % 8) {
		snprintf(err, errlen, "%s: header is damaged (size %u, file %zu bytes); the trace "
			 "cannot be decoded", name, h.header_size, t->size);
		return -1;
	}
	crc = h.crc;
	h.crc = 0;
	if (syscap_crc32(syscap_crc32(0, &h, sizeof(h)), t->map + sizeof(h), h.names_len) != crc) {
		snprintf(err, errlen, "%s: header is damaged (CRC mismatch); the trace cannot be "
			 "decoded", name);
		return -1;
	}
	/* Each name takes at least its NUL, and the last one ends inside the table. */
	if (h.nsyscalls > h.names_len ||
	    (h.names_len && t->map[sizeof(h) + h.names_len - 1] != 0)) {
		snprintf(err, errlen, "%s: header is damaged (the syscall names table is not %u "
			 "NUL-terminated names in %u bytes); the trace cannot be decoded", name,
			 h.nsyscalls, h.names_len);
		return -1;
	}
	t->hdr = (const struct syscap_trace_header *)t->map;
	t->rec_size = h.record_size;
	t->rec_version = h.record_version;
	t->names = calloc(h.nsyscalls ? h.nsyscalls : 1, sizeof(*t->names));
	if (t->rec_version == SYSCAP_REC_VERSION)
		t->decoded = malloc(SYSCAP_BLOCK_BYTES / SYSCAP_REC_SIZE * sizeof(*t->decoded));
	else if (t->rec_version == SYSCAP_TRACE_PACKED)
		t->decoded = malloc(SYSCAP_PACK_MAX_COUNT * sizeof(*t->decoded));
	if (!t->names || (t->rec_version != SYSCAP_RECORD_VERSION && !t->decoded)) {
		snprintf(err, errlen, "out of memory reading %s", name);
		return -1;
	}
	{
		const char *p = (const char *)t->map + sizeof(h);
		const char *end = p + h.names_len;

		/* the table ends in a NUL (checked above): strlen stays inside it */
		for (uint32_t i = 0; i < h.nsyscalls && p < end; i++) {
			size_t len = strlen(p);

			t->names[i] = len ? p : NULL;
			p += len + 1;
		}
	}
	t->data_start = t->off = header_size;
	t->scan_budget = t->size;
	return 0;
}

struct syscap_trace *syscap_trace_open_mem(const void *buf, size_t size, const char *name,
					   char *err, size_t errlen)
{
	struct syscap_trace *t;

	if ((uintptr_t)buf % 8) {
		snprintf(err, errlen, "%s: trace buffer is not 8-byte aligned", name);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory reading %s", name);
		return NULL;
	}
	t->map = buf;
	t->size = size;
	if (parse_header(t, name, err, errlen)) {
		syscap_trace_close(t);
		return NULL;
	}
	return t;
}

struct syscap_trace *syscap_trace_open(const char *path, char *err, size_t errlen)
{
	struct syscap_trace *t;
	struct stat st;
	void *map;
	int fd;

	/* O_NONBLOCK: a FIFO must not block the open; only regular files are read */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot open trace %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file: give a trace file written by "
			 "'syscap record -o FILE'", path);
		close(fd);
		return NULL;
	}
	if ((uint64_t)st.st_size < sizeof(struct syscap_trace_header)) {
		snprintf(err, errlen, "%s is not a syscap trace: %lld bytes is shorter than a header "
			 "(record one with 'syscap record -o FILE')", path, (long long)st.st_size);
		close(fd);
		return NULL;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		snprintf(err, errlen, "cannot map trace %s: %s", path, strerror(errno));
		return NULL;
	}
	t = syscap_trace_open_mem(map, (size_t)st.st_size, path, err, errlen);
	if (!t) {
		munmap(map, (size_t)st.st_size);
		return NULL;
	}
	t->owns_map = 1;
	return t;
}

const struct syscap_trace_header *syscap_trace_header(struct syscap_trace *t)
{
	return t->hdr;
}

int syscap_trace_has_args(struct syscap_trace *t)
{
	return t->rec_version == SYSCAP_RECORD_VERSION || t->rec_size == SYSCAP_REC_ARGS_SIZE;
}

const char *syscap_trace_name(struct syscap_trace *t, uint32_t nr)
{
	return nr < t->hdr->nsyscalls ? t->names[nr] : NULL;
}

/* 1: valid block at off; 0: not a block; -1: a block cut short by EOF.
 * off <= t->size always holds (offsets only move by checked lengths). */
static int check_block(struct syscap_trace *t, uint64_t off, int scanning)
{
	struct syscap_block_header bh;
	uint64_t len;
	uint32_t crc;

	if (t->size - off < sizeof(bh))
		return off < t->size ? -1 : 0;
	memcpy(&bh, t->map + off, sizeof(bh));
	if (bh.magic != SYSCAP_BLOCK_MAGIC)
		return 0;
	len = bh.len;
	if (len > SYSCAP_BLOCK_BYTES || len % 8)
		return 0;
	if (bh.type == SYSCAP_BLOCK_EVENTS && t->rec_version != SYSCAP_TRACE_PACKED &&
	    len != (uint64_t)bh.count * t->rec_size)
		return 0;
	/* a packed record takes 5 bytes at least */
	if (bh.type == SYSCAP_BLOCK_EVENTS && t->rec_version == SYSCAP_TRACE_PACKED &&
	    (bh.count > SYSCAP_PACK_MAX_COUNT || len < bh.count * 5ULL))
		return 0;
	if ((bh.type == SYSCAP_BLOCK_STATS || bh.type == SYSCAP_BLOCK_END) &&
	    len != sizeof(struct syscap_trace_stats) +
		   (uint64_t)bh.count * sizeof(struct syscap_trace_sysrow))
		return 0;
	if (len > t->size - off - sizeof(bh))
		return -1;
	/*
	 * While looking for the next block after a bad one, every candidate
	 * costs a CRC over its payload: a file crafted with a block magic every
	 * 8 bytes would make that quadratic. Valid data needs at most the file's
	 * size in total, so that is the budget.
	 */
	if (scanning) {
		if (len > t->scan_budget)
			return -2;
		t->scan_budget -= len;
	}
	crc = bh.crc;
	bh.crc = 0;
	if (syscap_crc32(syscap_crc32(0, &bh, sizeof(bh)), t->map + off + sizeof(bh), (size_t)len)
	    != crc)
		return 0;
	return 1;
}

int syscap_trace_clock(struct syscap_trace *t, struct syscap_trace_clock *out)
{
	const struct syscap_block_header *bh;

	if (check_block(t, t->data_start, 0) != 1)
		return 0;
	bh = (const struct syscap_block_header *)(t->map + t->data_start);
	if (bh->type != SYSCAP_BLOCK_CLOCK || bh->count != 1 || bh->len != sizeof(*out))
		return 0;
	memcpy(out, bh + 1, sizeof(*out));
	out->source[sizeof(out->source) - 1] = 0;
	return out->hz != 0;
}

static int end_of_data(struct syscap_trace *t)
{
	t->ended = 1;
	return 0;
}

/*
 * A packed block's records into t->decoded; -1 if its bytes are not count
 * packed records and zeros to the end (the CRC matched: a writer's bug or a
 * crafted file).
 */
static int unpack_block(struct syscap_trace *t, const struct syscap_block_header *bh)
{
	const uint8_t *p = (const uint8_t *)(bh + 1), *end = p + bh->len;
	struct syscap_pack st = { .args = t->rec_size == SYSCAP_REC_ARGS_SIZE };
	uint64_t args[6];
	struct syscap_rec r;

	for (uint32_t i = 0; i < bh->count; i++) {
		long n = syscap_unpack_rec(&st, p, (size_t)(end - p), &r, args);

		if (n < 0)
			return -1;
		p += n;
		syscap_rec_decode(&r, st.args ? args : NULL, &t->decoded[i]);
	}
	if (end - p >= 8)
		return -1;
	for (; p < end; p++)
		if (*p)
			return -1;
	return 0;
}

static int next_block(struct syscap_trace *t, struct syscap_trace_block *out);

int syscap_trace_next(struct syscap_trace *t, struct syscap_trace_block *out)
{
	int ret;

	while ((ret = next_block(t, out)) == 2)
		;	/* a block whose records did not decode: warned, skipped */
	return ret;
}

/* 1 and the next block in out; 0 at the end; 2: a block was skipped. */
static int next_block(struct syscap_trace *t, struct syscap_trace_block *out)
{
	const struct syscap_block_header *bh;
	int ok;

	if (t->complete || t->ended)
		return 0;
	ok = check_block(t, t->off, 0);
	if (ok == 0 && t->off < t->size) {
		uint64_t bad = t->off, o;
		int found = 0;

		for (o = bad + 8; t->size - o >= sizeof(*bh); o += 8) {
			found = check_block(t, o, 1);
			if (found == 1 || found == -2)
				break;
		}
		if (found == 1) {
			warn(t, "corrupt block at offset %llu: skipped %llu bytes to the next valid "
			     "block", (unsigned long long)bad, (unsigned long long)(o - bad));
			t->off = o;
			ok = 1;
		} else if (found == -2) {
			warn(t, "damaged: gave up looking for a valid block after offset %llu (%llu "
			     "bytes unread)", (unsigned long long)bad,
			     (unsigned long long)(t->size - bad));
			return end_of_data(t);
		} else {
			warn(t, "truncated: no valid block after offset %llu (%llu bytes "
			     "unreadable)", (unsigned long long)bad,
			     (unsigned long long)(t->size - bad));
			return end_of_data(t);
		}
	}
	if (ok <= 0) {
		if (ok < 0)
			warn(t, "truncated: incomplete block at offset %llu (%llu bytes); the "
			     "recorder did not finish", (unsigned long long)t->off,
			     (unsigned long long)(t->size - t->off));
		else
			warn(t, "truncated: the trace has no end marker after offset %llu; the "
			     "recorder did not finish", (unsigned long long)t->off, 0ULL);
		return end_of_data(t);
	}
	bh = (const struct syscap_block_header *)(t->map + t->off);
	memset(out, 0, sizeof(*out));
	out->type = bh->type;
	out->count = bh->count;
	out->offset = t->cur = t->off;
	if (bh->type == SYSCAP_BLOCK_EVENTS) {
		if (t->rec_version == SYSCAP_TRACE_PACKED) {
			if (unpack_block(t, bh)) {
				warn(t, "corrupt block at offset %llu: its %llu bytes are not "
				     "packed records; skipped", (unsigned long long)t->off,
				     (unsigned long long)bh->len);
				t->off += sizeof(*bh) + bh->len;
				return 2;
			}
			out->events = t->decoded;
		} else if (t->rec_version == SYSCAP_REC_VERSION) {
			/* count * rec_size == len <= SYSCAP_BLOCK_BYTES (check_block) */
			for (uint32_t i = 0; i < bh->count; i++)
			{
				const uint8_t *r = (const uint8_t *)(bh + 1) + (size_t)i * t->rec_size;

				syscap_rec_decode((const struct syscap_rec *)r,
						  t->rec_size == SYSCAP_REC_ARGS_SIZE ?
						  (const uint64_t *)(r + SYSCAP_REC_SIZE) : NULL,
						  &t->decoded[i]);
			}
			out->events = t->decoded;
		} else {
			out->events = (const struct syscap_event *)(bh + 1);
		}
	} else if (bh->type == SYSCAP_BLOCK_STATS || bh->type == SYSCAP_BLOCK_END) {
		out->stats = (const struct syscap_trace_stats *)(bh + 1);
		out->rows = (const struct syscap_trace_sysrow *)(out->stats + 1);
	} else {
		out->count = 0;		/* a block type this reader does not know: no rows */
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

void syscap_trace_release_read(struct syscap_trace *t)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t hi = t->cur & ~(page - 1);

	/* only a file the reader mapped itself: its pages come back from
	 * the file if they are read again (after a rewind) */
	if (!t->owns_map || hi <= t->released)
		return;
	madvise((void *)(t->map + t->released), (size_t)(hi - t->released), MADV_DONTNEED);
	t->released = hi;
}

void syscap_trace_rewind(struct syscap_trace *t)
{
	t->off = t->data_start;
	t->cur = 0;
	t->released = 0;
	t->complete = 0;
	t->ended = 0;
	t->scan_budget = t->size;
	free(t->warnings);
	t->warnings = NULL;
	t->wlen = 0;
}

void syscap_trace_close(struct syscap_trace *t)
{
	if (!t)
		return;
	if (t->owns_map)
		munmap((void *)t->map, t->size);
	free(t->names);
	free(t->decoded);
	free(t->warnings);
	free(t);
}
