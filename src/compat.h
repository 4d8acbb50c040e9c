/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * compat.h: what differs between Linux, macOS and the BSDs, in one place.
 * config.h includes it last, so every module sees it; configure says
 * which half of each #if applies (see Platforms in echopost(1) for what
 * each platform's sync promises, and README for which are tested).
 *
 * The BSD functions come from the C library, else from libbsd, else from
 * compat.c where a faithful one is short; configure stops for the rest.
 */
#ifndef COMPAT_H
#define COMPAT_H

#include <sys/types.h>
#include <sys/queue.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Data and size on stable storage: fdatasync, F_FULLFSYNC on macOS. */
int	 compat_sync_data(int);
/* The same with all of the file's metadata: fsync, F_FULLFSYNC on macOS. */
int	 compat_sync_file(int);

/* pipe2(2); without it, pipe and fcntl, with a window before CLOEXEC. */
int	 compat_pipe2(int [2], int);

/* A pending signal of set, taken, without waiting: 0 if none, -1 on error. */
int	 compat_signal_take(const sigset_t *);

/*
 * A condition variable for timed waits, and a deadline ms from now on its
 * clock: CLOCK_MONOTONIC where pthread_condattr_setclock(3) exists, else
 * CLOCK_REALTIME, which a step of the wall clock lengthens or cuts.
 */
int	 compat_cond_init(pthread_cond_t *);
void	 compat_cond_deadline(struct timespec *, int64_t);

/* Before setproctitle: libbsd's needs argv, compat.c's takes its room. */
void	 compat_setproctitle_init(int, char *[]);
#if !defined(HAVE_LIBBSD) && !defined(HAVE_SETPROCTITLE)
void	 setproctitle(const char *, ...)
	    __attribute__((__format__(__printf__, 1, 2)));
#endif
#if !defined(HAVE_LIBBSD) && !defined(HAVE_STRLCPY)
size_t	 strlcpy(char *, const char *, size_t);
#endif
#if !defined(HAVE_LIBBSD) && !defined(HAVE_STRTONUM)
long long strtonum(const char *, long long, long long, const char **);
#endif
#if !defined(HAVE_LIBBSD) && !defined(HAVE_REALLOCARRAY)
void	*reallocarray(void *, size_t, size_t);
#endif

#ifndef STAILQ_FOREACH_SAFE
#define STAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = STAILQ_FIRST((head));				\
	    (var) && ((tvar) = STAILQ_NEXT((var), field), 1);		\
	    (var) = (tvar))
#endif

/* be64enc(3) and its kin: <sys/endian.h> on FreeBSD and libbsd. */
#ifdef HAVE_ENDIAN_CODEC
#include <sys/endian.h>
#else
static inline uint32_t
be32dec(const void *pp)
{
	const uint8_t	*p = pp;

	return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3]);
}

static inline uint64_t
be64dec(const void *pp)
{
	const uint8_t	*p = pp;

	return ((uint64_t)be32dec(p) << 32 | be32dec(p + 4));
}

static inline uint32_t
le32dec(const void *pp)
{
	const uint8_t	*p = pp;

	return ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0]);
}

static inline uint64_t
le64dec(const void *pp)
{
	const uint8_t	*p = pp;

	return ((uint64_t)le32dec(p + 4) << 32 | le32dec(p));
}

static inline void
be32enc(void *pp, uint32_t u)
{
	uint8_t	*p = pp;

	p[0] = u >> 24;
	p[1] = u >> 16;
	p[2] = u >> 8;
	p[3] = u;
}

static inline void
be64enc(void *pp, uint64_t u)
{
	uint8_t	*p = pp;

	be32enc(p, (uint32_t)(u >> 32));
	be32enc(p + 4, (uint32_t)u);
}

static inline void
le32enc(void *pp, uint32_t u)
{
	uint8_t	*p = pp;

	p[0] = u;
	p[1] = u >> 8;
	p[2] = u >> 16;
	p[3] = u >> 24;
}

static inline void
le64enc(void *pp, uint64_t u)
{
	uint8_t	*p = pp;

	le32enc(p, (uint32_t)u);
	le32enc(p + 4, (uint32_t)(u >> 32));
}
#endif

#endif
