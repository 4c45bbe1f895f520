// SPDX-License-Identifier: BSD-2-Clause
/*
 * Export of a trace file to Perfetto's JSON trace-event format, streaming:
 * one pass over the blocks, one complete slice ("ph":"X") per syscall record
 * written as it is read, process and thread names ("ph":"M") and the last
 * counter values at the end. Memory grows with the number of threads and
 * processes in the trace, never with the number of records: the trace's
 * pages are released from this process's mapping once they are written out.
 *
 * Counter tracks: a "syscalls" counter per process (value "calls/s"), in bins
 * of counter_ns by completion time (ts_ns + dur_ns). Records are written to the rings at
 * syscall exit, so completion times arrive nearly in order; a bin is written
 * once the latest completion time seen is LAG past its end, and only when
 * its value differs from the process's previous bin (a counter is a step
 * function). A record completing in a bin already written is counted in
 * result->late (it does not happen unless the recorder's CPUs drained more
 * than LAG apart).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "syscap.h"

#define LAG_NS		2000000000ULL	/* see above */
#define MIN_LAG_BINS	8
#define OUT_BUF		(1 << 20)

struct thread_entry {
	uint32_t tid;			/* 0 = empty */
	uint32_t tgid;
	uint64_t comm_ts;		/* ts_ns of the record that named it */
	int named;
	char comm[SYSCAP_COMM_LEN];
};

struct proc_entry {
	uint32_t tgid;			/* 0 = empty */
	uint32_t included;		/* passes the pid filter */
	uint32_t parent;		/* from its FORK record, or 0 */
	uint64_t comm_ts;
	int named;
	char comm[SYSCAP_COMM_LEN];
	int64_t first_bin;		/* oldest open bin; -1: none yet */
	uint64_t last_value;		/* calls in the last bin written */
	uint32_t *bins;			/* ring of nbins counts, first_bin at first_bin % nbins */
	uint64_t open_calls;		/* sum of the open bins */
};

struct table {
	void *slots;
	uint32_t cap;			/* power of two */
	uint32_t used;
	size_t size;			/* bytes per slot */
};

struct exporter {
	FILE *out;
	struct syscap_trace *t;
	const struct syscap_export_opts *o;
	struct syscap_export_result *r;
	struct table threads, procs;
	uint32_t nbins;			/* ring size per process, power of two */
	uint64_t lag_bins;
	uint64_t watermark;		/* latest completion time seen */
	int first;			/* no event written yet */
	int oom;
};

static uint32_t hash32(uint32_t k)
{
	k ^= k >> 16;
	k *= 0x7feb352dU;
	k ^= k >> 15;
	k *= 0x846ca68bU;
	k ^= k >> 16;
	return k;
}

/* Both entry types start with their u32 key. */
static void *table_get(struct exporter *x, struct table *tb, uint32_t key, int create)
{
	uint32_t mask, i;

	if (!key)
		return NULL;
	if (create && (tb->used + 1) * 4 > tb->cap * 3) {
		uint32_t ncap = tb->cap ? tb->cap * 2 : 256;
		char *nslots = calloc(ncap, tb->size), *old = tb->slots;

		if (!nslots) {
			x->oom = 1;
			return NULL;
		}
		for (uint32_t k = 0; k < tb->cap; k++) {
			uint32_t okey;

			memcpy(&okey, old + (size_t)k * tb->size, sizeof(okey));
			if (!okey)
				continue;
			for (i = hash32(okey) & (ncap - 1);; i = (i + 1) & (ncap - 1)) {
				uint32_t nkey;

				memcpy(&nkey, nslots + (size_t)i * tb->size, sizeof(nkey));
				if (!nkey)
					break;
			}
			memcpy(nslots + (size_t)i * tb->size, old + (size_t)k * tb->size, tb->size);
		}
		free(old);
		tb->slots = nslots;
		tb->cap = ncap;
	}
	if (!tb->cap)
		return NULL;
	mask = tb->cap - 1;
	for (i = hash32(key) & mask;; i = (i + 1) & mask) {
		char *slot = (char *)tb->slots + (size_t)i * tb->size;
		uint32_t skey;

		memcpy(&skey, slot, sizeof(skey));
		if (skey == key)
			return slot;
		if (!skey) {
			if (!create)
				return NULL;
			memcpy(slot, &key, sizeof(key));
			tb->used++;
			return slot;
		}
	}
}

static struct proc_entry *proc_get(struct exporter *x, uint32_t tgid, int create)
{
	struct proc_entry *p = table_get(x, &x->procs, tgid, create);

	if (p && create && !p->bins) {
		p->bins = calloc(x->nbins, sizeof(*p->bins));
		if (!p->bins) {
			x->oom = 1;
			return NULL;
		}
		p->first_bin = -1;
		p->included = !x->o->npids;
		for (uint32_t i = 0; i < x->o->npids; i++)
			if (x->o->pids[i] == tgid)
				p->included = 1;
		x->r->processes++;
	}
	return p;
}

static void put_str(FILE *f, const char *s, size_t max)
{
	fputc('"', f);
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)	/* comms are bytes: keep the JSON ASCII */
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void sep(struct exporter *x)
{
	if (!x->first)
		fputs(",\n", x->out);
	x->first = 0;
}

static char *fmt_us(char *p, uint64_t ns);

static void put_us(FILE *f, uint64_t ns)
{
	char buf[32];

	fwrite(buf, 1, (size_t)(fmt_us(buf, ns) - buf), f);
}

static void counter(struct exporter *x, struct proc_entry *p, int64_t bin, uint64_t calls)
{
	uint64_t ns = (uint64_t)bin * x->o->counter_ns;

	sep(x);
	fprintf(x->out, "{\"ph\":\"C\",\"name\":\"syscalls\",\"pid\":%u,\"ts\":", p->tgid);
	put_us(x->out, ns);
	/* calls per second: exact as a decimal for bins that divide a second */
	fprintf(x->out, ",\"args\":{\"calls/s\":%.9g}}", (double)calls * 1e9 / (double)x->o->counter_ns);
	x->r->counters++;
}

/* Write the bins of p before upto_bin, or (all) every bin that still has calls. */
static void flush_bins(struct exporter *x, struct proc_entry *p, int64_t upto_bin, int all)
{
	if (p->first_bin < 0)
		return;
	while (all ? p->open_calls || p->last_value : p->first_bin < upto_bin) {
		uint32_t *slot = &p->bins[(uint64_t)p->first_bin & (x->nbins - 1)];

		if (*slot != p->last_value)
			counter(x, p, p->first_bin, *slot);
		p->last_value = *slot;
		p->open_calls -= *slot;
		*slot = 0;
		p->first_bin++;
		if (!p->open_calls && !p->last_value && !all) {
			p->first_bin = upto_bin;	/* idle: nothing to write until then */
			break;
		}
	}
}

static void count_call(struct exporter *x, struct proc_entry *p, uint64_t end_ns)
{
	int64_t bin = (int64_t)(end_ns / x->o->counter_ns), upto;

	if (end_ns > x->watermark)
		x->watermark = end_ns;
	upto = (int64_t)(x->watermark / x->o->counter_ns) - (int64_t)x->lag_bins;
	if (p->first_bin < 0)
		p->first_bin = bin < upto ? bin : upto < 0 ? 0 : upto;
	flush_bins(x, p, upto, 0);
	if (bin < p->first_bin) {
		x->r->late++;
		return;
	}
	if (bin >= p->first_bin + (int64_t)x->nbins) {
		/* cannot happen: the ring spans more than LAG */
		x->r->late++;
		return;
	}
	p->bins[(uint64_t)bin & (x->nbins - 1)]++;
	p->open_calls++;
}

static void name_task(struct exporter *x, const struct syscap_event *ev)
{
	struct thread_entry *th = table_get(x, &x->threads, ev->tid, 1);
	struct proc_entry *p = proc_get(x, ev->tgid, 1);

	if (th) {
		th->tgid = ev->tgid;
		if (!th->named || ev->ts_ns >= th->comm_ts) {
			memcpy(th->comm, ev->proc.comm, SYSCAP_COMM_LEN);
			th->comm_ts = ev->ts_ns;
			th->named = 1;
		}
	}
	/* the process is named after its main thread, else its first named thread */
	if (p && (!p->named || (ev->tid == ev->tgid && ev->ts_ns >= p->comm_ts))) {
		memcpy(p->comm, ev->proc.comm, SYSCAP_COMM_LEN);
		p->comm_ts = ev->tid == ev->tgid ? ev->ts_ns : 0;
		p->named = 1;
	}
}

static void proc_event(struct exporter *x, const struct syscap_event *ev)
{
	name_task(x, ev);
}

/*
 * -p follows fork, as record does. Records reach the trace per CPU, so a
 * child's first calls can come before the FORK record that makes it a child:
 * a first pass collects the fork tree, then membership is settled once.
 */
static void resolve_pids(struct exporter *x)
{
	struct syscap_trace_block blk;

	while (syscap_trace_next(x->t, &blk)) {
		if (blk.type != SYSCAP_BLOCK_EVENTS)
			continue;
		for (uint32_t i = 0; i < blk.count; i++) {
			const struct syscap_event *ev = &blk.events[i];
			struct proc_entry *child;

			if (ev->kind != SYSCAP_EV_FORK || ev->tid != ev->tgid)
				continue;
			child = proc_get(x, ev->tgid, 1);
			if (child && proc_get(x, ev->proc.parent_tgid, 1))	/* for the walk */
				child->parent = ev->proc.parent_tgid;
		}
		syscap_trace_release_read(x->t);
	}
	for (uint32_t i = 0; i < x->procs.cap; i++) {
		struct proc_entry *p = (struct proc_entry *)x->procs.slots + i;
		struct proc_entry *up = p;

		/* bounded walk: reused pids can make a cycle */
		for (int depth = 0; p->tgid && !p->included && up && depth < 256; depth++) {
			up = up->parent ? proc_get(x, up->parent, 0) : NULL;
			if (up && up->included && up != p)
				p->included = 1;
		}
	}
	syscap_trace_rewind(x->t);
}

/* Formatting for the per-slice hot path: into a buffer, one fwrite per slice. */
static char *fmt_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *fmt_u64(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *fmt_s64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return fmt_u64(p, -(uint64_t)v);
	}
	return fmt_u64(p, (uint64_t)v);
}

/* as printf's %#llx: "0", or "0x" and lower-case digits */
static char *fmt_hex(char *p, uint64_t v)
{
	char tmp[16];
	int n = 0;

	if (!v) {
		*p++ = '0';
		return p;
	}
	while (v) {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	}
	*p++ = '0';
	*p++ = 'x';
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Perfetto's JSON takes microseconds; three decimals keep nanoseconds exact. */
static char *fmt_us(char *p, uint64_t ns)
{
	unsigned int frac = (unsigned int)(ns % 1000);

	p = fmt_u64(p, ns / 1000);
	*p++ = '.';
	*p++ = (char)('0' + frac / 100);
	*p++ = (char)('0' + frac / 10 % 10);
	*p++ = (char)('0' + frac % 10);
	return p;
}

/* A name from the trace's table, if it is a plain identifier (the table is
 * data from a file: nothing in it may break the JSON). */
static int plain_name(const char *name)
{
	size_t i;

	if (!name)
		return 0;
	for (i = 0; name[i] && i < 64; i++)
		if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9')))
			return 0;
	return i > 0 && !name[i];
}

static void slice(struct exporter *x, const struct syscap_event *ev)
{
	const struct syscap_export_opts *o = x->o;
	struct proc_entry *p;
	struct thread_entry *th;
	const char *name;
	char buf[640], *b = buf;

	if (ev->nr >= SYSCAP_MAX_SYSCALLS)
		return;
	if (o->has_syscalls && !(o->syscalls[ev->nr >> 6] & (1ULL << (ev->nr & 63))))
		return;
	if (ev->ts_ns < o->start_ns || (o->end_ns && ev->ts_ns >= o->end_ns))
		return;
	p = proc_get(x, ev->tgid, 1);
	if (!p || !p->included)
		return;
	th = table_get(x, &x->threads, ev->tid, 1);
	if (th)
		th->tgid = ev->tgid;
	name = syscap_trace_name(x->t, ev->nr);
	if (!x->first)
		b = fmt_str(b, ",\n");
	x->first = 0;
	b = fmt_str(b, "{\"ph\":\"X\",\"cat\":\"syscall\",\"name\":\"");
	if (plain_name(name)) {
		b = fmt_str(b, name);
	} else {
		b = fmt_str(b, "syscall_");
		b = fmt_u64(b, ev->nr);
	}
	b = fmt_str(b, "\",\"pid\":");
	b = fmt_u64(b, ev->tgid);
	b = fmt_str(b, ",\"tid\":");
	b = fmt_u64(b, ev->tid);
	b = fmt_str(b, ",\"ts\":");
	b = fmt_us(b, ev->ts_ns);
	b = fmt_str(b, ",\"dur\":");
	b = fmt_us(b, ev->dur_ns);
	b = fmt_str(b, ",\"args\":{\"ret\":");
	b = fmt_s64(b, ev->ret);
	if (syscap_is_error(ev->ret)) {
		const char *e = strerrorname_np((int)-ev->ret);

		if (e && strlen(e) < 32) {
			b = fmt_str(b, ",\"errno\":\"");
			b = fmt_str(b, e);
			*b++ = '"';
		}
	}
	if (ev->flags & SYSCAP_F_NORETURN)
		b = fmt_str(b, ",\"noreturn\":true");
	if (syscap_trace_has_args(x->t)) {
		b = fmt_str(b, ",\"args\":[");
		for (int i = 0; i < 6; i++) {
			b = fmt_str(b, i ? ",\"" : "\"");
			b = fmt_hex(b, ev->args[i]);
			*b++ = '"';
		}
		*b++ = ']';
	}
	b = fmt_str(b, "}}");
	fwrite(buf, 1, (size_t)(b - buf), x->out);
	x->r->slices++;
	count_call(x, p, ev->ts_ns + ev->dur_ns);
}

static void names(struct exporter *x)
{
	for (uint32_t i = 0; i < x->procs.cap; i++) {
		struct proc_entry *p = (struct proc_entry *)x->procs.slots + i;

		if (!p->tgid || !p->included)
			continue;
		flush_bins(x, p, 0, 1);
		if (!p->named)
			continue;	/* Perfetto shows it by pid */
		sep(x);
		fprintf(x->out, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%u,\"tid\":%u,"
			"\"args\":{\"name\":", p->tgid, p->tgid);
		put_str(x->out, p->comm, SYSCAP_COMM_LEN);
		fputs("}}", x->out);
	}
	for (uint32_t i = 0; i < x->threads.cap; i++) {
		struct thread_entry *th = (struct thread_entry *)x->threads.slots + i;
		struct proc_entry *p;

		if (!th->tid)
			continue;
		x->r->threads++;
		p = proc_get(x, th->tgid, 0);
		if (!th->named || !p || !p->included)
			continue;
		sep(x);
		fprintf(x->out, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%u,\"tid\":%u,"
			"\"args\":{\"name\":", th->tgid, th->tid);
		put_str(x->out, th->comm, SYSCAP_COMM_LEN);
		fputs("}}", x->out);
	}
}

int syscap_export_perfetto(const char *trace_path, const char *out_path,
			   const struct syscap_export_opts *o, struct syscap_export_result *r,
			   char *err, size_t errlen)
{
	struct exporter x = { .o = o, .r = r, .first = 1 };
	const struct syscap_trace_header *h;
	struct syscap_trace_block blk;
	char *buf = NULL;
	int ret = -1, fd;

	memset(r, 0, sizeof(*r));
	x.threads.size = sizeof(struct thread_entry);
	x.procs.size = sizeof(struct proc_entry);
	if (o->counter_ns < 1000000) {
		snprintf(err, errlen, "the counter interval must be at least 1 ms");
		return -1;
	}
	x.lag_bins = (LAG_NS + o->counter_ns - 1) / o->counter_ns;
	if (x.lag_bins < MIN_LAG_BINS)
		x.lag_bins = MIN_LAG_BINS;
	for (x.nbins = 16; x.nbins < x.lag_bins + 2; x.nbins *= 2)
		;
	x.t = syscap_trace_open(trace_path, err, errlen);
	if (!x.t)
		return -1;
	fd = syscap_create_output(out_path, o->create_flags, err, errlen);
	if (fd < 0)
		goto out;
	x.out = fdopen(fd, "w");
	buf = malloc(OUT_BUF);
	if (!x.out || !buf) {
		snprintf(err, errlen, "cannot write %s: %s", out_path, strerror(errno));
		if (!x.out)
			close(fd);
		goto out;
	}
	setvbuf(x.out, buf, _IOFBF, OUT_BUF);
	h = syscap_trace_header(x.t);
	if (o->npids)
		resolve_pids(&x);
	if (x.oom) {
		snprintf(err, errlen, "out of memory exporting %s", trace_path);
		goto out;
	}
	fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"generator\":\"syscap export\","
	      "\"arch\":", x.out);
	put_str(x.out, h->arch, sizeof(h->arch));
	fputs(",\"kernel\":", x.out);
	put_str(x.out, h->release, sizeof(h->release));
	fputs(",\"backend\":", x.out);
	put_str(x.out, h->backend, sizeof(h->backend));
	fputs(",\"clock\":", x.out);
	put_str(x.out, h->clock, sizeof(h->clock));
	fprintf(x.out, ",\"start_mono_ns\":%llu,\"start_real_ns\":%llu},\n\"traceEvents\":[\n",
		(unsigned long long)h->start_mono_ns, (unsigned long long)h->start_real_ns);
	while (syscap_trace_next(x.t, &blk)) {
		if (blk.type == SYSCAP_BLOCK_EVENTS) {
			for (uint32_t i = 0; i < blk.count; i++) {
				const struct syscap_event *ev = &blk.events[i];

				if (ev->kind == SYSCAP_EV_SYSCALL)
					slice(&x, ev);
				else
					proc_event(&x, ev);
			}
			r->records += blk.count;
			syscap_trace_release_read(x.t);
		}
		if (x.oom) {
			snprintf(err, errlen, "out of memory exporting %s", trace_path);
			goto out;
		}
	}
	names(&x);
	fputs("\n]}\n", x.out);
	r->complete = syscap_trace_complete(x.t);
	if (fflush(x.out) || ferror(x.out)) {
		snprintf(err, errlen, "cannot write %s: %s", out_path, strerror(errno));
		goto out;
	}
	r->bytes = (uint64_t)ftell(x.out);
	ret = 0;
out:
	if (x.out && fclose(x.out) && !ret) {
		snprintf(err, errlen, "cannot write %s: %s", out_path, strerror(errno));
		ret = -1;
	}
	free(buf);
	for (uint32_t i = 0; i < x.procs.cap; i++)
		free(((struct proc_entry *)x.procs.slots)[i].bins);
	free(x.procs.slots);
	free(x.threads.slots);
	syscap_trace_close(x.t);
	return ret;
}
