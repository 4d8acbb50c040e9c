/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * compat.c: the platform's way to sync, to make a pipe, to take a
 * pending signal, to wait until a deadline, and the BSD functions that
 * neither its C library nor libbsd gave (see compat.h). Only Linux is
 * tested: every other branch but F_FULLFSYNC's is built and run there by
 * forcing configure's answers (see README), not where it belongs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if HAVE_DECL_F_FULLFSYNC
/*
 * On macOS fsync(2) and fdatasync leave the data in the drive's cache;
 * F_FULLFSYNC flushes it. File systems that cannot (SMB, some FUSE ones)
 * refuse it, and then fsync is the most there is.
 */
static int
full_fsync(int fd)
{
	if (fcntl(fd, F_FULLFSYNC) == 0)
		return (0);
	if (errno != ENOTSUP && errno != EOPNOTSUPP && errno != EINVAL)
		return (-1);
	return (fsync(fd));
}
#endif

int
compat_sync_data(int fd)
{
#if HAVE_DECL_F_FULLFSYNC
	return (full_fsync(fd));
#elif defined(HAVE_FDATASYNC) && HAVE_DECL_FDATASYNC
	return (fdatasync(fd));
#else
	return (fsync(fd));
#endif
}

int
compat_sync_file(int fd)
{
#if HAVE_DECL_F_FULLFSYNC
	return (full_fsync(fd));
#else
	return (fsync(fd));
#endif
}

#ifndef HAVE_PIPE2
static int
set_flags(int fd, int flags)
{
	int	now;

	if ((flags & O_CLOEXEC) && fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return (-1);
	if ((flags & O_NONBLOCK) && ((now = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, now | O_NONBLOCK) == -1))
		return (-1);
	return (0);
}
#endif

/*
 * Without pipe2 (macOS) a fork and exec by another thread between pipe
 * and fcntl would hand the pipe to the program run: echopost runs none.
 */
int
compat_pipe2(int fds[2], int flags)
{
#ifdef HAVE_PIPE2
	return (pipe2(fds, flags));
#else
	int	saved;

	if (pipe(fds) == -1)
		return (-1);
	if (set_flags(fds[0], flags) == -1 || set_flags(fds[1], flags) == -1) {
		saved = errno;
		close(fds[0]);
		close(fds[1]);
		errno = saved;
		return (-1);
	}
	return (0);
#endif
}

#ifndef HAVE_SIGTIMEDWAIT
/* The lowest signal of set that is pending, 0 if none, -1 on error. */
static int
pending_in(const sigset_t *set)
{
	sigset_t	now;
	int		signo;

	if (sigpending(&now) == -1)
		return (-1);
	for (signo = 1; signo < NSIG; signo++)
		if (sigismember(set, signo) == 1 &&
		    sigismember(&now, signo) == 1)
			return (signo);
	return (0);
}
#endif

/*
 * The caller blocks the signals of set in every thread, so that one sent
 * stays pending until it is taken here. Without sigtimedwait (macOS),
 * sigpending says whether one is, and sigwait takes it.
 */
int
compat_signal_take(const sigset_t *set)
{
#ifdef HAVE_SIGTIMEDWAIT
	struct timespec	now = { 0, 0 };
	int		signo;

	if ((signo = sigtimedwait(set, NULL, &now)) == -1 && errno == EAGAIN)
		return (0);
	return (signo);
#else
	int	signo, error;

	if ((signo = pending_in(set)) <= 0)
		return (signo);
	if ((error = sigwait(set, &signo)) != 0) {
		errno = error;
		return (-1);
	}
	return (signo);
#endif
}

int
compat_cond_init(pthread_cond_t *cond)
{
#ifdef HAVE_PTHREAD_CONDATTR_SETCLOCK
	pthread_condattr_t	attr;
	int			error;

	if ((error = pthread_condattr_init(&attr)) != 0)
		return (error);
	if ((error = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) == 0)
		error = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return (error);
#else
	return (pthread_cond_init(cond, NULL));
#endif
}

void
compat_cond_deadline(struct timespec *deadline, int64_t ms)
{
#ifdef HAVE_PTHREAD_CONDATTR_SETCLOCK
	clock_gettime(CLOCK_MONOTONIC, deadline);
#else
	clock_gettime(CLOCK_REALTIME, deadline);
#endif
	deadline->tv_sec += ms / 1000;
	deadline->tv_nsec += (ms % 1000) * 1000000;
	if (deadline->tv_nsec >= 1000000000) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000;
	}
}

#if !defined(HAVE_LIBBSD) && !defined(HAVE_SETPROCTITLE)
/* Where argv's strings lie, end to end: what ps(1) shows (macOS too). */
static char	*title_room;
static size_t	 title_size;
#endif

void
compat_setproctitle_init(int argc, char *argv[])
{
#ifdef HAVE_LIBBSD
	setproctitle_init(argc, argv, environ);
#elif !defined(HAVE_SETPROCTITLE)
	char	*end;
	int	 i;

	if (argc < 1 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < argc && argv[i] == end; i++)
		end = argv[i] + strlen(argv[i]) + 1;
	title_room = argv[0];
	title_size = (size_t)(end - argv[0]);
#endif
}

#if !defined(HAVE_LIBBSD) && !defined(HAVE_SETPROCTITLE)
/*
 * The title overwrites the arguments, the rest of their room zeroed: an
 * API key given there is gone. A title longer than the room is cut. The
 * caller has copied what it needs of argv first.
 */
void
setproctitle(const char *format, ...)
{
	va_list	ap;
	size_t	at = 0;

	if (title_room == NULL)
		return;
	memset(title_room, 0, title_size);
	if (format[0] == '-')
		format++;
	else
		at = strlcpy(title_room, PACKAGE ": ", title_size);
	if (at < title_size) {
		va_start(ap, format);
		vsnprintf(title_room + at, title_size - at, format, ap);
		va_end(ap);
	}
}
#endif

/* The BSD functions below behave as OpenBSD's, and libbsd's, do. */
#if !defined(HAVE_LIBBSD) && !defined(HAVE_STRLCPY)
size_t
strlcpy(char *dst, const char *src, size_t size)
{
	size_t	len = strlen(src), n;

	if (size != 0) {
		n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return (len);
}
#endif

#if !defined(HAVE_LIBBSD) && !defined(HAVE_STRTONUM)
long long
strtonum(const char *text, long long min, long long max, const char **problem)
{
	long long	 value = 0;
	const char	*why = NULL;
	char		*end;
	int		 saved = errno;

	errno = 0;
	if (min > max)
		why = "invalid";
	else {
		value = strtoll(text, &end, 10);
		if (text == end || *end != '\0')
			why = "invalid";
		else if ((value == LLONG_MIN && errno == ERANGE) ||
		    value < min)
			why = "too small";
		else if ((value == LLONG_MAX && errno == ERANGE) ||
		    value > max)
			why = "too large";
	}
	if (problem != NULL)
		*problem = why;
	if (why == NULL) {
		errno = saved;
		return (value);
	}
	errno = strcmp(why, "invalid") == 0 ? EINVAL : ERANGE;
	return (0);
}
#endif

#if !defined(HAVE_LIBBSD) && !defined(HAVE_REALLOCARRAY)
void *
reallocarray(void *old, size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size) {
		errno = ENOMEM;
		return (NULL);
	}
	return (realloc(old, count * size));
}
#endif
