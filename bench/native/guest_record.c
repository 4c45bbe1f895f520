// SPDX-License-Identifier: BSD-2-Clause
/*
 * guest_record --backend kmod|bpf -o TRACE [--names FILE] [--buffer-size BYTES]
 *              [--clock auto|monotonic|counter]
 *
 * `syscap record -a` in C, for the guest benchmark (kmod/lab bench): the
 * guest has no Python, so this drives capture_lib's session API the way
 * capture_lib/record.py does: open the backend, an empty filter (every
 * process; the session leaves the recorder itself out), record into TRACE
 * with the syscall name table read from FILE (NUL-terminated names by
 * number, as capture_lib.live.names_blob() writes them), start, and wait for
 * SIGINT or SIGTERM. Then stop (the trace gets its END block) and print the
 * kernel's exact counters on one line:
 *
 *   syscap: recording to TRACE (kmod)                      once attached
 *   syscap: events N drops N proc_events N proc_drops N missed N consumed N max_fill_pct X
 *
 * Exit status 0, or 1 with one line saying what failed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "syscap.h"

#define DEFAULT_RING	(8ULL << 20)	/* bytes per CPU, as syscap record */

static int usage(void)
{
	fprintf(stderr, "usage: guest_record --backend kmod|bpf -o TRACE [--names FILE] "
		"[--buffer-size BYTES] [--clock auto|monotonic|counter]\n");
	return 2;
}

/* The whole file in a malloc'ed buffer; its size in *len. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

static uint32_t count_names(const char *names, size_t len)
{
	uint32_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += names[i] == '\0';
	return n;
}

int main(int argc, char **argv)
{
	const char *backend = NULL, *out = NULL, *names_path = NULL;
	unsigned long long ring = DEFAULT_RING;
	struct syscap_trace_stats st;
	struct syscap_session *s;
	struct syscap_filter flt;
	char *names = NULL;
	size_t names_len = 0;
	char err[256] = "";
	sigset_t stop;
	int sig, ret = 1, clock = SYSCAP_CLOCK_AUTO;

	for (int i = 1; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;

		if (!next)
			return usage();
		if (!strcmp(argv[i], "--backend"))
			backend = next;
		else if (!strcmp(argv[i], "-o"))
			out = next;
		else if (!strcmp(argv[i], "--names"))
			names_path = next;
		else if (!strcmp(argv[i], "--buffer-size"))
			ring = strtoull(next, NULL, 0);
		else if (!strcmp(argv[i], "--clock") && !strcmp(next, "auto"))
			clock = SYSCAP_CLOCK_AUTO;
		else if (!strcmp(argv[i], "--clock") && !strcmp(next, "monotonic"))
			clock = SYSCAP_CLOCK_MONOTONIC;
		else if (!strcmp(argv[i], "--clock") && !strcmp(next, "counter"))
			clock = SYSCAP_CLOCK_COUNTER;
		else
			return usage();
		i++;
	}
	if (!backend || !out)
		return usage();
	if (names_path) {
		names = read_file(names_path, &names_len);
		if (!names) {
			fprintf(stderr, "syscap: cannot read the name table %s: %s\n", names_path,
				strerror(errno ? errno : EINVAL));
			return 1;
		}
	}

	/* Blocked before any thread exists: the consumer thread inherits the
	 * mask and the signals wait for sigwait() below. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);

	s = syscap_session_open(backend, ring, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "syscap: %s\n", err);
		free(names);
		return 1;
	}
	sig = syscap_session_set_clock(s, clock);
	if (sig) {
		fprintf(stderr, "syscap: the %s backend cannot use that clock: %s\n",
			syscap_session_backend(s), strerror(-sig));
		goto out;
	}
	memset(&flt, 0, sizeof(flt));	/* no filter flags: every process */
	if (syscap_session_set_filter(s, &flt) < 0) {
		fprintf(stderr, "syscap: setting the filter in the kernel failed\n");
		goto out;
	}
	if (syscap_session_record(s, out, 0, names ? names : "", (uint32_t)names_len,
				  count_names(names ? names : "", names_len), err, sizeof(err)) ||
	    syscap_session_start(s, err, sizeof(err))) {
		fprintf(stderr, "syscap: %s\n", err);
		goto out;
	}
	printf("syscap: recording to %s (%s, clock %s)\n", out, syscap_session_backend(s),
	       syscap_session_clock(s));
	fflush(stdout);

	for (;;) {
		struct timespec tick = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };

		sig = sigtimedwait(&stop, NULL, &tick);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		if (syscap_session_error(s)) {
			fprintf(stderr, "syscap: %s\n", syscap_session_error(s));
			break;
		}
	}
	if (syscap_session_stop(s)) {
		fprintf(stderr, "syscap: finishing %s failed: %s\n", out,
			syscap_session_error(s) ? syscap_session_error(s) : "?");
		goto out;
	}
	if (syscap_session_totals(s, &st, NULL, 0) < 0) {
		fprintf(stderr, "syscap: reading the kernel's counters failed\n");
		goto out;
	}
	printf("syscap: events %llu drops %llu proc_events %llu proc_drops %llu missed %llu "
	       "consumed %llu max_fill_pct %.1f\n",
	       (unsigned long long)st.events, (unsigned long long)st.drops,
	       (unsigned long long)st.proc_events, (unsigned long long)st.proc_drops,
	       (unsigned long long)st.missed,
	       (unsigned long long)syscap_session_consumed(s),
	       st.ring_size ? 100.0 * (double)st.max_used / (double)st.ring_size : 0.0);
	ret = 0;
out:
	syscap_session_close(s);
	free(names);
	return ret;
}
