// SPDX-License-Identifier: BSD-2-Clause
/*
 * syscap-agent's filter commands (see commands.h). The lines come from
 * whoever holds the agent's stdin, usually an SSH channel: they are
 * untrusted, so every part is bounded and checked, and an error message
 * quotes the line only in printable, shortened form.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"

#define QUOTE_MAX	48

static const char USAGE[] = "use filter syscalls|comm|pid LIST, filter failed on|off or "
			    "filter clear";

/* The line for a message: printable ASCII, at most QUOTE_MAX characters. */
static void quote(char *dst, size_t size, const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 4 < size; i++) {
		if (i == QUOTE_MAX) {
			memcpy(dst + n, "...", 3);
			n += 3;
			break;
		}
		dst[n++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	}
	dst[n] = 0;
}

int agent_syscall_number(const struct agent_names *names, const char *name)
{
	const char *p = names->blob, *end = names->blob + names->len;

	for (uint32_t nr = 0; nr < names->nsyscalls && p < end; nr++) {
		size_t l = strnlen(p, (size_t)(end - p));

		if (l && !strcmp(p, name))
			return (int)nr;
		p += l + 1;
	}
	return -1;
}

/* A decimal number in [min, max], the whole word. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Next item of a list separated by commas and blanks, or NULL. */
static char *next_item(char **cursor)
{
	char *p = *cursor, *start;

	while (*p == ',' || *p == ' ' || *p == '\t')
		p++;
	if (!*p) {
		*cursor = p;
		return NULL;
	}
	start = p;
	while (*p && *p != ',' && *p != ' ' && *p != '\t')
		p++;
	if (*p)
		*p++ = 0;
	*cursor = p;
	return start;
}

static int is_all(const char *list)
{
	return !strcmp(list, "all");
}

static int set_syscalls(struct agent_filter *nf, char *list, const struct agent_names *names,
			char *err, size_t errlen)
{
	char *item;
	int n = 0;

	memset(nf->f.syscalls, 0, sizeof(nf->f.syscalls));
	nf->f.flags &= ~SYSCAP_FILTER_SYSCALLS;
	if (is_all(list))
		return 0;
	while ((item = next_item(&list))) {
		unsigned long nr;
		int found = agent_syscall_number(names, item);
		char q[QUOTE_MAX + 4];

		if (found >= 0)
			nr = (unsigned long)found;
		else if (parse_uint(item, 0, SYSCAP_MAX_SYSCALLS - 1, &nr)) {
			quote(q, sizeof(q), item, strlen(item));
			snprintf(err, errlen, "unknown syscall '%s': give names of this "
				 "machine's table or numbers below %d", q, SYSCAP_MAX_SYSCALLS);
			return -1;
		}
		nf->f.syscalls[nr / 64] |= 1ULL << (nr % 64);
		n++;
	}
	if (!n) {
		snprintf(err, errlen, "no syscalls given: e.g. filter syscalls read,write "
			 "(or 'all')");
		return -1;
	}
	nf->f.flags |= SYSCAP_FILTER_SYSCALLS;
	return 0;
}

static int set_comms(struct agent_filter *nf, char *list, char *err, size_t errlen)
{
	char *item;

	memset(nf->f.comm, 0, sizeof(nf->f.comm));
	nf->f.ncomm = 0;
	nf->f.flags &= ~(SYSCAP_FILTER_COMM | SYSCAP_FILTER_COMM_EXCLUDE);
	if (is_all(list))
		return 0;
	while ((item = next_item(&list))) {
		size_t l = strlen(item);
		char q[QUOTE_MAX + 4];

		if (l >= SYSCAP_COMM_LEN) {
			quote(q, sizeof(q), item, l);
			snprintf(err, errlen, "comm '%s' is longer than the kernel's %d characters: "
				 "give its first %d", q, SYSCAP_COMM_LEN - 1, SYSCAP_COMM_LEN - 1);
			return -1;
		}
		if (nf->f.ncomm == SYSCAP_MAX_COMMS) {
			snprintf(err, errlen, "more than %d comms: give at most %d",
				 SYSCAP_MAX_COMMS, SYSCAP_MAX_COMMS);
			return -1;
		}
		memcpy(nf->f.comm[nf->f.ncomm++], item, l);
	}
	if (!nf->f.ncomm) {
		snprintf(err, errlen, "no comm given: e.g. filter comm nginx (or 'all')");
		return -1;
	}
	nf->f.flags |= SYSCAP_FILTER_COMM;
	return 0;
}

static int set_pids(struct agent_filter *nf, char *list, char *err, size_t errlen)
{
	char *item;

	nf->npids = 0;
	nf->f.flags &= ~SYSCAP_FILTER_PIDS;
	if (is_all(list))
		return 0;
	while ((item = next_item(&list))) {
		unsigned long pid;
		char q[QUOTE_MAX + 4];
		int dup = 0;

		if (parse_uint(item, 1, 0x3fffffff, &pid)) {
			quote(q, sizeof(q), item, strlen(item));
			snprintf(err, errlen, "'%s' is not a process id: give numbers, e.g. "
				 "filter pid 123,456", q);
			return -1;
		}
		for (uint32_t i = 0; i < nf->npids; i++)
			dup |= nf->pids[i] == pid;
		if (dup)
			continue;
		if (nf->npids == AGENT_MAX_PIDS) {
			snprintf(err, errlen, "more than %d processes: give at most %d",
				 AGENT_MAX_PIDS, AGENT_MAX_PIDS);
			return -1;
		}
		nf->pids[nf->npids++] = (uint32_t)pid;
	}
	if (!nf->npids) {
		snprintf(err, errlen, "no process id given: e.g. filter pid 123 (or 'all')");
		return -1;
	}
	nf->f.flags |= SYSCAP_FILTER_PIDS;
	return 0;
}

int agent_command(const char *line, size_t len, const struct agent_names *names,
		  struct agent_filter *flt, char *err, size_t errlen)
{
	char buf[AGENT_MAX_LINE + 1], q[QUOTE_MAX + 4];
	struct agent_filter nf = *flt;
	char *p, *verb, *what;
	int ret = -1;

	quote(q, sizeof(q), line, len);
	if (len > AGENT_MAX_LINE) {
		snprintf(err, errlen, "command '%s' is longer than %d bytes: send one short "
			 "command per line", q, AGENT_MAX_LINE);
		return AGENT_CMD_ERROR;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t' && c != '\r') || c >= 0x7f) {
			snprintf(err, errlen, "command '%s' holds a byte that is not printable "
				 "ASCII: send text commands", q);
			return AGENT_CMD_ERROR;
		}
	}
	memcpy(buf, line, len);
	buf[len] = 0;
	/* a trailing CR (a line typed on a terminal that sends CRLF) is dropped */
	for (p = buf + len; p > buf && (p[-1] == '\r' || p[-1] == ' ' || p[-1] == '\t'); p--)
		p[-1] = 0;
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	if (!*p || *p == '#')
		return AGENT_CMD_NONE;
	verb = p;
	while (*p && *p != ' ' && *p != '\t')
		p++;
	if (*p)
		*p++ = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	what = p;
	while (*p && *p != ' ' && *p != '\t')
		p++;
	if (*p)
		*p++ = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	/* p: the argument list, possibly empty */
	if (strcmp(verb, "filter")) {
		snprintf(err, errlen, "unknown command '%s': %s", q, USAGE);
		return AGENT_CMD_ERROR;
	}
	if (!strcmp(what, "clear") && !*p) {
		memset(&nf, 0, sizeof(nf));
		ret = 0;
	} else if (!strcmp(what, "syscalls") && *p) {
		ret = set_syscalls(&nf, p, names, err, errlen);
	} else if (!strcmp(what, "comm") && *p) {
		ret = set_comms(&nf, p, err, errlen);
	} else if (!strcmp(what, "pid") && *p) {
		ret = set_pids(&nf, p, err, errlen);
	} else if (!strcmp(what, "failed") && (!strcmp(p, "on") || !strcmp(p, "off"))) {
		nf.f.flags &= ~SYSCAP_FILTER_FAILED;
		if (!strcmp(p, "on"))
			nf.f.flags |= SYSCAP_FILTER_FAILED;
		ret = 0;
	} else {
		snprintf(err, errlen, "bad command '%s': %s", q, USAGE);
	}
	if (ret)
		return AGENT_CMD_ERROR;
	*flt = nf;
	return AGENT_CMD_FILTER;
}
