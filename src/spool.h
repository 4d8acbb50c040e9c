/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool.h: the logs not delivered yet: journals under DIR that take
 * appends, and GDBM files they are sealed into, written once.
 *
 * Records are keyed by a 64-bit sequence number given at append, so the
 * oldest is always at "head" and replay order is arrival order, also across
 * restarts. The forwarder reads ahead of the head (spool_next) and removes
 * what it was handed in that order; the head, saved now and then, is the
 * oldest not removed. Two threads share it: the listener's (main) thread
 * may call append, commit, roll and append_error; the forwarder's settle,
 * next, remove, sync, error and given_up; any thread range, count and
 * size. A reader (--status, --dump, --give-up) is one thread's alone.
 * spool_int.h says who owns which field.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "echopost.h"

/*
 * Sealing copies each record once more, with a few system calls each, so
 * it waits while logs pour in: until no commit came for SEAL_QUIET_MS, or
 * until SEAL_BACKLOG closed journals wait for it.
 */
#define SEAL_QUIET_MS	500
#define SEAL_BACKLOG	16

/*
 * The clock SEAL_QUIET_MS is counted by: clock_monotonic_ms, unless the
 * unit tests set their own so as not to wait it out.
 */
extern int64_t	(*spool_quiet_clock)(void);

struct spool;

struct spool	*spool_open(int, const char *, uint64_t, off_t,
		    char [CAUSE_SIZE]);
struct spool	*spool_open_reader(int, const char *, char [CAUSE_SIZE]);
int		 spool_get(struct spool *, uint64_t, void **, size_t *);
void		 spool_range(struct spool *, uint64_t *, uint64_t *);
int		 spool_append(struct spool *, const void *, size_t, uint64_t *);
int		 spool_commit(struct spool *);
void		 spool_roll(struct spool *);
const char	*spool_append_error(struct spool *);
void		 spool_store(struct spool *, struct store *);
int		 spool_settle(struct spool *);
int		 spool_sync(struct spool *);
int		 spool_next(struct spool *, uint64_t *, void **, size_t *);
int		 spool_remove(struct spool *, uint64_t, size_t);
uint64_t	 spool_count(struct spool *);
bool		 spool_empty(struct spool *);
uint64_t	 spool_size(struct spool *);
int		 spool_close(struct spool *, int);
const char	*spool_error(struct spool *);
uint64_t	 spool_missing(struct spool *, uint64_t *);
bool		 spool_given_up(struct spool *, uint64_t);
uint64_t	 spool_given_up_count(struct spool *);
int		 spool_give_up(struct spool *, uint64_t, uint64_t);

/* A file of the spool that cannot be read whole: its name, and why. */
typedef void	 (*spool_report_fn)(void *, const char *, const char *);
int		 spool_check(struct spool *, spool_report_fn, void *);

#endif
