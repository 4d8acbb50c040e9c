/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * killpoint.c: an LD_PRELOAD library for the crash tests, to kill a process
 * at a syscall boundary instead of on a timer.
 *
 * It counts, over all threads, the calls that change a regular file or a
 * directory: write, pwrite, writev, fsync, fdatasync, ftruncate on such a
 * descriptor (not on standard output or error, the test's own capture
 * files), and rename, link, unlink, mkdir, rmdir, and open with O_CREAT or
 * O_TRUNC. Right before call number ECHOPOST_KILL_AT (1 is the first) it
 * sends the process SIGKILL; with it unset or 0, it only counts.
 *
 * ECHOPOST_KILL_REPORT names a file where the count is kept, with the call
 * that was killed and its file, for the test to read after the process is
 * gone, killed or not.
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload.h"

struct report {
	uint64_t	calls;
	char		killed[256];
};

static struct report	 own, *report = &own;
static uint64_t		 kill_at;
static bool		 ready;

__attribute__((constructor)) static void
setup(void)
{
	const char	*at = getenv("ECHOPOST_KILL_AT");
	const char	*file = getenv("ECHOPOST_KILL_REPORT");
	void		*map;
	int		 fd;

	kill_at = at != NULL ? strtoull(at, NULL, 10) : 0;
	if (file != NULL) {
		/* Raw syscalls: the wrappers below are not ready yet. */
		fd = (int)syscall(SYS_openat, AT_FDCWD, file,
		    O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd != -1 && syscall(SYS_ftruncate, fd,
		    (off_t)sizeof *report) == 0) {
			map = mmap(NULL, sizeof *report, PROT_READ |
			    PROT_WRITE, MAP_SHARED, fd, 0);
			if (map != MAP_FAILED) {
				report = map;
				memset(report, 0, sizeof *report);
			}
		}
		if (fd != -1)
			syscall(SYS_close, fd);
	}
	ready = true;
}

static bool
changes_files(int fd)
{
	struct stat	sb;

	if (fd <= STDERR_FILENO || fstat(fd, &sb) == -1)
		return (false);
	return (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode));
}

/* One more call; the last, if it is number kill_at. */
static void
count(const char *call, int fd, const char *path)
{
	char		link[64], name[200];
	ssize_t		n;
	uint64_t	calls;

	if (!ready)
		return;
	calls = __atomic_add_fetch(&report->calls, 1, __ATOMIC_SEQ_CST);
	if (calls != kill_at)
		return;
	if (path == NULL) {
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		n = readlink(link, name, sizeof name - 1);
		name[n > 0 ? n : 0] = '\0';
		path = name;
	}
	snprintf(report->killed, sizeof report->killed, "%s %s", call, path);
	kill(getpid(), SIGKILL);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	REAL(write);
	if (changes_files(fd))
		count("write", fd, NULL);
	return (real(fd, buf, len));
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t offset)
{
	REAL(pwrite);
	if (changes_files(fd))
		count("pwrite", fd, NULL);
	return (real(fd, buf, len, offset));
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	REAL(writev);
	if (changes_files(fd))
		count("writev", fd, NULL);
	return (real(fd, iov, iovcnt));
}

int
fsync(int fd)
{
	REAL(fsync);
	if (changes_files(fd))
		count("fsync", fd, NULL);
	return (real(fd));
}

int
fdatasync(int fd)
{
	REAL(fdatasync);
	if (changes_files(fd))
		count("fdatasync", fd, NULL);
	return (real(fd));
}

int
ftruncate(int fd, off_t length)
{
	REAL(ftruncate);
	if (changes_files(fd))
		count("ftruncate", fd, NULL);
	return (real(fd, length));
}

int
rename(const char *from, const char *to)
{
	REAL(rename);
	count("rename", -1, to);
	return (real(from, to));
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
	REAL(renameat);
	count("renameat", -1, to);
	return (real(fromfd, from, tofd, to));
}

int
link(const char *from, const char *to)
{
	REAL(link);
	count("link", -1, to);
	return (real(from, to));
}

int
linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
	REAL(linkat);
	count("linkat", -1, to);
	return (real(fromfd, from, tofd, to, flags));
}

int
unlink(const char *path)
{
	REAL(unlink);
	count("unlink", -1, path);
	return (real(path));
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	REAL(unlinkat);
	count("unlinkat", -1, path);
	return (real(dirfd, path, flags));
}

int
mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);
	count("mkdir", -1, path);
	return (real(path, mode));
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	REAL(mkdirat);
	count("mkdirat", -1, path);
	return (real(dirfd, path, mode));
}

int
rmdir(const char *path)
{
	REAL(rmdir);
	count("rmdir", -1, path);
	return (real(path));
}

int
open(const char *path, int flags, ...)
{
	va_list	ap;
	mode_t	mode;

	REAL(open);
	va_start(ap, flags);
	mode = mode_of(flags, ap);
	va_end(ap);
	if ((flags & (O_CREAT | O_TRUNC)) != 0)
		count("open", -1, path);
	return (real(path, flags, mode));
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list	ap;
	mode_t	mode;

	REAL(openat);
	va_start(ap, flags);
	mode = mode_of(flags, ap);
	va_end(ap);
	if ((flags & (O_CREAT | O_TRUNC)) != 0)
		count("openat", -1, path);
	return (real(dirfd, path, flags, mode));
}
