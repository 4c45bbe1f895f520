// SPDX-License-Identifier: BSD-2-Clause
/*
 * syscap-agent: syscap's capture for a box that has no Python, one static
 * program built from capture_lib's C (record, stream, info). Its output is
 * syscap's trace format, read on another machine by syscap report, top and
 * capture_lib.stream.
 *
 *   syscap-agent record [-o FILE|-] [--force] [--duration S] [--args] [COMMON]
 *   syscap-agent stream [--interval S] [--durations | --sampled [--sample-period N |
 *                       --sample-budget PERCENT]]
 *                       [COMMON]
 *   syscap-agent info
 *   COMMON: [--backend auto|bpf|kmod] [--buffer-size SIZE]
 *
 * record writes every syscall until SIGINT, SIGTERM or SIGHUP (or --duration); the
 * trace then ends with its END block. stream writes a trace header and then,
 * once per interval, one STREAM block (syscap_trace.h) with that interval's
 * counts per process x syscall, read from the kernel's count mode; filter
 * commands (commands.h) arrive on stdin. Stdin's end (the other side hung
 * up) or one of those signals end a stream with an END block; if stdout goes away
 * the agent stops as well. Either way the probes are detached and the rings
 * and the module released before the agent exits.
 *
 * Errors are one line on stderr, "syscap-agent: what is wrong: how to fix
 * it", with exit status 2 for a bad command line and 1 for the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "commands.h"
#include "internal.h"
#include "names.h"

#define PROG			"syscap-agent"
#define RECORD_RING		(8ULL << 20)	/* bytes per CPU, as syscap record */
#define STREAM_RING		(1ULL << 20)	/* count mode: only process events */
#define STREAM_TIMED_RING	(8ULL << 20)	/* --durations: a record per syscall */
#define CHECK_MS		200		/* how often record looks at its session */

static const struct agent_names NAMES = {
	.blob = agent_names_blob,
	.len = sizeof(agent_names_blob),
	.nsyscalls = AGENT_NAMES_COUNT,
};

static const char USAGE[] =
	"usage: syscap-agent record [-o FILE|-] [--force] [--duration S] [--args] [COMMON]\n"
	"       syscap-agent stream [--interval S] [--durations | --sampled\n"
	"                           [--sample-period N | --sample-budget PERCENT]] [COMMON]\n"
	"       syscap-agent info\n"
	"COMMON: [--backend auto|bpf|kmod] [--buffer-size SIZE]\n"
	"\n"
	"record   every syscall of every process into a syscap trace: FILE (created\n"
	"         new, mode 0600; --force replaces a regular file) or stdout (-o -),\n"
	"         until SIGINT/SIGTERM/SIGHUP or --duration seconds; --args writes\n"
	"         each syscall's six argument registers too\n"
	"stream   once per --interval (default 1 s) one block of counts per process\n"
	"         x syscall on stdout, in syscap's trace format; --durations adds\n"
	"         latency histograms (a record per syscall: costlier); --sampled\n"
	"         keeps the counts exact and times a sample of the calls, as many\n"
	"         as --sample-budget percent of one CPU allows at the rate seen\n"
	"         (default 1), or one call in about N (--sample-period, a power\n"
	"         of two). Commands on\n"
	"         stdin, one a line, set the filter in the kernel:\n"
	"           filter syscalls NAME|NR[,...]   filter comm NAME[,...]\n"
	"           filter pid PID[,...]            filter failed on|off\n"
	"           filter clear                    ('all' as a list: no limit)\n"
	"         A bad command gets one line on stderr. The end of stdin ends it.\n"
	"info     what works on this box (kernel, BTF, eBPF, module, privileges)\n"
	"\n"
	"--backend     kmod (the syscap module, /dev/syscap), bpf (kernel 5.8+ with\n"
	"              BTF) or auto (the module when loaded, else eBPF); default auto\n"
	"--buffer-size ring bytes per CPU, a power of two (K, M, G suffixes)\n";

static void die_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr: PROG: message. */
static void die_line(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", PROG, msg);
}

struct options {
	const char *mode;
	const char *backend;
	const char *out;		/* record: path or "-" */
	uint64_t ring;			/* 0: the mode's default */
	uint64_t duration_ns;		/* record: 0 = until a signal */
	uint64_t interval_ns;		/* stream */
	int force;
	int args;			/* record: arguments into the trace */
	int durations;
	int sampled;
	uint32_t sample_period;		/* stream --sampled: fixed, or 0 */
	double sample_budget;		/* stream --sampled: % of a CPU, or 0 */
};

/* Seconds as a decimal ("1", "0.25") in [min, max] seconds; 0 or -1. */
static int parse_seconds(const char *s, double min, double max, uint64_t *ns)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max))
		return -1;
	*ns = (uint64_t)(v * 1e9);
	return 0;
}

/* A ring size: a power of two of at least a page, at most 1 GiB. */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end || v < (unsigned long long)sysconf(_SC_PAGESIZE) || v > (1ULL << 30) ||
	    (v & (v - 1)))
		return -1;
	*out = v;
	return 0;
}

/* 0, or 2 after one line saying what is wrong. */
static int parse_args(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof(*o));
	o->backend = "auto";
	o->interval_ns = 1000000000ULL;
	if (argc < 2) {
		die_line("no mode given: use syscap-agent record, stream or info (--help)");
		return 2;
	}
	o->mode = argv[1];
	if (strcmp(o->mode, "record") && strcmp(o->mode, "stream") && strcmp(o->mode, "info")) {
		die_line("unknown mode '%.40s': use record, stream or info (--help)", o->mode);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rec = !strcmp(o->mode, "record"), str = !strcmp(o->mode, "stream");
		int takes = !strcmp(a, "--backend") || !strcmp(a, "--buffer-size") ||
			    (rec && (!strcmp(a, "-o") || !strcmp(a, "--duration"))) ||
			    (str && (!strcmp(a, "--interval") || !strcmp(a, "--sample-period") ||
				     !strcmp(a, "--sample-budget")));

		if (takes && !v) {
			die_line("%s needs a value: see syscap-agent --help", a);
			return 2;
		}
		if (!strcmp(o->mode, "info") ||
		    !(takes || (rec && (!strcmp(a, "--force") || !strcmp(a, "--args"))) ||
		      (str && (!strcmp(a, "--durations") || !strcmp(a, "--sampled"))))) {
			die_line("unknown option '%.40s' for %s: see syscap-agent --help", a,
				 o->mode);
			return 2;
		}
		if (!strcmp(a, "--backend")) {
			if (strcmp(v, "auto") && strcmp(v, "bpf") && strcmp(v, "kmod")) {
				die_line("unknown backend '%.40s': use auto, bpf or kmod", v);
				return 2;
			}
			o->backend = v;
		} else if (!strcmp(a, "--buffer-size")) {
			if (parse_size(v, &o->ring)) {
				die_line("buffer size '%.40s' is not a power of two between a page "
					 "and 1G: give e.g. 8M", v);
				return 2;
			}
		} else if (!strcmp(a, "-o")) {
			o->out = v;
		} else if (!strcmp(a, "--duration")) {
			if (parse_seconds(v, 0.001, 31536000, &o->duration_ns)) {
				die_line("duration '%.40s' is not a number of seconds: give e.g. 10 "
					 "or 0.5", v);
				return 2;
			}
		} else if (!strcmp(a, "--interval")) {
			if (parse_seconds(v, 0.05, 3600, &o->interval_ns)) {
				die_line("interval '%.40s' is not between 0.05 and 3600 seconds: "
					 "give e.g. 1 or 0.5", v);
				return 2;
			}
		} else if (!strcmp(a, "--sample-period")) {
			char *end;
			unsigned long p;

			errno = 0;
			p = strtoul(v, &end, 10);
			if (errno || *end || !p || (p & (p - 1)) || p > 1UL << 30) {
				die_line("sample period '%.40s' is not a power of two up to 2^30: "
					 "give e.g. 64", v);
				return 2;
			}
			o->sample_period = (uint32_t)p;
		} else if (!strcmp(a, "--sample-budget")) {
			char *end;
			double b;

			errno = 0;
			b = strtod(v, &end);
			if (errno || end == v || *end || !(b > 0 && b <= 100)) {
				die_line("sample budget '%.40s' is not a percentage in (0, 100]: "
					 "give e.g. 1", v);
				return 2;
			}
			o->sample_budget = b;
		} else if (!strcmp(a, "--force")) {
			o->force = 1;
		} else if (!strcmp(a, "--args")) {
			o->args = 1;
		} else if (!strcmp(a, "--sampled")) {
			o->sampled = 1;
		} else {
			o->durations = 1;
		}
		i += takes;
	}
	if (o->durations && o->sampled) {
		die_line("--durations times every call, --sampled a sample: give one of them");
		return 2;
	}
	if ((o->sample_period || o->sample_budget) && !o->sampled) {
		die_line("%s goes with --sampled",
			 o->sample_period ? "--sample-period" : "--sample-budget");
		return 2;
	}
	if (o->sample_period && o->sample_budget) {
		die_line("--sample-period fixes the sample, --sample-budget plans it: give one "
			 "of them");
		return 2;
	}
	if (!strcmp(o->mode, "record") && !o->out) {
		die_line("record needs an output: give -o FILE, or -o - for stdout");
		return 2;
	}
	return 0;
}

/* ---- signals and the agent's own resources ---------------------------------- */

/*
 * SIGINT and SIGTERM are blocked before any thread starts (the consumer
 * thread inherits the mask) and read from a signalfd in the main loop.
 * SIGPIPE is ignored: a reader that goes away shows as EPIPE on write.
 */
static int signals_fd(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ULL +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ULL;
}

static uint64_t rss_bytes(void)
{
	unsigned long long size, resident;
	FILE *f = fopen("/proc/self/statm", "re");
	int ok;

	if (!f)
		return 0;
	ok = fscanf(f, "%llu %llu", &size, &resident) == 2;
	fclose(f);
	return ok ? resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static struct syscap_session *open_session(const struct options *o, uint64_t ring)
{
	char err[512] = "";
	struct syscap_session *s = syscap_session_open(o->backend, o->ring ? o->ring : ring, err,
						       sizeof(err));

	if (!s)
		die_line("%s", err[0] ? err : "cannot open a capture backend");
	return s;
}

/* ---- record ----------------------------------------------------------------- */

static int run_record(const struct options *o)
{
	int to_stdout = !strcmp(o->out, "-");
	struct syscap_filter none;
	struct syscap_trace_stats st;
	struct syscap_session *s;
	char err[512] = "";
	uint64_t start;
	int sfd, ret = 1, fd = -1;

	if (to_stdout && isatty(STDOUT_FILENO)) {
		die_line("stdout is a terminal: redirect it (-o - > FILE, or into ssh), or "
			 "give -o FILE");
		return 2;
	}
	sfd = signals_fd();
	if (sfd < 0) {
		die_line("cannot watch for signals: %s", strerror(errno));
		return 1;
	}
	s = open_session(o, RECORD_RING);
	if (!s)
		goto out_sfd;
	memset(&none, 0, sizeof(none));	/* every process but the agent */
	if (syscap_session_set_filter(s, &none)) {
		die_line("setting the filter in the kernel failed: check dmesg");
		goto out;
	}
	if (syscap_session_set_args(s, o->args)) {
		die_line("--args: the %s backend cannot capture arguments here",
			 syscap_session_backend(s));
		goto out;
	}
	if (to_stdout) {
		/* the session owns the duplicate; stdout itself stays open for
		 * the poll below */
		fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		if (fd < 0 || syscap_session_record_fd(s, fd, agent_names_blob,
						       sizeof(agent_names_blob),
						       AGENT_NAMES_COUNT, err, sizeof(err))) {
			int e = errno;	/* the failed write's (free and close keep errno) */

			if (fd >= 0)
				close(fd);
			if (e == EPIPE)
				die_line("stdout was closed (the reader went away): stopping");
			else
				die_line("cannot write the trace to stdout: %s",
					 err[0] ? err : strerror(e));
			goto out;
		}
	} else if (syscap_session_record(s, o->out, o->force ? SYSCAP_CREATE_FORCE : 0,
					 agent_names_blob, sizeof(agent_names_blob),
					 AGENT_NAMES_COUNT, err, sizeof(err))) {
		die_line("%s", err);
		goto out;
	}
	if (syscap_session_start(s, err, sizeof(err))) {
		die_line("%s", err);
		goto out;
	}
	fprintf(stderr, "%s: recording to %s (%s)\n", PROG, to_stdout ? "stdout" : o->out,
		syscap_session_backend(s));
	start = syscap_mono_ns();
	ret = 0;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sfd, .events = POLLIN },
			/* no events asked: POLLERR/POLLHUP when the reader is gone */
			{ .fd = to_stdout ? STDOUT_FILENO : -1, .events = 0 },
		};
		int wait_ms = CHECK_MS;

		if (o->duration_ns) {
			uint64_t now = syscap_mono_ns();

			if (now - start >= o->duration_ns)
				break;
			if ((o->duration_ns - (now - start)) / 1000000 < CHECK_MS)
				wait_ms = (int)((o->duration_ns - (now - start)) / 1000000) + 1;
		}
		if (poll(pfd, 2, wait_ms) < 0 && errno != EINTR) {
			die_line("poll failed: %s", strerror(errno));
			ret = 1;
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & (POLLERR | POLLHUP)) {
			die_line("stdout was closed (the reader went away): stopping");
			ret = 1;
			break;
		}
		if (syscap_session_error(s)) {
			die_line("%s: stopping", syscap_session_error(s));
			ret = 1;
			break;
		}
	}
	if (syscap_session_stop(s)) {
		if (!ret)
			die_line("finishing the trace failed: %s", syscap_session_error(s) ?
				 syscap_session_error(s) : "unknown error");
		ret = 1;
		goto out;
	}
	if (syscap_session_totals(s, &st, NULL, 0) >= 0)
		fprintf(stderr, "%s: %llu syscalls counted, %llu records dropped (ring full), "
			"%llu records written\n", PROG,
			(unsigned long long)st.events, (unsigned long long)st.drops,
			(unsigned long long)syscap_session_consumed(s));
out:
	syscap_session_close(s);
out_sfd:
	close(sfd);
	return ret;
}

/* ---- stream ----------------------------------------------------------------- */

struct stream {
	struct syscap_session *s;
	struct trace_writer *w;
	struct agent_filter flt;
	uint32_t filter_gen;
	uint64_t seq;
	int timed;			/* records mode: every call timed */
	int latency;			/* durations sent: timed or sampled */
	double budget;			/* sampled, planned: % of a CPU, else 0 */
	uint64_t plan_events;		/* calls counted when it was last planned */
	uint64_t plan_ns;		/* ... and when */
	uint8_t *buf;			/* one block's payload */
	uint8_t *zbuf;			/* the same deflated */
	unsigned long zcap;
	z_stream z;			/* one deflater for every block: set up
					 * once, reset per block */
	int z_ready;
	/* stdin's current line */
	char line[AGENT_MAX_LINE + 1];
	size_t llen;
	int overlong;			/* the current line passed AGENT_MAX_LINE */
};

/* What one part holds: head, then procs, rows, rings, hists. */
struct part {
	struct syscap_stream_head head;
	size_t len;
	uint32_t nprocs, nrows, nrings, nhist;
	struct syscap_stream_proc procs[SYSCAP_BLOCK_BYTES / sizeof(struct syscap_stream_proc)];
};

/*
 * Send the payload in st->buf (len bytes): deflated after the head when that
 * is smaller. Counts compress well (rows of small numbers, comms, rings
 * alike): over SSH from a board every byte is bandwidth.
 */
static int send_block(struct stream *st, uint32_t nrows, size_t len)
{
	struct syscap_stream_head *h = (struct syscap_stream_head *)st->zbuf;
	size_t body = len - sizeof(*h);
	size_t zlen = 0;

	if (body > 64 && st->z_ready && deflateReset(&st->z) == Z_OK) {
		st->z.next_in = st->buf + sizeof(*h);
		st->z.avail_in = (uInt)body;
		st->z.next_out = st->zbuf + sizeof(*h);
		st->z.avail_out = (uInt)(st->zcap - sizeof(*h));
		if (deflate(&st->z, Z_FINISH) == Z_STREAM_END)
			zlen = st->z.total_out;
	}
	if (zlen && (zlen + 7) / 8 * 8 < body) {
		size_t padded = (zlen + 7) / 8 * 8;

		memcpy(h, st->buf, sizeof(*h));
		h->flags |= SYSCAP_STREAM_F_DEFLATE;
		h->zlen = (uint32_t)zlen;
		memset(st->zbuf + sizeof(*h) + zlen, 0, padded - zlen);
		return trace_writer_block(st->w, SYSCAP_BLOCK_STREAM, nrows, st->zbuf,
					  (uint32_t)(sizeof(*h) + padded));
	}
	return trace_writer_block(st->w, SYSCAP_BLOCK_STREAM, nrows, st->buf, (uint32_t)len);
}

static int send_part(struct stream *st, struct part *p, const struct syscap_snapshot *snap,
		     uint32_t first_proc, uint32_t first_ring, uint32_t first_hist, int more)
{
	uint8_t *out = st->buf;
	struct syscap_stream_head h = p->head;
	uint32_t k, hist_seen = 0;

	h.flags |= more ? SYSCAP_STREAM_F_MORE : 0;
	h.nprocs = p->nprocs;
	h.nrows = p->nrows;
	h.nrings = p->nrings;
	h.nhist = p->nhist;
	memcpy(out, &h, sizeof(h));
	out += sizeof(h);
	memcpy(out, p->procs, p->nprocs * sizeof(p->procs[0]));
	out += p->nprocs * sizeof(p->procs[0]);
	for (k = 0; k < p->nprocs; k++) {
		const struct syscap_snap_proc *sp = &snap->procs[first_proc + k];

		for (uint32_t r = 0; r < sp->nrows; r++) {
			const struct syscap_snap_row *sr = &snap->rows[sp->first_row + r];
			struct syscap_stream_row row = {
				.nr = sr->nr, .calls = sr->count, .errors = sr->errors,
				.total_ns = st->latency ? sr->total_ns : 0,
			};

			memcpy(out, &row, sizeof(row));
			out += sizeof(row);
		}
	}
	for (k = 0; k < p->nrings; k++) {
		const struct syscap_snap_ring *r = &snap->rings[first_ring + k];
		struct syscap_stream_ring ring = {
			.cpu = r->cpu, .size = r->size, .used = r->used, .max_used = r->max_used,
			.events = r->events, .drops = r->drops,
		};

		memcpy(out, &ring, sizeof(ring));
		out += sizeof(ring);
	}
	/* the histogram entries are numbered in (nr, bucket) order */
	for (uint32_t i = 0; st->latency && p->nhist && i < SYSCAP_MAX_SYSCALLS * SYSCAP_HIST_BUCKETS;
	     i++) {
		uint32_t c = snap->sys_hist[i];

		if (!c)
			continue;
		if (hist_seen++ < first_hist)
			continue;
		struct syscap_stream_hist he = {
			.nr = (uint16_t)(i / SYSCAP_HIST_BUCKETS),
			.bucket = (uint16_t)(i % SYSCAP_HIST_BUCKETS), .count = c,
		};
		memcpy(out, &he, sizeof(he));
		out += sizeof(he);
		if (hist_seen - first_hist == p->nhist)
			break;
	}
	return send_block(st, p->nrows, (size_t)(out - st->buf));
}

static void part_reset(struct part *p)
{
	p->len = sizeof(p->head);
	p->nprocs = p->nrows = p->nrings = p->nhist = 0;
}

/*
 * Sampled mode with a budget: the densest sample within it at the rate of
 * the calls counted since the last plan (the session sets it in the kernel
 * when it differs from what is set).
 */
static int retune(struct stream *st)
{
	struct syscap_trace_stats tot;
	uint64_t now = syscap_mono_ns();
	int r;

	if (!st->budget)
		return 0;
	r = syscap_session_totals(st->s, &tot, NULL, 0);
	if (r < 0)
		return r;
	r = syscap_session_plan_samples(st->s, (double)(tot.events - st->plan_events) * 1e9 /
					(double)(now > st->plan_ns ? now - st->plan_ns : 1),
					st->budget, 0, 0, NULL);
	st->plan_events = tot.events;
	st->plan_ns = now;
	return r;
}

/* One interval: a snapshot, sent as one or more STREAM blocks. 0 or -errno. */
static int send_interval(struct stream *st, struct part *p)
{
	struct syscap_trace_stats tot;
	struct syscap_snapshot snap;
	uint32_t first_proc = 0, first_ring = 0, first_hist = 0, nhist = 0, i;
	int ret = syscap_session_snapshot(st->s, &snap);

	if (ret)
		return ret;
	ret = syscap_session_totals(st->s, &tot, NULL, 0);
	if (ret < 0)
		return ret;
	memset(&p->head, 0, sizeof(p->head));
	p->head.version = SYSCAP_STREAM_VERSION;
	p->head.flags = st->latency && snap.latency ? SYSCAP_STREAM_F_LATENCY : 0;
	if (st->latency && snap.latency == 2)
		p->head.flags |= SYSCAP_STREAM_F_SAMPLED;
	p->head.seq = st->seq++;
	p->head.start_ns = snap.start_ns;
	p->head.end_ns = snap.end_ns;
	p->head.events = tot.events;
	p->head.drops = tot.drops;
	p->head.missed = snap.missed;
	p->head.agent_cpu_ns = cpu_ns();
	p->head.agent_rss = rss_bytes();
	p->head.filter_gen = st->filter_gen;
	if (p->head.flags & SYSCAP_STREAM_F_LATENCY)
		for (i = 0; i < SYSCAP_MAX_SYSCALLS * SYSCAP_HIST_BUCKETS; i++)
			nhist += snap.sys_hist[i] != 0;
	part_reset(p);
	/* Fill parts in order: processes with their rows, rings, histogram
	 * entries; a part is sent when the next item would not fit. */
	for (i = 0; i < snap.nprocs; i++) {
		const struct syscap_snap_proc *sp = &snap.procs[i];
		size_t need = sizeof(struct syscap_stream_proc) +
			      (size_t)sp->nrows * sizeof(struct syscap_stream_row);
		struct syscap_stream_proc *pp;

		if (p->len + need > SYSCAP_BLOCK_BYTES) {
			ret = send_part(st, p, &snap, first_proc, first_ring, first_hist, 1);
			if (ret)
				return ret;
			first_proc = i;
			part_reset(p);
		}
		pp = &p->procs[p->nprocs++];
		memset(pp, 0, sizeof(*pp));
		pp->tgid = sp->tgid;
		pp->flags = sp->exited ? SYSCAP_STREAM_PROC_EXITED : 0;
		pp->nrows = sp->nrows;
		memcpy(pp->comm, sp->comm, SYSCAP_COMM_LEN);
		pp->comm[SYSCAP_COMM_LEN - 1] = 0;
		p->nrows += sp->nrows;
		p->len += need;
	}
	for (i = 0; i < snap.nrings; i++) {
		if (p->len + sizeof(struct syscap_stream_ring) > SYSCAP_BLOCK_BYTES) {
			ret = send_part(st, p, &snap, first_proc, first_ring, first_hist, 1);
			if (ret)
				return ret;
			first_proc = snap.nprocs;
			first_ring = i;
			part_reset(p);
		}
		p->nrings++;
		p->len += sizeof(struct syscap_stream_ring);
	}
	for (i = 0; i < nhist; i++) {
		if (p->len + sizeof(struct syscap_stream_hist) > SYSCAP_BLOCK_BYTES) {
			ret = send_part(st, p, &snap, first_proc, first_ring, first_hist, 1);
			if (ret)
				return ret;
			first_proc = snap.nprocs;
			first_ring = snap.nrings;
			first_hist = i;
			part_reset(p);
		}
		p->nhist++;
		p->len += sizeof(struct syscap_stream_hist);
	}
	return send_part(st, p, &snap, first_proc, first_ring, first_hist, 0);
}

/* Make the kernel's filter what st->flt says. 0 or -errno. */
static int apply_filter(struct stream *st, const struct agent_filter *old)
{
	int ret;

	for (uint32_t i = 0; i < old->npids; i++) {
		int keep = 0;

		for (uint32_t j = 0; j < st->flt.npids; j++)
			keep |= st->flt.pids[j] == old->pids[i];
		if (!keep && (ret = syscap_session_set_pid(st->s, old->pids[i], 0)))
			return ret;
	}
	for (uint32_t j = 0; j < st->flt.npids; j++)
		if ((ret = syscap_session_set_pid(st->s, st->flt.pids[j], SYSCAP_PID_INCLUDE)))
			return ret;
	return syscap_session_set_filter(st->s, &st->flt.f);
}

/*
 * One command line. A filter change closes the interval: the counts taken
 * under the old filter go out in one block, and every later block says
 * (filter_gen) that it was counted under the new one. 0, or -errno when the
 * stream cannot go on.
 */
static int on_line(struct stream *st, struct part *p, const char *line, size_t len)
{
	struct agent_filter old = st->flt;
	char err[512];
	int ret = agent_command(line, len, &NAMES, &st->flt, err, sizeof(err));

	if (ret == AGENT_CMD_ERROR) {
		die_line("%s", err);
		return 0;
	}
	if (ret == AGENT_CMD_NONE)
		return 0;
	ret = apply_filter(st, &old);
	if (ret) {
		die_line("setting the filter in the kernel failed: %s; the previous filter "
			 "stays", strerror(-ret));
		st->flt = old;
		apply_filter(st, &old);
		return 0;
	}
	ret = send_interval(st, p);
	st->filter_gen++;
	return ret;
}

/* Read what stdin has; 1 at its end, 0, or -errno. */
static int read_commands(struct stream *st, struct part *p)
{
	char buf[4096];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0)
		return 1;
	for (ssize_t i = 0; i < n; i++) {
		int ret;

		if (buf[i] != '\n') {
			if (st->llen < sizeof(st->line))
				st->line[st->llen++] = buf[i];
			else
				st->overlong = 1;
			continue;
		}
		/* an overlong line is reported once, as too long */
		ret = on_line(st, p, st->line, st->overlong ? sizeof(st->line) : st->llen);
		st->llen = 0;
		st->overlong = 0;
		if (ret)
			return ret;
	}
	return 0;
}

static int open_stream_writer(struct stream *st)
{
	struct syscap_trace_header h;
	char err[512] = "";
	int fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);

	if (fd < 0) {
		die_line("cannot use stdout: %s", strerror(errno));
		return -1;
	}
	syscap_trace_header_init(&h, syscap_session_backend(st->s), syscap_session_ncpu(st->s));
	h.nsyscalls = AGENT_NAMES_COUNT;
	st->w = trace_writer_open_fd(fd, &h, agent_names_blob, sizeof(agent_names_blob), err,
				     sizeof(err));
	if (!st->w) {
		int e = errno;	/* the failed write's (free and close keep errno) */

		close(fd);
		if (e == EPIPE)
			die_line("stdout was closed (the reader went away): stopping");
		else
			die_line("cannot write the stream to stdout: %s", err);
		return -1;
	}
	return 0;
}

static int write_end(struct stream *st)
{
	struct syscap_trace_stats tot;
	struct syscap_trace_sysrow *rows = calloc(SYSCAP_MAX_SYSCALLS, sizeof(*rows));
	int n = rows ? syscap_session_totals(st->s, &tot, rows, SYSCAP_MAX_SYSCALLS) : -ENOMEM;

	if (n >= 0)
		n = trace_writer_stats(st->w, SYSCAP_BLOCK_END, &tot, rows, (uint32_t)n);
	free(rows);
	return n;
}

/* Say why the stream stopped; 1 (the exit status). */
static int stream_failed(struct stream *st, int err)
{
	if (err == -EPIPE || err == -ECONNRESET)
		die_line("stdout was closed (the reader went away): stopping");
	else if (st->w && trace_writer_error(st->w))
		die_line("%s: stopping", trace_writer_error(st->w));
	else
		die_line("the stream failed: %s: stopping", strerror(err < 0 ? -err : err));
	return 1;
}

static int run_stream(const struct options *o)
{
	struct stream st;
	struct part *p = NULL;
	char err[512] = "";
	uint64_t next;
	int sfd, ret = 1, clean = 0;

	if (isatty(STDOUT_FILENO)) {
		die_line("stdout is a terminal: the stream is binary; pipe it to syscap (or into "
			 "ssh), or redirect it to a file");
		return 2;
	}
	memset(&st, 0, sizeof(st));
	st.timed = o->durations;
	st.latency = o->durations || o->sampled;
	sfd = signals_fd();
	if (sfd < 0) {
		die_line("cannot watch for signals: %s", strerror(errno));
		return 1;
	}
	st.buf = malloc(SYSCAP_BLOCK_BYTES);
	st.zcap = compressBound(SYSCAP_BLOCK_BYTES) + 8;
	st.zbuf = malloc(st.zcap);
	/* compress2()'s settings, its tables allocated once: compress2 took and
	 * zeroed some 256 KiB for every block */
	st.z_ready = deflateInit2(&st.z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15, 8,
				  Z_DEFAULT_STRATEGY) == Z_OK;
	p = malloc(sizeof(*p));
	if (!st.buf || !st.zbuf || !p) {
		die_line("out of memory");
		goto out_sfd;
	}
	st.s = open_session(o, st.timed ? STREAM_TIMED_RING : STREAM_RING);
	if (!st.s)
		goto out_sfd;
	if (!st.timed) {
		int r = syscap_session_set_mode(st.s, o->sampled ? SYSCAP_MODE_SAMPLED :
						SYSCAP_MODE_COUNTS);

		if (!r && o->sampled && o->sample_period) {
			r = syscap_session_set_sample_period(st.s, o->sample_period);
		} else if (!r && o->sampled) {
			st.budget = o->sample_budget ? o->sample_budget : 1.0;
			/* until an interval shows the rate: as if a million calls a second */
			r = syscap_session_plan_samples(st.s, 1e6, st.budget, 0, 0, NULL);
		}
		if (r) {
			die_line("the %s backend has no %s mode here (%s): use --durations",
				 syscap_session_backend(st.s), o->sampled ? "sampled" : "count",
				 strerror(-r));
			goto out;
		}
	}
	syscap_session_aggregate(st.s, 1);
	if (syscap_session_set_filter(st.s, &st.flt.f)) {
		die_line("setting the filter in the kernel failed: check dmesg");
		goto out;
	}
	if (syscap_session_start(st.s, err, sizeof(err))) {
		die_line("%s", err);
		goto out;
	}
	st.plan_ns = syscap_mono_ns();
	/* the header goes out once the probes are attached: a reader that
	 * has it knows that counting has begun */
	if (open_stream_writer(&st))
		goto out;
	next = syscap_mono_ns() + o->interval_ns;
	ret = 0;
	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = STDIN_FILENO, .events = POLLIN },
			{ .fd = STDOUT_FILENO, .events = 0 },
		};
		uint64_t now = syscap_mono_ns();
		struct timespec ts = { 0, 0 };
		int r;

		if (now >= next) {
			r = send_interval(&st, p);
			if (!r)
				r = retune(&st);
			if (r) {
				ret = stream_failed(&st, r);
				break;
			}
			/* a late tick (a stopped agent) does not make a burst */
			next += o->interval_ns;
			if (next <= now)
				next = now + o->interval_ns;
			continue;
		}
		ts.tv_sec = (time_t)((next - now) / 1000000000ULL);
		ts.tv_nsec = (long)((next - now) % 1000000000ULL);
		if (ppoll(pfd, 3, &ts, NULL) < 0 && errno != EINTR) {
			ret = stream_failed(&st, -errno);
			break;
		}
		if (pfd[0].revents) {
			clean = 1;
			break;
		}
		if (pfd[2].revents & (POLLERR | POLLHUP)) {
			ret = stream_failed(&st, -EPIPE);
			break;
		}
		if (pfd[1].revents) {
			r = read_commands(&st, p);
			if (r == 1) {
				clean = 1;	/* stdin ended: the other side is done */
				break;
			}
			if (r < 0) {
				ret = stream_failed(&st, r);
				break;
			}
		}
		if (syscap_session_error(st.s)) {
			die_line("%s: stopping", syscap_session_error(st.s));
			ret = 1;
			break;
		}
	}
	/* Detached, the counters hold still: the last interval then has every
	 * call counted since the previous one, and the END block the totals. */
	syscap_session_stop(st.s);
	if (clean) {
		int r = send_interval(&st, p);

		if (!r)
			r = write_end(&st);
		if (r)
			ret = stream_failed(&st, r);
	}
out:
	trace_writer_close(st.w);
	syscap_session_close(st.s);
out_sfd:
	if (st.z_ready)
		deflateEnd(&st.z);
	free(st.buf);
	free(st.zbuf);
	free(p);
	close(sfd);
	return ret;
}

/* ---- info ------------------------------------------------------------------- */

static void info_backend(const char *name)
{
	char err[512] = "";
	struct syscap_session *s = syscap_session_open(name, 1ULL << 16, err, sizeof(err));
	int counts;

	if (!s) {
		printf("%-10s not usable: %s\n", name, err[0] ? err : "unknown error");
		return;
	}
	counts = syscap_session_set_mode(s, SYSCAP_MODE_COUNTS) == 0;
	if (syscap_session_start(s, err, sizeof(err)))
		printf("%-10s not usable: %s\n", name, err);
	else
		printf("%-10s usable (count mode: %s)\n", name, counts ? "yes" : "no");
	syscap_session_close(s);
}

static int run_info(void)
{
	struct utsname u;
	unsigned long long capeff = 0;
	char line[256];
	FILE *f;

	if (uname(&u) == 0)
		printf("%-10s %s %s\n", "kernel", u.release, u.machine);
	printf("%-10s built for %s, trace format %d, stream format %d\n", "agent",
	       AGENT_NAMES_ARCH, SYSCAP_TRACE_VERSION, SYSCAP_STREAM_VERSION);
	f = fopen("/proc/self/status", "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &capeff) == 1)
			break;
	if (f)
		fclose(f);
	printf("%-10s uid %u, effective capabilities %#llx%s\n", "privileges", (unsigned)geteuid(),
	       capeff, capeff & (1ULL << 21) ? " (CAP_SYS_ADMIN)" :
	       " (no CAP_SYS_ADMIN: run as root)");
	printf("%-10s %s\n", "btf", access("/sys/kernel/btf/vmlinux", R_OK) == 0 ?
	       "present (/sys/kernel/btf/vmlinux)" :
	       "absent: the eBPF backend needs a kernel with CONFIG_DEBUG_INFO_BTF");
	printf("%-10s %s\n", "module", access("/dev/syscap", F_OK) == 0 ?
	       "loaded (/dev/syscap)" : "not loaded (no /dev/syscap): insmod syscap.ko");
	fflush(stdout);
	info_backend("bpf");
	if (access("/dev/syscap", F_OK) == 0)
		info_backend("kmod");
	return 0;
}

/*
 * fds 0-2 that are not open become /dev/null: started with one closed (by a
 * careless init or daemon), the agent would otherwise take its stdin or
 * stdout for the first BPF map or the module's device it opens.
 */
static void open_stdio(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
			_exit(1);	/* nothing to write a message to */
	}
}

int main(int argc, char **argv)
{
	struct options o;
	int ret;

	open_stdio();
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
			  !strcmp(argv[1], "help"))) {
		fputs(USAGE, stdout);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(USAGE, stdout);
			return 0;
		}
	}
	ret = parse_args(argc, argv, &o);
	if (ret)
		return ret;
	if (!strcmp(o.mode, "info"))
		return run_info();
	if (!strcmp(o.mode, "record"))
		return run_record(&o);
	return run_stream(&o);
}
