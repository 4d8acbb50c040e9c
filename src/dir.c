/*
 * dir.c: DIR, created or checked, and the pid file that says which run
 * holds it.
 *
 * Root on a directory another user owns becomes that user before it opens
 * anything there, so that every file keeps its owner and no link planted
 * by that user reaches root's files: refusing would only send the admin
 * to su(1) for the same result.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "dir.h"
#include "echopost.h"

struct dir_lock {
	int	 fd;
	char	*path;
};

/* DIR and its missing parents; DIR itself private to its owner. */
static int
make_dirs(const char *dir)
{
	char	 path[PATH_MAX], *p;

	if (strlcpy(path, dir, sizeof path) >= sizeof path) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			return (-1);
		*p = '/';
	}
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return (-1);
	return (0);
}

static int
refuse(struct dir_check *c, int status, const char *fmt, const char *dir,
    const char *why)
{
	snprintf(c->error, sizeof c->error, fmt, dir, why);
	return (status);
}

/* Become the owner of DIR, for good: groups first, then gid, then uid. */
static int
become(struct dir_check *c, const char *dir, const struct stat *sb)
{
	if (setgroups(1, &sb->st_gid) == -1 || setgid(sb->st_gid) == -1 ||
	    setuid(sb->st_uid) == -1)
		return (refuse(c, EX_NOPERM, "cannot take on the owner of %s:"
		    " %s", dir, strerror(errno)));
	if (setuid(0) == 0)
		return (refuse(c, EX_SOFTWARE, "%s: %s", dir,
		    "root could be taken back after giving it up"));
	c->became_owner = true;
	return (0);
}

/*
 * Create DIR if it is missing (creating_allowed), check it, and as root
 * become its owner. Returns 0, or a sysexits(3) status with c->error.
 */
int
dir_prepare(const char *dir, bool creating_allowed, struct dir_check *c)
{
	struct stat	sb;
	char		trimmed[PATH_MAX];
	size_t		len;
	int		status;

	memset(c, 0, sizeof *c);
	len = strlcpy(trimmed, dir, sizeof trimmed);
	if (len >= sizeof trimmed)
		return (refuse(c, EX_USAGE, "%s: %s", dir,
		    strerror(ENAMETOOLONG)));
	while (len > 1 && trimmed[len - 1] == '/')
		trimmed[--len] = '\0';
	if (lstat(trimmed, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    geteuid() == 0 && sb.st_uid != 0 &&
	    (status = become(c, dir, &sb)) != 0)
		return (status);
	if (creating_allowed && make_dirs(trimmed) == -1)
		return (refuse(c, EX_CANTCREAT, "cannot create %s: %s",
		    dir, strerror(errno)));
	if (lstat(trimmed, &sb) == -1)
		return (refuse(c, errno == ENOENT ? EX_NOINPUT :
		    EX_CANTCREAT, "cannot stat %s: %s", dir,
		    strerror(errno)));
	if (S_ISLNK(sb.st_mode))
		return (refuse(c, EX_CANTCREAT, "refusing %s: %s", dir,
		    "it is a symbolic link"));
	if (!S_ISDIR(sb.st_mode))
		return (refuse(c, EX_CANTCREAT, "refusing %s: %s", dir,
		    "not a directory"));
	if ((sb.st_mode & S_IWOTH) && !(sb.st_mode & S_ISVTX))
		return (refuse(c, EX_CANTCREAT, "refusing %s: %s", dir,
		    "world-writable without the sticky bit"));
	if (sb.st_uid != geteuid()) {
		snprintf(trimmed, sizeof trimmed, "it belongs to uid %lu, and "
		    "echopost runs as uid %lu: run it as the owner",
		    (unsigned long)sb.st_uid, (unsigned long)geteuid());
		return (refuse(c, EX_NOPERM, "refusing %s: %s", dir,
		    trimmed));
	}
	c->group_writable = (sb.st_mode & S_IWGRP) != 0;
	if (realpath(trimmed, c->path) == NULL)
		return (refuse(c, EX_CANTCREAT, "cannot resolve %s: %s",
		    dir, strerror(errno)));
	if (access(c->path, W_OK | X_OK) == -1)
		return (refuse(c, EX_CANTCREAT, "cannot write to %s: %s",
		    c->path, strerror(errno)));
	return (0);
}

/* The PID in the file at fd, or -1. */
static pid_t
read_pid(int fd)
{
	char	buf[32];
	ssize_t	n;
	long	pid;

	if ((n = pread(fd, buf, sizeof buf - 1, 0)) <= 0)
		return (-1);
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	return (pid > 0 ? (pid_t)pid : -1);
}

/*
 * Take the pid file at path: lock it (flock(2), as libbsd's pidfile(3)
 * does, so that older runs see it) and write this PID. A link there is
 * never followed. Returns 0; 1 with the holder's PID in *other when
 * another run holds it; -1 with errno (ELOOP: a link).
 */
int
dir_lock(struct dir_lock **lp, const char *path, pid_t *other)
{
	struct dir_lock	*l;
	struct stat	 sb;
	char		 text[32];
	int		 saved, n;

	*lp = NULL;
	if ((l = calloc(1, sizeof *l)) == NULL || (l->path = strdup(path)) ==
	    NULL) {
		free(l);
		return (-1);
	}
	l->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC, 0600);
	if (l->fd == -1 || fstat(l->fd, &sb) == -1)
		goto fail;
	if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid()) {
		errno = EPERM;
		goto fail;
	}
	if (flock(l->fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			*other = read_pid(l->fd);
			close(l->fd);
			free(l->path);
			free(l);
			return (1);
		}
		goto fail;
	}
	n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	if (ftruncate(l->fd, 0) == -1 || pwrite(l->fd, text, (size_t)n, 0) !=
	    n)
		goto fail;
	*lp = l;
	return (0);
fail:
	saved = errno;
	if (l->fd != -1)
		close(l->fd);
	free(l->path);
	free(l);
	errno = saved;
	return (-1);
}

/* Remove the pid file, then let go of the lock. */
void
dir_unlock(struct dir_lock *l)
{
	if (l == NULL)
		return;
	unlink(l->path);
	close(l->fd);
	free(l->path);
	free(l);
}
