/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * syscap-agent's filter commands: one line each on the agent's stdin, read
 * while it streams. They change the filter the kernel applies.
 *
 *   filter syscalls NAME|NR[,NAME|NR...]   only these syscalls ("all": any)
 *   filter comm NAME[,NAME...]             only tasks with one of these comms
 *                                          (up to 8; "all": any)
 *   filter pid PID[,PID...]                only these processes and their
 *                                          children (up to 64; "all": any)
 *   filter failed on|off                   only failed syscalls
 *   filter clear                           no filter
 *
 * Each command replaces its own part of the filter and keeps the others.
 * Empty lines and lines starting with '#' are ignored.
 */
#ifndef SYSCAP_AGENT_COMMANDS_H
#define SYSCAP_AGENT_COMMANDS_H

#include <stddef.h>
#include <stdint.h>
#include "syscap.h"

#define AGENT_MAX_PIDS		64
#define AGENT_MAX_LINE		4096

struct agent_filter {
	struct syscap_filter f;		/* flags, syscall bitmap, comms */
	uint32_t npids;
	uint32_t pids[AGENT_MAX_PIDS];	/* the include set (SYSCAP_FILTER_PIDS) */
};

/* Syscall names by number: nsyscalls NUL-terminated names in len bytes. */
struct agent_names {
	const char *blob;
	uint32_t len;
	uint32_t nsyscalls;
};

enum agent_command_result {
	AGENT_CMD_ERROR = -1,		/* bad command: err says why and how to fix it */
	AGENT_CMD_NONE = 0,		/* nothing to do (blank line, comment) */
	AGENT_CMD_FILTER = 1,		/* *flt changed: apply it */
};

/* Parse one line (len bytes, no newline; need not be NUL-terminated) and
 * apply it to *flt. On error *flt is unchanged. */
int agent_command(const char *line, size_t len, const struct agent_names *names,
		  struct agent_filter *flt, char *err, size_t errlen);

/* The number of syscall name, or -1. */
int agent_syscall_number(const struct agent_names *names, const char *name);

#endif /* SYSCAP_AGENT_COMMANDS_H */
