/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * dir.c: DIR, reached from / one directory at a time, created or checked,
 * and the pid file that says which run holds it.
 *
 * Every directory on the way is opened relative to the one before it, never
 * by a path a user could swap, and what it is decides what happens next:
 * a directory another user owns makes root become that user (refusing would
 * only send the admin to su(1) for the same result) and anyone else stop;
 * one that others can write is passed only if it is sticky, and DIR itself
 * never. From then on DIR is that one descriptor.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "dir.h"
#include "echopost.h"
#include "files.h"
#include "util.h"

#define LINKS_MAX	16	/* symbolic links followed on the way */

struct dir_lock {
	int	 dirfd;
	int	 fd;
};

struct walk {
	int		 fd;		/* the directory reached so far */
	char		 path[PATH_MAX];	/* and its name, for people */
	char		 rest[PATH_MAX];	/* what is left to walk */
	int		 links;
	bool		 creating;
	struct dir_check *check;
};

static int
refuse(struct dir_check *c, int status, const char *fmt, const char *dir,
    const char *why)
{
	cause_set(c->error, 0, fmt, dir, why);
	return (status);
}

/* Become the owner of a directory, for good: groups, gid, then uid. */
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
 * A group only its owner is in: it has no members and is nobody else's
 * primary group. Writing for such a group is writing for the owner.
 */
static bool
private_group(uid_t owner, gid_t gid)
{
	struct group	*gr;
	struct passwd	*pw;
	bool		 alone = true;

	if ((gr = getgrgid(gid)) == NULL || gr->gr_mem[0] != NULL)
		return (false);
	setpwent();
	while (alone && (pw = getpwent()) != NULL)
		alone = pw->pw_gid != gid || pw->pw_uid == owner;
	endpwent();
	return (alone);
}

/* Can a user other than the owner add or remove names in it? */
static bool
others_write(const struct stat *sb)
{
	if (sb->st_mode & S_IWOTH)
		return (true);
	return ((sb->st_mode & S_IWGRP) &&
	    !private_group(sb->st_uid, sb->st_gid));
}

/*
 * A directory on the way to DIR, or DIR itself (last): whose it is and
 * who else may write it decide whether the walk goes on.
 */
static int
check_step(struct walk *w, const struct stat *sb, bool last)
{
	struct dir_check	*c = w->check;
	int			 status;

	if (sb->st_uid != 0 && sb->st_uid != geteuid() && geteuid() == 0 &&
	    (status = become(c, w->path, sb)) != 0)
		return (status);
	if (sb->st_uid != geteuid() && (last || sb->st_uid != 0)) {
		if (last)
			cause_set(c->error, 0, "refusing %s: it belongs to "
			    "uid %lu, and echopost runs as uid %lu: run it as "
			    "the owner", w->path, (unsigned long)sb->st_uid,
			    (unsigned long)geteuid());
		else
			cause_set(c->error, 0, "refusing %s: uid %lu owns it "
			    "and could put another directory in DIR's place: "
			    "run echopost as that user", w->path,
			    (unsigned long)sb->st_uid);
		return (EX_NOPERM);
	}
	if (others_write(sb) && (last || !(sb->st_mode & S_ISVTX))) {
		cause_set(c->error, 0, "refusing %s: writable by others (mode "
		    "%04o), who could replace %s; %s", w->path,
		    (unsigned)(sb->st_mode & 07777), last ? "what is in it" :
		    "DIR", last ? "make it 0700 (chmod go-w)" : "choose a DIR "
		    "under a directory only its owner can write");
		return (EX_CANTCREAT);
	}
	if (last && geteuid() != 0 && (sb->st_mode & (S_IWUSR | S_IXUSR)) !=
	    (S_IWUSR | S_IXUSR))
		return (refuse(c, EX_CANTCREAT, "cannot write to %s: %s",
		    w->path, strerror(EACCES)));
	return (0);
}

/*
 * The next name of w->rest, taken from it: 1, 0 when none is left, -1
 * when it is longer than a name may be.
 */
static int
next_name(struct walk *w, char name[NAME_MAX + 1], bool *last)
{
	char	*p = w->rest;
	size_t	 len;

	while (*p == '/')
		p++;
	if (*p == '\0')
		return (0);
	if ((len = strcspn(p, "/")) > NAME_MAX)
		return (-1);
	memcpy(name, p, len);
	name[len] = '\0';
	p += len;
	memmove(w->rest, p, strlen(p) + 1);
	*last = w->rest[strspn(w->rest, "/")] == '\0';
	return (1);
}

/* Start (again) at / with path still to walk. */
static int
walk_from_root(struct walk *w)
{
	struct stat	sb;

	if (w->fd != -1)
		close(w->fd);
	strlcpy(w->path, "/", sizeof w->path);
	if ((w->fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fstat(w->fd, &sb) == -1)
		return (refuse(w->check, EX_OSERR, "cannot open %s: %s", "/",
		    strerror(errno)));
	return (check_step(w, &sb, false));
}

/*
 * A symbolic link on the way: followed only when root or the user made it
 * (its directory was checked already), by walking what it names.
 */
static int
follow_link(struct walk *w, const char *name)
{
	struct stat	 sb;
	char		 target[PATH_MAX], rest[PATH_MAX];
	ssize_t		 n;

	if (fstatat(w->fd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISLNK(sb.st_mode))
		return (refuse(w->check, EX_CANTCREAT, "%s: %s", w->path,
		    "it changed while it was checked"));
	if ((sb.st_uid != 0 && sb.st_uid != geteuid()) || ++w->links >
	    LINKS_MAX || (n = readlinkat(w->fd, name, target,
	    sizeof target - 1)) <= 0)
		return (refuse(w->check, EX_CANTCREAT, "refusing %s: %s",
		    w->path, "a symbolic link on the way that is not root's "
		    "nor the user's, or too many"));
	target[n] = '\0';
	if (strlcpy(rest, w->rest, sizeof rest) >= sizeof rest ||
	    (size_t)snprintf(w->rest, sizeof w->rest, "%s/%s", target, rest) >=
	    sizeof w->rest)
		return (refuse(w->check, EX_USAGE, "%s: %s", w->path,
		    strerror(ENAMETOOLONG)));
	if (target[0] == '/')
		return (walk_from_root(w));
	return (0);
}

/* One level up: ".." walked by name from /, as realpath(3) would. */
static int
walk_up(struct walk *w)
{
	char	rest[PATH_MAX], *slash;

	if ((slash = strrchr(w->path, '/')) == NULL || slash == w->path)
		return (walk_from_root(w));
	*slash = '\0';
	if ((size_t)snprintf(rest, sizeof rest, "%s/%s", w->path, w->rest) >=
	    sizeof rest)
		return (refuse(w->check, EX_USAGE, "%s: %s", w->path,
		    strerror(ENAMETOOLONG)));
	strlcpy(w->rest, rest, sizeof w->rest);
	return (walk_from_root(w));
}

/* Open the directory name in w->fd, made first when it may be. */
static int
open_step(struct walk *w, const char *name, bool last)
{
	int	fd;

	fd = openat(w->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && w->creating &&
	    (mkdirat(w->fd, name, last ? 0700 : 0755) == 0 || errno ==
	    EEXIST))
		fd = openat(w->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	return (fd);
}

/*
 * Why the walk could not open name (w->path names it); 0 when it is a
 * link that was followed, else a sysexits(3) status.
 */
static int
step_failed(struct walk *w, const char *name, size_t parent_len, bool last)
{
	struct stat	sb;
	int		saved = errno;

	if (fstatat(w->fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(sb.st_mode) && !last) {
			w->path[parent_len] = '\0';
			return (follow_link(w, name));
		}
		if (S_ISLNK(sb.st_mode))
			return (refuse(w->check, EX_CANTCREAT, "refusing %s: "
			    "%s", w->path, "it is a symbolic link"));
		if (!S_ISDIR(sb.st_mode))
			return (refuse(w->check, EX_CANTCREAT, "refusing %s: "
			    "%s", w->path, "not a directory"));
	}
	return (refuse(w->check, saved == ENOENT ? EX_NOINPUT : saved ==
	    EACCES ? EX_NOPERM : EX_CANTCREAT, w->creating ? "cannot create "
	    "%s: %s" : "cannot open %s: %s", w->path, strerror(saved)));
}

/* Walk one name of w->rest; 1 when DIR is reached. */
static int
walk_step(struct walk *w)
{
	struct stat	 sb;
	char		 name[NAME_MAX + 1];
	size_t		 len;
	bool		 last;
	int		 fd, found, status;

	if ((found = next_name(w, name, &last)) != 1)
		return (found == 0 ? 1 : refuse(w->check, EX_USAGE, "%s: %s",
		    w->path, strerror(ENAMETOOLONG)));
	if (strcmp(name, ".") == 0)
		return (last ? 1 : 0);
	if (strcmp(name, "..") == 0)
		return ((status = walk_up(w)) != 0 ? status : last ? 1 : 0);
	len = strlen(w->path);
	if (len + strlen(name) + 2 > sizeof w->path)
		return (refuse(w->check, EX_USAGE, "%s: %s", w->path,
		    strerror(ENAMETOOLONG)));
	snprintf(w->path + len, sizeof w->path - len, "%s%s", len > 1 ? "/" :
	    "", name);
	if ((fd = open_step(w, name, last)) == -1)
		return (step_failed(w, name, len, last));
	close(w->fd);
	w->fd = fd;
	if (fstat(fd, &sb) == -1)
		return (refuse(w->check, EX_OSERR, "cannot stat %s: %s",
		    w->path, strerror(errno)));
	if ((status = check_step(w, &sb, last)) != 0)
		return (status);
	return (last ? 1 : 0);
}

/*
 * Open DIR (made with its missing parents when creating_allowed), walking
 * to it from /, as root becoming the owner of the first directory on the
 * way that a user owns. Returns 0 with c->fd open on DIR, or a sysexits(3)
 * status with c->error.
 */
int
dir_open(const char *dir, bool creating_allowed, struct dir_check *c)
{
	struct walk	w;
	char		cwd[PATH_MAX];
	int		status;

	memset(c, 0, sizeof *c);
	c->fd = -1;
	memset(&w, 0, sizeof w);
	w.fd = -1;
	w.creating = creating_allowed;
	w.check = c;
	if (dir[0] != '/' && getcwd(cwd, sizeof cwd) == NULL)
		return (refuse(c, EX_OSERR, "%s: %s", dir, strerror(errno)));
	if ((size_t)snprintf(w.rest, sizeof w.rest, "%s/%s", dir[0] == '/' ?
	    "" : cwd, dir) >= sizeof w.rest)
		return (refuse(c, EX_USAGE, "%s: %s", dir,
		    strerror(ENAMETOOLONG)));
	status = walk_from_root(&w);
	while (status == 0)
		status = walk_step(&w);
	if (status != 1) {
		if (w.fd != -1)
			close(w.fd);
		return (status);
	}
	c->fd = w.fd;
	strlcpy(c->path, w.path, sizeof c->path);
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
 * Does a run hold DIR? Only if the pid file is locked: a file a crash
 * left may name a process that is now something else. 1 with the PID in
 * *pid (-1 if the file does not say), 0 if none, -1 with errno if it
 * cannot be told. Takes nothing.
 */
int
dir_holder(int dirfd, pid_t *pid)
{
	int	fd, held = 0, saved;

	*pid = -1;
	if ((fd = file_open(dirfd, PID_FILE_NAME, O_RDONLY, 1)) == -1)
		return (errno == ENOENT ? 0 : -1);
	if (flock(fd, LOCK_SH | LOCK_NB) == 0)
		flock(fd, LOCK_UN);
	else if (errno == EWOULDBLOCK) {
		held = 1;
		*pid = read_pid(fd);
	} else
		held = -1;
	saved = errno;
	close(fd);
	errno = saved;
	return (held);
}

/*
 * Take the pid file in DIR: lock it (flock(2), as libbsd's pidfile(3)
 * does, so that older runs see it) and write this PID, unless the disk
 * is full (the file stays empty then). Returns 0; 1 with the holder's PID
 * in *other when another run holds it; -1 with errno (ELOOP: a link,
 * EPERM: not a file of this user's alone).
 */
int
dir_lock(struct dir_lock **lp, int dirfd, pid_t *other)
{
	struct dir_lock	*l;
	char		 text[32];
	int		 saved, n;

	*lp = NULL;
	if ((l = calloc(1, sizeof *l)) == NULL)
		return (-1);
	l->fd = l->dirfd = -1;
	if ((l->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) == -1)
		goto fail;
	if ((l->fd = file_open(dirfd, PID_FILE_NAME, O_RDWR | O_CREAT, 1)) ==
	    -1)
		goto fail;
	if (flock(l->fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			*other = read_pid(l->fd);
			close(l->fd);
			close(l->dirfd);
			free(l);
			return (1);
		}
		goto fail;
	}
	/*
	 * The lock is what holds DIR; the PID is for people. A full disk
	 * must not stop a run that would drain the spool and free space.
	 */
	n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	if (ftruncate(l->fd, 0) == -1 || (pwrite(l->fd, text, (size_t)n, 0) !=
	    n && errno != ENOSPC && errno != EDQUOT))
		goto fail;
	*lp = l;
	return (0);
fail:
	saved = errno;
	if (l->fd != -1)
		close(l->fd);
	if (l->dirfd != -1)
		close(l->dirfd);
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
	unlinkat(l->dirfd, PID_FILE_NAME, 0);
	close(l->fd);
	close(l->dirfd);
	free(l);
}
