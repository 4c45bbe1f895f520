// SPDX-License-Identifier: BSD-2-Clause
/*
 * A live capture session: a backend, one consumer thread that drains every
 * CPU's ring in place, and what the records feed (the aggregator for
 * snapshots, the trace writer for record). The consumer sleeps between
 * passes for as long as the rate it sees allows (1 to 32 ms, see
 * next_sleep_ms; up to 256 ms idle in count and sampled modes); the probes
 * wake it early when a ring passes half full, stop() at once.
 *
 * Shared with the threads that call the API while the consumer runs: the
 * aggregator (lock), the per-CPU counters and what is built from them
 * (stats_lock, taken about once a second by the consumer), the consumed
 * count, the aggregate switch and each ring's max_used (atomics), and the
 * first error (written once, published by err_set). Draining takes the
 * lock once per pass, never per record.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "drain.h"
#include "internal.h"

#define DRAIN_BATCH	4096
#define FLUSH_NS	1000000000ULL	/* trace blocks hit the disk at least this often */
#define MAX_SLEEP_MS	32
/* Counting (count and sampled modes): a snapshot drains the rings itself,
 * so the consumer's passes only keep them from filling, which the probes'
 * wake-up at half full covers: idle, it backs off further. */
#define COUNT_SLEEP_MS	256
/* Sampling windows: one a cycle, a cycle 100 ms long, or longer where the
 * duty is so small that a window would be under MIN_WINDOW_NS (each window
 * attaches and detaches a program), up to MAX_CYCLE_NS. */
#define DUTY_FULL	SYSCAP_DUTY_FULL	/* sample_duty in parts per million */
#define CYCLE_NS	100000000ULL
#define MIN_WINDOW_NS	500000ULL
#define MAX_CYCLE_NS	1000000000ULL

struct syscap_session {
	struct syscap_backend *b;
	struct syscap_filter filter;
	struct syscap_agg *agg;
	int aggregate;
	int mode;			/* enum syscap_mode */
	uint32_t sample_period;		/* SAMPLED: one call in about this many */
	uint32_t sample_duty;		/* atomic: SAMPLED: parts per million of
					 * the time a sampling window is open */
	struct syscap_sample_plan plan;	/* the plan period and duty were set
					 * from (period 0: none, or set since) */
	struct syscap_windows windows;	/* guarded by stats_lock */
	int window_open;		/* the consumer's: the sampler is attached */
	uint64_t window_next;		/* the consumer's: when to open or close */
	uint64_t window_since;		/* the consumer's: when it last opened */
	uint64_t window_rand;		/* the consumer's: xorshift state */
	struct count_table *counts;	/* count mode's previous readings */
	struct trace_writer *tw;
	int args;			/* the trace gets each syscall's arguments */
	uint64_t ring_size;
	pthread_mutex_t lock;		/* guards agg against snapshot() */
	pthread_mutex_t stats_lock;	/* guards stats, snap_rings, prev_drops */
	pthread_t thread;
	int running;			/* atomic */
	int stopping;			/* atomic */
	int stop_fd;			/* eventfd: stop() wakes the consumer */
	uint64_t consumed;		/* atomic */
	uint64_t pass_ns;		/* when the current drain pass began */
	uint64_t anchor_ns;		/* the clock's last paired reading (drain_all) */
	const struct syscap_clock *clock;	/* the rings' counter clock, or NULL (ns) */
	struct syscap_delivery delivery;	/* guarded by lock */
	uint64_t last_flush;		/* the consumer's */
	uint64_t prev_drops;
	struct syscap_cpu_stats *stats;	/* per CPU, for totals */
	struct syscap_snap_ring *snap_rings;
	int err_set;			/* atomic: err holds the first error */
	char err[256];
};

/*
 * The first error wins. One thread writes at a time (the consumer while it
 * runs, the caller of stop after joining it); the release store publishes
 * the text to syscap_session_error on any thread.
 */
static void set_error(struct syscap_session *s, const char *msg)
{
	if (__atomic_load_n(&s->err_set, __ATOMIC_RELAXED))
		return;
	snprintf(s->err, sizeof(s->err), "%s", msg ? msg : "unknown error");
	__atomic_store_n(&s->err_set, 1, __ATOMIC_RELEASE);
}

static int has_error(struct syscap_session *s)
{
	return __atomic_load_n(&s->err_set, __ATOMIC_ACQUIRE);
}

struct syscap_session *syscap_session_open(const char *backend, uint64_t ring_size,
					   char *err, size_t errlen)
{
	struct syscap_session *s = calloc(1, sizeof(*s));
	int ret = -ENOENT;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->stop_fd = -1;
	if (!strcmp(backend, "kmod") ||
	    (!strcmp(backend, "auto") && access("/dev/syscap", F_OK) == 0)) {
		ret = syscap_kmod_open(&s->b, ring_size, err, errlen);
	} else if (!strcmp(backend, "bpf") || !strcmp(backend, "auto")) {
		ret = syscap_bpf_open(&s->b, ring_size, err, errlen);
	} else {
		snprintf(err, errlen, "unknown backend '%s': use auto, bpf or kmod", backend);
	}
	if (ret || !s->b) {
		free(s);
		return NULL;
	}
	s->ring_size = ring_size;
	s->agg = syscap_agg_new();
	s->stats = calloc((size_t)s->b->ncpu, sizeof(*s->stats));
	s->snap_rings = calloc((size_t)s->b->nrings, sizeof(*s->snap_rings));
	if (!s->agg || !s->stats || !s->snap_rings) {
		snprintf(err, errlen, "out of memory");
		syscap_session_close(s);
		return NULL;
	}
	syscap_agg_use_proc(s->agg, 1);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->stats_lock, NULL);
	s->filter.self_tgid = (uint32_t)getpid();
	s->filter.generation = 1;
	s->sample_duty = DUTY_FULL;
	s->b->ops->set_filter(s->b, &s->filter);
	return s;
}

const char *syscap_session_backend(struct syscap_session *s)
{
	return s->b->name;
}

int syscap_session_ncpu(struct syscap_session *s)
{
	return s->b->ncpu;
}

int syscap_session_set_filter(struct syscap_session *s, const struct syscap_filter *f)
{
	uint32_t gen = s->filter.generation + 1;

	s->filter = *f;
	s->filter.self_tgid = (uint32_t)getpid();
	s->filter.generation = gen ? gen : 1;
	return s->b->ops->set_filter(s->b, &s->filter);
}

int syscap_session_set_pid(struct syscap_session *s, uint32_t tgid, int value)
{
	int ret = s->b->ops->set_pid(s->b, tgid, value);

	/* Cached verdicts include the process set: make the probes recompute. */
	if (!ret)
		ret = syscap_session_set_filter(s, &s->filter);
	return ret;
}

static long drain_all(struct syscap_session *s);

int syscap_session_set_mode(struct syscap_session *s, int mode)
{
	int counting = mode != SYSCAP_MODE_RECORDS;
	int ret;

	if (mode != SYSCAP_MODE_RECORDS && mode != SYSCAP_MODE_COUNTS &&
	    mode != SYSCAP_MODE_SAMPLED)
		return -EINVAL;
	if (__atomic_load_n(&s->running, __ATOMIC_ACQUIRE))
		return -EBUSY;
	if (counting) {
		if (!s->b->ops->set_mode || s->tw)
			return -ENOTSUP;
		if (!s->counts && !(s->counts = count_table_new()))
			return -ENOMEM;
	}
	if (s->b->ops->set_mode) {
		ret = s->b->ops->set_mode(s->b, mode);
		if (ret)
			return ret;
	}
	if (mode == SYSCAP_MODE_SAMPLED && !s->sample_period) {
		ret = syscap_session_set_sample_period(s, SYSCAP_SAMPLE_PERIOD);
		if (ret)
			return ret;
	}
	if (s->mode != SYSCAP_MODE_RECORDS && !counting) {
		/* what was counted since the last snapshot belongs to the next */
		drain_all(s);
		pthread_mutex_lock(&s->lock);
		ret = count_table_poll(s->counts, s->b, s->agg);
		pthread_mutex_unlock(&s->lock);
		if (ret)
			return ret;
	}
	s->mode = mode;
	syscap_agg_set_timed(s->agg, mode == SYSCAP_MODE_RECORDS ? 1 :
			     mode == SYSCAP_MODE_SAMPLED ? 2 : 0);
	return 0;
}

int syscap_session_set_sample_period(struct syscap_session *s, uint32_t period)
{
	int ret;

	if (!s->b->ops->set_sample_period)
		return -ENOTSUP;
	ret = s->b->ops->set_sample_period(s->b, period);
	if (!ret)
		s->sample_period = period;
	s->plan.period = 0;
	return ret;
}

void syscap_sample_plan(double rate_per_s, double budget_pct, double sample_ns, double enter_ns,
			int windows, struct syscap_sample_plan *out)
{
	double budget_ns = budget_pct / 100 * 1e9;
	double rate = rate_per_s > 1 ? rate_per_s : 1;
	double duty = 1, fixed = windows ? enter_ns : 0;
	uint32_t period = 1;

	if (windows) {
		duty = budget_ns / (rate * (enter_ns + sample_ns));
		if (duty > 1)
			duty = 1;
		if (duty * DUTY_FULL >= SYSCAP_MIN_DUTY_PPM) {
			out->period = 1;
			out->duty_ppm = (uint32_t)(duty * DUTY_FULL);
			return;
		}
		duty = (double)SYSCAP_MIN_DUTY_PPM / DUTY_FULL;
	}
	while (period < SYSCAP_MAX_SAMPLE_PERIOD &&
	       rate * duty * (fixed + sample_ns / period) > budget_ns)
		period *= 2;
	out->period = period;
	out->duty_ppm = (uint32_t)(duty * DUTY_FULL + 0.5);
}

int syscap_session_set_sample_duty(struct syscap_session *s, uint32_t ppm)
{
	if (!s->b->ops->sample_window)
		return -ENOTSUP;
	if (!ppm || ppm > DUTY_FULL)
		return -EINVAL;
	__atomic_store_n(&s->sample_duty, ppm, __ATOMIC_RELAXED);
	s->plan.period = 0;
	return 0;
}

int syscap_session_plan_samples(struct syscap_session *s, double rate_per_s, double budget_pct,
				double sample_ns, double enter_ns, struct syscap_sample_plan *out)
{
	int windows = s->b->ops->sample_window != NULL;
	struct syscap_sample_plan plan;
	int ret;

	if (!(budget_pct > 0 && budget_pct <= 100))
		return -EINVAL;
	syscap_sample_plan(rate_per_s, budget_pct, sample_ns > 0 ? sample_ns : SYSCAP_SAMPLE_COST_NS,
			   enter_ns > 0 ? enter_ns : SYSCAP_ENTER_COST_NS, windows, &plan);
	if (plan.period != s->plan.period || plan.duty_ppm != s->plan.duty_ppm) {
		ret = syscap_session_set_sample_period(s, plan.period);
		if (!ret && windows)
			ret = syscap_session_set_sample_duty(s, plan.duty_ppm);
		if (ret)
			return ret;
		s->plan = plan;
	}
	if (out)
		*out = plan;
	return 0;
}

void syscap_session_sample_windows(struct syscap_session *s, struct syscap_windows *out)
{
	pthread_mutex_lock(&s->stats_lock);
	*out = s->windows;
	pthread_mutex_unlock(&s->stats_lock);
}

void syscap_session_aggregate(struct syscap_session *s, int on)
{
	__atomic_store_n(&s->aggregate, on, __ATOMIC_RELAXED);
}

static int record_check(struct syscap_session *s, char *err, size_t errlen)
{
	if (s->tw) {
		snprintf(err, errlen, "the session already records");
		return -EBUSY;
	}
	if (s->mode != SYSCAP_MODE_RECORDS) {
		snprintf(err, errlen, "a session in count mode has no records to write");
		return -EINVAL;
	}
	return 0;
}

/* Start recording into path (created with flags), or into fd when path is NULL. */
static int record_into(struct syscap_session *s, const char *path, uint32_t flags, int fd,
		       const char *names, uint32_t names_len, uint32_t nsyscalls, char *err,
		       size_t errlen)
{
	struct syscap_trace_header h;
	int ret = record_check(s, err, errlen);

	if (ret)
		return ret;
	syscap_trace_header_init(&h, s->b->name, s->b->ncpu);
	memcpy(h.clock, s->b->clock.source, sizeof(h.clock));
	h.nsyscalls = nsyscalls;
	if (s->args)
		h.record_size = SYSCAP_REC_ARGS_SIZE;
	s->tw = path ? trace_writer_open(path, flags, &h, names, names_len, err, errlen) :
		       trace_writer_open_fd(fd, &h, names, names_len, err, errlen);
	if (!s->tw)
		return -EIO;
	ret = trace_writer_clock(s->tw, &s->b->clock);
	if (ret) {
		const char *why = trace_writer_error(s->tw);

		snprintf(err, errlen, "%s", why ? why : "writing the trace's clock block failed");
		if (path)
			trace_writer_close(s->tw);
		else
			trace_writer_free(s->tw);
		s->tw = NULL;
	}
	return ret;
}

int syscap_session_set_clock(struct syscap_session *s, int clock)
{
	int ret;

	if (__atomic_load_n(&s->running, __ATOMIC_ACQUIRE) || s->tw)
		return -EBUSY;
	if (clock < SYSCAP_CLOCK_AUTO || clock > SYSCAP_CLOCK_COUNTER)
		return -EINVAL;
	if (!s->b->ops->set_clock)
		return clock == SYSCAP_CLOCK_COUNTER ? -ENOTSUP : 0;
	ret = s->b->ops->set_clock(s->b, clock);
	return ret == -EOPNOTSUPP ? -ENOTSUP : ret;
}

const char *syscap_session_clock(struct syscap_session *s)
{
	return s->b->clock.source;
}

int syscap_session_set_args(struct syscap_session *s, int on)
{
	int ret;

	if (__atomic_load_n(&s->running, __ATOMIC_ACQUIRE) || s->tw)
		return -EBUSY;
	if (!s->b->ops->set_args)
		return on ? -ENOTSUP : 0;
	ret = s->b->ops->set_args(s->b, !!on);
	if (!ret)
		s->args = !!on;
	return ret;
}

int syscap_session_record(struct syscap_session *s, const char *path, uint32_t flags,
			  const char *names, uint32_t names_len, uint32_t nsyscalls, char *err,
			  size_t errlen)
{
	return record_into(s, path, flags, -1, names, names_len, nsyscalls, err, errlen);
}

int syscap_session_record_fd(struct syscap_session *s, int fd, const char *names,
			     uint32_t names_len, uint32_t nsyscalls, char *err, size_t errlen)
{
	return record_into(s, NULL, 0, fd, names, names_len, nsyscalls, err, errlen);
}

/*
 * inline: into drain_all's loop (drain.h), the recorder's path for every
 * record. rec is read in place, in the ring's clock: its times come from
 * syscap_rec_times, not a converted copy.
 */
static inline void on_event(void *ctx, const struct syscap_rec *rec, const uint64_t *args)
{
	struct syscap_session *s = ctx;
	uint64_t ts, dur;

	syscap_rec_times(s->clock, rec, &ts, &dur);
	if (rec->kind == SYSCAP_EV_SYSCALL) {
		uint64_t end = ts + dur;
		uint64_t wait = s->pass_ns > end ? s->pass_ns - end : 0;

		s->delivery.records++;
		s->delivery.hist[syscap_ns_bucket(wait) & (SYSCAP_HIST_BUCKETS - 1)]++;
		if (wait > s->delivery.max_ns)
			s->delivery.max_ns = wait;
	}
	/* relaxed loads: plain moves on the per-record path */
	if (__atomic_load_n(&s->aggregate, __ATOMIC_RELAXED)) {
		struct syscap_event ev;

		syscap_rec_decode(rec, NULL, &ev);
		ev.ts_ns = ts;
		if (ev.kind == SYSCAP_EV_SYSCALL)
			ev.dur_ns = dur;
		syscap_agg_add(s->agg, &ev, 1);
	}
	if (s->counts && rec->kind == SYSCAP_EV_EXIT && (rec->flags & SYSCAP_F_GROUP_DEAD))
		count_table_exited(s->counts, rec->tgid);
	if (s->tw && !__atomic_load_n(&s->err_set, __ATOMIC_RELAXED) &&
	    trace_writer_add_rec(s->tw, rec, ts, dur, args))
		set_error(s, trace_writer_error(s->tw));
}

static long drain_all(struct syscap_session *s)
{
	long total = 0;

	pthread_mutex_lock(&s->lock);
	s->pass_ns = syscap_mono_ns();	/* one clock reading per pass, not per record */
	/* a counter's conversion follows CLOCK_MONOTONIC (syscap_clock_anchor).
	 * Read before the drain: every tick converted so far is older than the
	 * reading, so no time already handed on would have come out otherwise */
	if (s->b->ops->clock_anchor && s->pass_ns - s->anchor_ns >= SYSCAP_CLOCK_SLEW_NS) {
		s->b->ops->clock_anchor(s->b);
		s->anchor_ns = s->pass_ns;
	}
	s->clock = s->b->nrings ? s->b->rings[0].clock : NULL;	/* every ring's */
	for (int i = 0; i < s->b->nrings; i++) {
		long n;

		do {
			n = syscap_ring_drain_inline(&s->b->rings[i], on_event, s, DRAIN_BATCH, 1);
			total += n;
		} while (n == DRAIN_BATCH);
	}
	__atomic_fetch_add(&s->consumed, (uint64_t)total, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->lock);
	return total;
}

static int write_stats(struct syscap_session *s, uint32_t type)
{
	struct syscap_trace_sysrow rows[SYSCAP_MAX_SYSCALLS];
	struct syscap_trace_stats st;
	int n = syscap_session_totals(s, &st, rows, SYSCAP_MAX_SYSCALLS);

	if (n < 0)
		return n;
	return trace_writer_stats(s->tw, type, &st, rows, (uint32_t)n);
}

/*
 * How long to sleep after a pass that drained n records in elapsed_ms: long
 * enough to batch, short enough that, at the rate just seen and with every
 * record on one CPU, a ring fills to a quarter at most. The probes wake the
 * consumer early at half full. Few wake-ups matter: each costs the traced
 * machine a context switch or two, and a 1 ms poll under steady light load
 * (nginx) was a thousand a second.
 */
static int next_sleep_ms(const struct syscap_session *s, long n, uint64_t elapsed_ms, int prev)
{
	int idle_ms = s->mode == SYSCAP_MODE_RECORDS ? MAX_SLEEP_MS : COUNT_SLEEP_MS;
	uint64_t bytes, ms;

	if (!n)
		return prev * 2 < idle_ms ? prev * 2 : idle_ms;
	bytes = (uint64_t)n * s->b->record_bytes;
	ms = s->ring_size / 4 * (elapsed_ms ? elapsed_ms : 1) / bytes;
	return ms < 1 ? 1 : ms > MAX_SLEEP_MS ? MAX_SLEEP_MS : (int)ms;
}

static void window_toggle(struct syscap_session *s, int open, uint64_t now)
{
	int ret = s->b->ops->sample_window(s->b, open);

	if (ret) {
		char msg[128];

		snprintf(msg, sizeof(msg), "%s the sampling window failed: %s",
			 open ? "opening" : "closing", strerror(-ret));
		set_error(s, msg);
		return;
	}
	pthread_mutex_lock(&s->stats_lock);
	if (open)
		s->windows.opened++;
	else
		s->windows.open_ns += now - s->window_since;
	pthread_mutex_unlock(&s->stats_lock);
	s->window_open = open;
	if (open)
		s->window_since = now;
}

/*
 * Sampled mode's duty cycle, run by the consumer: the sampler is attached
 * for a window of duty x cycle, then detached for the rest of the cycle,
 * that rest drawn between half and one and a half times its length (so
 * windows do not keep step with a periodic load; the mean duty holds).
 * Returns ns until the next toggle, or UINT64_MAX when there is none.
 */
static uint64_t window_step(struct syscap_session *s, uint64_t now)
{
	uint32_t duty = __atomic_load_n(&s->sample_duty, __ATOMIC_RELAXED);
	uint64_t cycle, window, off;

	if (s->mode != SYSCAP_MODE_SAMPLED || !s->b->ops->sample_window || has_error(s))
		return UINT64_MAX;
	if (duty >= DUTY_FULL) {
		if (!s->window_open)
			window_toggle(s, 1, now);
		return UINT64_MAX;
	}
	cycle = MIN_WINDOW_NS * DUTY_FULL / duty;
	cycle = cycle < CYCLE_NS ? CYCLE_NS : cycle > MAX_CYCLE_NS ? MAX_CYCLE_NS : cycle;
	window = cycle / DUTY_FULL * duty;
	if (now < s->window_next)
		return s->window_next - now;
	if (s->window_open) {
		window_toggle(s, 0, now);
		s->window_rand ^= s->window_rand << 13;
		s->window_rand ^= s->window_rand >> 7;
		s->window_rand ^= s->window_rand << 17;
		off = cycle - window;
		s->window_next = now + off / 2 + s->window_rand % (off + 1);
	} else {
		window_toggle(s, 1, now);
		s->window_next = now + window;
	}
	return s->window_next - now;
}

static void *consumer(void *arg)
{
	struct syscap_session *s = arg;
	uint64_t last = syscap_mono_ns();
	int sleep_ms = 1;

	/* start() attached the sampler: the first window is open */
	s->window_open = s->mode == SYSCAP_MODE_SAMPLED && s->b->ops->sample_window;
	s->window_since = last;
	s->window_next = last + MIN_WINDOW_NS;
	s->window_rand = last | 1;
	if (s->window_open) {
		pthread_mutex_lock(&s->stats_lock);
		s->windows.opened++;
		pthread_mutex_unlock(&s->stats_lock);
	}
	while (!__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd[2] = {
			{ .fd = s->b->wait_fd, .events = POLLIN },
			{ .fd = s->stop_fd, .events = POLLIN },
		};
		long n = drain_all(s);
		uint64_t now = syscap_mono_ns();
		uint64_t toggle = window_step(s, now), wait_ns;
		struct timespec ts;

		if (s->tw && !has_error(s) && now - s->last_flush >= FLUSH_NS) {
			if (trace_writer_flush(s->tw) || write_stats(s, SYSCAP_BLOCK_STATS))
				set_error(s, trace_writer_error(s->tw));
			s->last_flush = syscap_mono_ns();
		}
		sleep_ms = next_sleep_ms(s, n, (now - last) / 1000000, sleep_ms);
		last = now;
		wait_ns = (uint64_t)sleep_ms * 1000000;
		if (toggle < wait_ns)
			wait_ns = toggle;
		ts.tv_sec = (time_t)(wait_ns / 1000000000);
		ts.tv_nsec = (long)(wait_ns % 1000000000);
		/* readable while a ring is past its watermark (-1: just sleep) */
		if (ppoll(pfd, 2, &ts, NULL) > 0 && pfd[0].revents && s->b->ops->woken)
			s->b->ops->woken(s->b);
	}
	if (s->window_open) {
		/* stop() detaches the sampler with the rest: the window ends now */
		pthread_mutex_lock(&s->stats_lock);
		s->windows.open_ns += syscap_mono_ns() - s->window_since;
		pthread_mutex_unlock(&s->stats_lock);
		s->window_open = 0;
	}
	return NULL;
}

int syscap_session_attach(struct syscap_session *s, char *err, size_t errlen)
{
	int ret = s->b->ops->start(s->b);

	if (ret) {
		snprintf(err, errlen, "attaching the %s probes failed: %s", s->b->name,
			 strerror(ret < 0 ? -ret : ret));
		return ret < 0 ? ret : -ret;
	}
	return 0;
}

int syscap_session_detach(struct syscap_session *s)
{
	return s->b->ops->stop(s->b);
}

int syscap_session_start(struct syscap_session *s, char *err, size_t errlen)
{
	int ret;

	if (__atomic_load_n(&s->running, __ATOMIC_ACQUIRE))
		return 0;
	ret = syscap_session_attach(s, err, errlen);
	if (ret)
		return ret;
	s->last_flush = syscap_mono_ns();
	s->stopping = 0;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);	/* -1: stop waits a pass */
	ret = pthread_create(&s->thread, NULL, consumer, s);
	if (ret) {
		if (s->stop_fd >= 0)
			close(s->stop_fd);
		s->stop_fd = -1;
		s->b->ops->stop(s->b);
		snprintf(err, errlen, "cannot start the consumer thread: %s", strerror(ret));
		return -ret;
	}
	__atomic_store_n(&s->running, 1, __ATOMIC_RELEASE);
	return 0;
}

int syscap_session_stop(struct syscap_session *s)
{
	int ret = 0;

	if (__atomic_load_n(&s->running, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
		if (s->stop_fd >= 0)	/* failing, the consumer ends at its next pass */
			(void)eventfd_write(s->stop_fd, 1);
		pthread_join(s->thread, NULL);
		if (s->stop_fd >= 0)
			close(s->stop_fd);
		s->stop_fd = -1;
		__atomic_store_n(&s->running, 0, __ATOMIC_RELEASE);
	}
	s->b->ops->stop(s->b);
	/* Probes are detached: what is in the rings now is all there is. */
	while (drain_all(s))
		;
	if (s->tw) {
		if (!has_error(s) && (trace_writer_flush(s->tw) || write_stats(s, SYSCAP_BLOCK_END)))
			set_error(s, trace_writer_error(s->tw));
		trace_writer_close(s->tw);
		s->tw = NULL;
		ret = has_error(s) ? -EIO : 0;
	}
	return ret;
}

int syscap_session_totals(struct syscap_session *s, struct syscap_trace_stats *st,
			  struct syscap_trace_sysrow *rows, int max)
{
	int n;

	pthread_mutex_lock(&s->stats_lock);
	n = s->b->ops->read_stats(s->b, s->stats, s->b->ncpu);
	if (!n)
		n = syscap_sum_stats(s->stats, s->b->ncpu, st, rows, max);
	pthread_mutex_unlock(&s->stats_lock);
	if (n < 0)
		return n;
	st->missed = s->b->ops->missed(s->b);
	st->ring_size = s->ring_size;
	for (int i = 0; i < s->b->nrings; i++) {
		uint64_t used = __atomic_load_n(&s->b->rings[i].max_used, __ATOMIC_RELAXED);

		if (used > st->max_used)
			st->max_used = used;
	}
	return n;
}

int syscap_session_snapshot(struct syscap_session *s, struct syscap_snapshot *out)
{
	uint64_t drops = 0;
	int ret;

	/* count mode: the exit records in the rings say which processes the
	 * poll can forget, so a process reaped before the snapshot goes in it */
	if (!__atomic_load_n(&s->running, __ATOMIC_ACQUIRE) || s->mode != SYSCAP_MODE_RECORDS)
		drain_all(s);
	pthread_mutex_lock(&s->lock);
	ret = s->mode != SYSCAP_MODE_RECORDS ? count_table_poll(s->counts, s->b, s->agg) : 0;
	if (!ret)
		ret = syscap_agg_snapshot(s->agg, out);
	pthread_mutex_unlock(&s->lock);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->stats_lock);
	ret = s->b->ops->read_stats(s->b, s->stats, s->b->ncpu);
	if (ret) {
		pthread_mutex_unlock(&s->stats_lock);
		return ret;
	}
	for (int i = 0; i < s->b->nrings; i++) {
		struct syscap_ring *r = &s->b->rings[i];
		struct syscap_snap_ring *sr = &s->snap_rings[i];

		sr->cpu = r->cpu;
		sr->size = r->size;
		sr->used = syscap_ring_used(r);
		sr->max_used = __atomic_load_n(&r->max_used, __ATOMIC_RELAXED);
		sr->events = r->cpu < s->b->ncpu ? s->stats[r->cpu].events : 0;
		sr->drops = r->cpu < s->b->ncpu ? s->stats[r->cpu].drops : 0;
		drops += sr->drops;
	}
	out->drops = drops - s->prev_drops;
	s->prev_drops = drops;
	pthread_mutex_unlock(&s->stats_lock);
	/* snap_rings stays the caller's until its next snapshot, as agg's arrays */
	out->rings = s->snap_rings;
	out->nrings = (uint32_t)s->b->nrings;
	out->missed = s->b->ops->missed(s->b);
	return 0;
}

uint64_t syscap_session_consumed(struct syscap_session *s)
{
	return __atomic_load_n(&s->consumed, __ATOMIC_RELAXED);
}

void syscap_session_delivery(struct syscap_session *s, struct syscap_delivery *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->delivery;
	pthread_mutex_unlock(&s->lock);
}

struct tgids_ctx {
	uint32_t *out;
	long max, n;
	uint32_t last;
};

/* The backends hand the counters sorted by tgid: one entry per new tgid. */
static void add_tgid(void *ctx, const struct syscap_count_key *k, const struct syscap_count_val *v)
{
	struct tgids_ctx *c = ctx;

	(void)v;
	if (c->n && c->last == k->tgid)
		return;
	if (c->n < c->max)
		c->out[c->n] = k->tgid;
	c->last = k->tgid;
	c->n++;
}

long syscap_session_counted_tgids(struct syscap_session *s, uint32_t *out, long max)
{
	struct tgids_ctx c = { out, max, 0, 0 };
	int ret;

	if (!s->b->ops->read_counts)
		return -ENOTSUP;
	pthread_mutex_lock(&s->lock);
	ret = s->b->ops->read_counts(s->b, add_tgid, &c);
	pthread_mutex_unlock(&s->lock);
	return ret ? ret : c.n;
}

const char *syscap_session_error(struct syscap_session *s)
{
	return has_error(s) ? s->err : NULL;
}

struct copy_ctx {
	struct syscap_event *out;
	long n;
};

static void copy_event(void *ctx, const struct syscap_rec *rec, const uint64_t *args)
{
	struct copy_ctx *c = ctx;

	syscap_rec_decode(rec, args, &c->out[c->n++]);
}

long syscap_session_read(struct syscap_session *s, struct syscap_event *out, long max)
{
	struct copy_ctx c = { .out = out, .n = 0 };

	if (__atomic_load_n(&s->running, __ATOMIC_ACQUIRE))
		return -EBUSY;
	for (int i = 0; i < s->b->nrings && c.n < max; i++)
		syscap_ring_drain(&s->b->rings[i], copy_event, &c, max - c.n);
	__atomic_fetch_add(&s->consumed, (uint64_t)c.n, __ATOMIC_RELAXED);
	return c.n;
}

void syscap_session_close(struct syscap_session *s)
{
	if (!s)
		return;
	if (__atomic_load_n(&s->running, __ATOMIC_ACQUIRE) || s->tw)
		syscap_session_stop(s);
	if (s->b)
		s->b->ops->close(s->b);
	count_table_free(s->counts);
	syscap_agg_free(s->agg);
	free(s->stats);
	free(s->snap_rings);
	free(s);
}
