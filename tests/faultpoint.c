/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * faultpoint.c: an LD_PRELOAD library for the storage fault tests, to make
 * one call on a spool file fail the way a bad disk does, at a chosen place
 * in a run instead of at random.
 *
 * It counts, over all threads, the calls on spool files: open, open64,
 * openat, openat64 by the name they are given, and read, pread, pread64,
 * write, pwrite, pwrite64, fsync, fdatasync by the name /proc/self/fd
 * shows for the descriptor. A spool file is one whose last path component
 * begins with ECHOPOST_FAULT_MATCH (default "echopost.spool"). Call number
 * ECHOPOST_FAULT_AT (1 is the first; unset or 0: only count) returns -1
 * with errno ECHOPOST_FAULT_ERRNO, without the real call being made.
 *
 *	ECHOPOST_FAULT_ERRNO	EIO (default), EMFILE or ENFILE (the open
 *				family only: no other call returns them),
 *				ENOSPC (the write and sync families only).
 *				Calls of a family the errno does not fit
 *				are not counted, so that N numbers only
 *				the calls the fault can hit.
 *	ECHOPOST_FAULT_MODE	once (default): call N fails, no other;
 *				persistent: from call N on, every counted
 *				call on a file of the same name fails too,
 *				as a bad sector keeps failing.
 *	ECHOPOST_FAULT_CALLS	a comma list of the families that count:
 *				open, read, write, sync (default all).
 *	ECHOPOST_FAULT_OFFSET	bytes: only reads (read, pread) at or past
 *				this file offset count, so that a fault
 *				can hit a journal's entries, not its header.
 *	ECHOPOST_FAULT_REPORT	a file shared with the test (struct report
 *				below, native byte order). Unlike the
 *				kill-point report it is not cleared: the
 *				runs of one test point share it, so that
 *				the count goes on across a restart and a
 *				persistent fault stays with its file, as a
 *				disk's would. The test makes it empty.
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

/* The families of calls, as bits, for ECHOPOST_FAULT_CALLS. */
#define OPEN	0x1
#define READ	0x2
#define WRITE	0x4
#define SYNC	0x8
#define ALL	(OPEN | READ | WRITE | SYNC)

struct report {
	uint64_t	calls;		/* counted so far */
	uint64_t	failed;		/* made to fail */
	char		call[32];	/* the first failed, e.g. "pread" */
	char		path[256];	/* and its file */
};

static struct report	 own, *report = &own;
static uint64_t		 fault_at;
static int		 fault_errno = EIO;
static int		 families = ALL;
static bool		 persistent;
static off_t		 min_offset = -1;
/* A copy: setproctitle(3) may write over the environment's strings. */
static char		 match[128] = "echopost.spool";
static bool		 ready;

static const struct {
	const char	*name;
	int		 value;
	int		 families;	/* that can return it */
} errnos[] = {
	{ "EIO",	EIO,	ALL },
	{ "EMFILE",	EMFILE,	OPEN },
	{ "ENFILE",	ENFILE,	OPEN },
	{ "ENOSPC",	ENOSPC,	WRITE | SYNC },
};

static const struct {
	const char	*name;
	int		 family;
} names[] = {
	{ "open", OPEN }, { "read", READ }, { "write", WRITE },
	{ "sync", SYNC },
};

/* The families named in list, a comma list; ALL if it names none. */
static int
parse_families(const char *list)
{
	size_t	i, len;
	int	found = 0;

	while (*list != '\0') {
		len = strcspn(list, ",");
		for (i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strlen(names[i].name) == len &&
			    strncmp(names[i].name, list, len) == 0)
				found |= names[i].family;
		list += len + (list[len] == ',');
	}
	return (found != 0 ? found : ALL);
}

static void
map_report(const char *file)
{
	void	*map;
	int	 fd;

	/* Raw syscalls: the wrappers below are not ready yet. */
	fd = (int)syscall(SYS_openat, AT_FDCWD, file, O_RDWR | O_CREAT |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return;
	/* Grows an empty file, keeps what an earlier run counted. */
	if (syscall(SYS_ftruncate, fd, (off_t)sizeof *report) == 0) {
		map = mmap(NULL, sizeof *report, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
		if (map != MAP_FAILED)
			report = map;
	}
	syscall(SYS_close, fd);
}

__attribute__((constructor)) static void
setup(void)
{
	const char	*at = getenv("ECHOPOST_FAULT_AT");
	const char	*name = getenv("ECHOPOST_FAULT_ERRNO");
	const char	*mode = getenv("ECHOPOST_FAULT_MODE");
	const char	*calls = getenv("ECHOPOST_FAULT_CALLS");
	const char	*offset = getenv("ECHOPOST_FAULT_OFFSET");
	const char	*file = getenv("ECHOPOST_FAULT_REPORT");
	const char	*pattern = getenv("ECHOPOST_FAULT_MATCH");
	size_t		 i;

	fault_at = at != NULL ? strtoull(at, NULL, 10) : 0;
	if (calls != NULL)
		families = parse_families(calls);
	for (i = 0; name != NULL && i < sizeof errnos / sizeof errnos[0]; i++)
		if (strcmp(name, errnos[i].name) == 0) {
			fault_errno = errnos[i].value;
			families &= errnos[i].families;
		}
	persistent = mode != NULL && strcmp(mode, "persistent") == 0;
	if (offset != NULL && *offset != '\0') {
		min_offset = (off_t)strtoll(offset, NULL, 10);
		families &= READ;
	}
	if (pattern != NULL && *pattern != '\0')
		snprintf(match, sizeof match, "%s", pattern);
	if (file != NULL)
		map_report(file);
	ready = true;
}

static const char *
last_component(const char *path)
{
	const char	*slash = strrchr(path, '/');

	return (slash != NULL ? slash + 1 : path);
}

/*
 * Should this call fail? It counts if it is of a family that counts and
 * on a spool file: path for an open, else the descriptor's file. Fails
 * if it is call number fault_at, or (persistent) on the file that one
 * was on. Nothing here takes a lock: the threads of the process meet only
 * in the atomic counter and the failed count.
 */
static bool
fails(const char *call, int family, int fd, const char *path)
{
	char		link[64], name[256];
	ssize_t		n;
	uint64_t	calls;

	if (!ready || (family & families) == 0)
		return (false);
	if (path == NULL) {
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		if ((n = readlink(link, name, sizeof name - 1)) <= 0)
			return (false);
		name[n] = '\0';
		path = name;
	}
	if (strncmp(last_component(path), match, strlen(match)) != 0)
		return (false);
	calls = __atomic_add_fetch(&report->calls, 1, __ATOMIC_SEQ_CST);
	if (fault_at == 0)
		return (false);
	if (calls == fault_at) {
		snprintf(report->call, sizeof report->call, "%s", call);
		snprintf(report->path, sizeof report->path, "%s", path);
		/* Publishes call and path to the persistent check below. */
		__atomic_add_fetch(&report->failed, 1, __ATOMIC_RELEASE);
		return (true);
	}
	/*
	 * An open names the file relative to the spool's directory, the
	 * descriptor link names it in full: the last components compare.
	 */
	if (persistent && calls > fault_at &&
	    __atomic_load_n(&report->failed, __ATOMIC_ACQUIRE) > 0 &&
	    strcmp(last_component(path), last_component(report->path)) == 0) {
		__atomic_add_fetch(&report->failed, 1, __ATOMIC_RELAXED);
		return (true);
	}
	return (false);
}

/* The offset a read on fd starts at, for ECHOPOST_FAULT_OFFSET. */
static bool
past_offset(int fd, off_t offset)
{
	if (min_offset < 0)
		return (true);
	if (offset < 0)
		offset = lseek(fd, 0, SEEK_CUR);
	return (offset >= min_offset);
}

#define FAIL(value)	do {						\
	errno = fault_errno;						\
	return (value);							\
} while (0)

int
open(const char *path, int flags, ...)
{
	va_list	ap;
	mode_t	mode;

	REAL(open);
	va_start(ap, flags);
	mode = mode_of(flags, ap);
	va_end(ap);
	if (fails("open", OPEN, -1, path))
		FAIL(-1);
	return (real(path, flags, mode));
}

int
open64(const char *path, int flags, ...)
{
	va_list	ap;
	mode_t	mode;

	REAL(open64);
	va_start(ap, flags);
	mode = mode_of(flags, ap);
	va_end(ap);
	if (fails("open64", OPEN, -1, path))
		FAIL(-1);
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
	if (fails("openat", OPEN, -1, path))
		FAIL(-1);
	return (real(dirfd, path, flags, mode));
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	va_list	ap;
	mode_t	mode;

	REAL(openat64);
	va_start(ap, flags);
	mode = mode_of(flags, ap);
	va_end(ap);
	if (fails("openat64", OPEN, -1, path))
		FAIL(-1);
	return (real(dirfd, path, flags, mode));
}

ssize_t
read(int fd, void *buf, size_t len)
{
	REAL(read);
	if (past_offset(fd, -1) && fails("read", READ, fd, NULL))
		FAIL(-1);
	return (real(fd, buf, len));
}

ssize_t
pread(int fd, void *buf, size_t len, off_t offset)
{
	REAL(pread);
	if (past_offset(fd, offset) && fails("pread", READ, fd, NULL))
		FAIL(-1);
	return (real(fd, buf, len, offset));
}

ssize_t
pread64(int fd, void *buf, size_t len, off_t offset)
{
	REAL(pread64);
	if (past_offset(fd, offset) && fails("pread64", READ, fd, NULL))
		FAIL(-1);
	return (real(fd, buf, len, offset));
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	REAL(write);
	if (fails("write", WRITE, fd, NULL))
		FAIL(-1);
	return (real(fd, buf, len));
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t offset)
{
	REAL(pwrite);
	if (fails("pwrite", WRITE, fd, NULL))
		FAIL(-1);
	return (real(fd, buf, len, offset));
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off_t offset)
{
	REAL(pwrite64);
	if (fails("pwrite64", WRITE, fd, NULL))
		FAIL(-1);
	return (real(fd, buf, len, offset));
}

int
fsync(int fd)
{
	REAL(fsync);
	if (fails("fsync", SYNC, fd, NULL))
		FAIL(-1);
	return (real(fd));
}

int
fdatasync(int fd)
{
	REAL(fdatasync);
	if (fails("fdatasync", SYNC, fd, NULL))
		FAIL(-1);
	return (real(fd));
}
