// SPDX-License-Identifier: BSD-2-Clause
/*
 * Files syscap writes for the user (traces, exports). syscap usually runs as
 * root, often in a directory others can write to (/tmp): a symbolic link or
 * a file planted at the output path must never redirect or clobber what root
 * writes. So the file is created with O_CREAT | O_EXCL, which fails on any
 * existing name, a dangling link included, and mode 0600, because a trace
 * holds every traced process's syscall arguments. An existing regular file
 * is replaced only when asked (SYSCAP_CREATE_FORCE), by unlinking the name
 * and creating it anew: the trace is at its path from its first block, so a
 * recorder killed midway still leaves its blocks there. Character devices
 * and FIFOs (/dev/null, a pipe to a compressor) are written to as they are.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "syscap.h"

static int open_stream(const char *path, const struct stat *was, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot write %s: %s", path,
			 e == ELOOP ? "it is a symbolic link" : strerror(e));
		return -e;
	}
	/* the name may have been swapped for another file since lstat() */
	if (fstat(fd, &st) || st.st_dev != was->st_dev || st.st_ino != was->st_ino) {
		close(fd);
		snprintf(err, errlen, "%s changed while syscap opened it: try again", path);
		return -EAGAIN;
	}
	return fd;
}

int syscap_create_output(const char *path, uint32_t flags, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) == 0) {
		if (S_ISLNK(st.st_mode)) {
			snprintf(err, errlen, "%s is a symbolic link: syscap does not write "
				 "through links; give the file's real path", path);
			return -ELOOP;
		}
		if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))
			return open_stream(path, &st, err, errlen);
		if (S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s is a directory: give a file name in it", path);
			return -EISDIR;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a regular file: give another "
				 "name", path);
			return -EEXIST;
		}
		if (!(flags & SYSCAP_CREATE_FORCE)) {
			snprintf(err, errlen, "%s exists: pass --force to replace it", path);
			return -EEXIST;
		}
		if (unlink(path) && errno != ENOENT) {
			int e = errno;

			snprintf(err, errlen, "cannot replace %s: %s", path, strerror(e));
			return -e;
		}
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;

		if (e == EEXIST)	/* created by someone else since lstat() */
			snprintf(err, errlen, "%s appeared while syscap was creating it: check "
				 "who writes there, then try again", path);
		else
			snprintf(err, errlen, "cannot create %s: %s", path, strerror(e));
		return -e;
	}
	return fd;
}
