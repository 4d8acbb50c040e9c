/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * files.c: durable names for the files under DIR.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

/*
 * Give the synced file from the name to, durably, in the directory dirfd,
 * never replacing a file already there (EEXIST): link, sync the directory,
 * then drop the old name. A crash in between leaves both names for one
 * file.
 */
int
publish_file(int dirfd, const char *from, const char *to)
{
	if (linkat(dirfd, from, dirfd, to, 0) == -1 || fsync(dirfd) == -1 ||
	    unlinkat(dirfd, from, 0) == -1)
		return (-1);
	return (0);
}

/* The entries of the directory dirfd, on a descriptor of their own. */
DIR *
list_dir(int dirfd)
{
	DIR	*dir;
	int	 fd, saved;

	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return (NULL);
	if ((dir = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	return (dir);
}

/*
 * Is the file open at fd one this user alone made and can change: a
 * regular file of the effective user's, with at most names names, that
 * neither group nor others may write? 0, or -1 with errno EPERM. Files
 * under DIR are used only then: anything else was put there by someone
 * else, or is linked elsewhere. (Read bits are let be: DIR, 0700, keeps
 * others out, and a spool copied from elsewhere may carry them.)
 */
int
file_trusted(int fd, nlink_t names)
{
	struct stat	sb;

	if (fstat(fd, &sb) == -1)
		return (-1);
	if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    sb.st_nlink > names || (sb.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		errno = EPERM;
		return (-1);
	}
	return (0);
}

/*
 * Open name in the directory dirfd with flags (O_RDONLY, or O_WRONLY or
 * O_RDWR with O_CREAT, O_EXCL, O_APPEND as wanted): never through a link,
 * never waiting on a FIFO, and only a file_trusted() one with at most
 * names names. Made with mode 0600. The descriptor, or -1 with errno.
 */
int
file_open(int dirfd, const char *name, int flags, nlink_t names)
{
	int	fd, saved;

	if ((fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC, 0600)) == -1)
		return (-1);
	if (file_trusted(fd, names) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return (-1);
	}
	return (fd);
}
