// SPDX-License-Identifier: BSD-2-Clause
/*
 * Giving capabilities up once the probes are attached. A long-running
 * consumer (the Prometheus exporter) needs CAP_BPF and CAP_PERFMON only to
 * load and attach; afterwards it reads rings and maps through file
 * descriptors it already holds. Kernels from 6.5 check no capability for
 * that; older ones with kernel.unprivileged_bpf_disabled set refuse every
 * bpf() call without CAP_BPF. Which is the case is not guessed from the
 * version: a forked child drops the capabilities and tries.
 *
 * Capabilities belong to a thread: drop them before any other thread
 * starts, and every thread started afterwards has none.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "syscap.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT			47
#define PR_CAP_AMBIENT_CLEAR_ALL	4
#endif

static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int n = 40;	/* CAP_CHECKPOINT_RESTORE, the last one in 5.9..6.x */

	if (f) {
		if (fscanf(f, "%d", &n) != 1 || n < 0 || n > 63)
			n = 40;
		fclose(f);
	}
	return n;
}

int syscap_drop_capabilities(uint64_t keep, char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	int last = last_cap();

	/* the bounding set needs CAP_SETPCAP, which a systemd unit usually
	 * does not give: where it cannot be dropped, the unit bounds it */
	for (int cap = 0; cap <= last; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL && errno != EPERM) {
			snprintf(err, errlen, "dropping capability %d from the bounding set failed: "
				 "%s", cap, strerror(errno));
			return -errno;
		}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
		snprintf(err, errlen, "clearing the ambient capabilities failed: %s",
			 strerror(errno));
		return -errno;
	}
	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &h, d)) {
		snprintf(err, errlen, "dropping capabilities failed: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int syscap_session_works_with(struct syscap_session *s, uint64_t keep)
{
	struct syscap_trace_stats st;
	char err[128];
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* maps only: draining here would move the parent's ring tails */
		if (syscap_drop_capabilities(keep, err, sizeof(err)) ||
		    syscap_session_totals(s, &st, NULL, 0) < 0)
			_exit(1);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
