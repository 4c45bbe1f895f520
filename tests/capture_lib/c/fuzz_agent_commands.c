// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer target for syscap-agent's filter commands (capture_lib/agent/
 * commands.c): the lines whoever holds the agent's stdin sends. The input is
 * split at newlines, as the agent reads it, and each line goes through
 * agent_command() against one filter state that carries over, with the
 * agent's real syscall table. After every line the filter must still be one
 * the kernel can take, and an error must be one printable line.
 *
 *   make -C capture_lib fuzz-commands-run FUZZ_SECONDS=30
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "names.h"

static const struct agent_names NAMES = {
	.blob = agent_names_blob,
	.len = sizeof(agent_names_blob),
	.nsyscalls = AGENT_NAMES_COUNT,
};

static void check(const struct agent_filter *f)
{
	const uint32_t known = SYSCAP_FILTER_SYSCALLS | SYSCAP_FILTER_PIDS | SYSCAP_FILTER_COMM |
			       SYSCAP_FILTER_FAILED;
	int any = 0;

	if (f->f.flags & ~known || f->f.ncomm > SYSCAP_MAX_COMMS || f->npids > AGENT_MAX_PIDS)
		abort();
	if (!!(f->f.flags & SYSCAP_FILTER_PIDS) != (f->npids > 0))
		abort();
	if (!!(f->f.flags & SYSCAP_FILTER_COMM) != (f->f.ncomm > 0))
		abort();
	for (uint32_t i = 0; i < f->f.ncomm; i++)
		if (!f->f.comm[i][0] || memchr(f->f.comm[i], 0, SYSCAP_COMM_LEN) == NULL)
			abort();
	for (uint32_t i = 0; i < f->npids; i++)
		if (!f->pids[i])
			abort();
	for (int w = 0; w < SYSCAP_MAX_SYSCALLS / 64; w++)
		any |= f->f.syscalls[w] != 0;
	if (!!(f->f.flags & SYSCAP_FILTER_SYSCALLS) != any)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_filter f;
	const char *p = (const char *)data, *end = p + size;

	memset(&f, 0, sizeof(f));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);
		struct agent_filter before = f;
		char err[512];
		int r;

		err[0] = 0;
		r = agent_command(p, len, &NAMES, &f, err, sizeof(err));
		if (r == AGENT_CMD_ERROR) {
			size_t n = strlen(err);

			if (!n || n >= sizeof(err) - 1 || memcmp(&f, &before, sizeof(f)))
				abort();
			for (size_t i = 0; i < n; i++)
				if (err[i] < 0x20 || err[i] > 0x7e)
					abort();
		} else if (r == AGENT_CMD_NONE) {
			if (memcmp(&f, &before, sizeof(f)))
				abort();
		} else if (r != AGENT_CMD_FILTER) {
			abort();
		}
		check(&f);
		p += len + 1;
	}
	return 0;
}
