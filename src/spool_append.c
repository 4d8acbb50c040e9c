/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool_append.c: the journal that takes appends, and the next one.
 *
 * The listener's thread appends and commits to the newest journal and
 * begins the next one when it is full. Under load a spare of zeros is
 * written ahead by the forwarder's thread, so that a commit overwrites
 * blocks instead of growing the file (see journal.c).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <jansson.h>

#include "journal.h"
#include "log.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

/* Appends stop while the file system has less than this free. */
#define DISK_MARGIN	(8 * 1024 * 1024)
#define DISK_CHECK_MS	100
/* A spare holds a journal and room for the group that crosses the line. */
#define SPARE_EXTRA	(256 * 1024)
#define SPARE_RETRY_MS	1000
/* Spares are made only once a journal holds this much: under load. */
#define SPARE_AFTER	(256 * 1024)

/* Is there room for size more bytes, under the cap and on the disk? */
static int
room_for(struct spool *s, size_t size)
{
	struct statvfs	fs;
	uint64_t	bytes = s->bytes + s->pending_bytes;
	int64_t		now;

	if (s->max_bytes > 0 && bytes + size > s->max_bytes) {
		cause_set(s->append_error, 0, "spool full: %llu bytes stored, "
		    "the limit is %llu (--max-spool-size)",
		    (unsigned long long)bytes,
		    (unsigned long long)s->max_bytes);
		return (-1);
	}
	now = clock_monotonic_ms();
	if (s->disk_low || now - s->disk_checked_ms >= DISK_CHECK_MS) {
		s->disk_checked_ms = now;
		if (fstatvfs(s->dirfd, &fs) == 0)
			s->disk_low = (uint64_t)fs.f_bavail * fs.f_frsize <
			    DISK_MARGIN + size;
	}
	if (s->disk_low) {
		cause_set(s->append_error, 0, "disk full: less than %d MiB "
		    "free in %s", DISK_MARGIN >> 20, s->dir);
		return (-1);
	}
	return (0);
}

/*
 * No journal could be begun for lack of space. A spool with records to
 * deliver opens all the same, refusing logs until a journal can be
 * begun: delivering it is what frees the disk.
 */
static bool
full_disk_with_records(struct spool *s)
{
	if ((errno != ENOSPC && errno != EDQUOT) || s->count == 0)
		return (false);
	log_event(LEVEL_ERROR, "journal_error", "{s:s, s:s}", "path", s->path,
	    "error", s->error);
	s->error[0] = '\0';
	return (true);
}

/*
 * Begin the first journal, where the records go on; a full file table or
 * an I/O error is tried again a few times, as a read at start is, the
 * error each time under the next number: a new file, on other blocks.
 * Its first record is first. A full disk is not an error when the spool
 * has records to deliver (full_disk_with_records).
 */
int
spool_append_begin_journal(struct spool *s, uint64_t first)
{
	char		name[NAME_SIZE], path[PATH_MAX];
	int		tries, status;

	for (tries = 1;; tries++) {
		s->journal_number = s->tracked + (uint64_t)tries;
		if ((status = spool_names_journal(s, s->journal_number,
		    name)) == -1 || (status = journal_create(&s->journal,
		    s->dirfd, name, first)) == 0 ||
		    !transient_error(errno) || tries == START_TRIES)
			break;
		delay_ms((int64_t)START_RETRY_MS << (tries - 1));
	}
	if (status == -1 || spool_segments_add(s, SEGMENT_JOURNAL,
	    s->journal_number, first, GROWING) == -1) {
		cause_set(s->error, errno, "begin journal %s",
		    spool_names_path(s, name, path));
		return (full_disk_with_records(s) ? 0 : -1);
	}
	s->tracked = s->journal_number;
	return (0);
}

static void	rotate(struct spool *);

/*
 * Add a record to the next commit; *seq is its key. It is not stored
 * until spool_commit() returns 0. The listener's thread only.
 */
int
spool_append(struct spool *s, const void *value, size_t size, uint64_t *seq)
{
	int	status = -1;

	/* The disk was full at open: a journal is begun once it is not. */
	if (s->journal == NULL)
		rotate(s);
	pthread_mutex_lock(&s->append_lock);
	if (s->journal == NULL)
		cause_set(s->append_error, 0, "disk full: no journal can be "
		    "begun in %s", s->dir);
	else if (room_for(s, size) == 0) {
		if (journal_add(s->journal, value, size, seq) == -1)
			cause_set(s->append_error, errno, "journal");
		else {
			s->next = *seq + 1;
			s->pending_bytes += size;
			status = 0;
		}
	}
	pthread_mutex_unlock(&s->append_lock);
	return (status);
}

/*
 * Make every record appended since the last commit durable, with one
 * sync. On failure none of them is stored, and their keys are given
 * again. The listener's thread only.
 */
int
spool_commit(struct spool *s)
{
	int	status, saved;

	if (s->journal == NULL) {
		errno = ENOSPC;
		return (-1);
	}
	status = journal_commit(s->journal);
	saved = errno;
	pthread_mutex_lock(&s->append_lock);
	if (status == 0) {
		s->committed = journal_committed(s->journal);
		s->committed_ms = spool_quiet_clock();
		s->bytes += s->pending_bytes;
	} else {
		cause_set(s->append_error, saved, "journal: write");
		s->next = journal_next(s->journal);
		/* A bad block stays bad: the next commit goes to a new file. */
		s->commit_failed = saved != ENOSPC && saved != EDQUOT;
	}
	s->pending_bytes = 0;
	pthread_mutex_unlock(&s->append_lock);
	return (status);
}

/*
 * The next commits go to a new journal: made from the spare if there is
 * one, else begun from nothing.
 */
static void
rotate(struct spool *s)
{
	struct journal	*fresh = NULL, *old;
	char		 name[NAME_SIZE], spare[NAME_SIZE], path[PATH_MAX];
	bool		 use_spare;
	int		 status = -1;
	int64_t		 now = clock_monotonic_ms();
	uint64_t	 first = s->journal != NULL ? journal_next(s->journal) :
			    s->next;

	if (now - s->rotate_failed_ms < SPARE_RETRY_MS)
		return;
	/* spare_ready stays set meanwhile, so no new spare is begun. */
	pthread_mutex_lock(&s->append_lock);
	use_spare = s->spare_ready;
	pthread_mutex_unlock(&s->append_lock);
	if (spool_names_journal(s, s->journal_number + 1, name) == 0 &&
	    (!use_spare || spool_names_journal(s, SPARE, spare) == 0))
		status = use_spare ? journal_adopt(&fresh, s->dirfd, spare,
		    name, first) : journal_create(&fresh, s->dirfd, name,
		    first);
	if (status == -1) {
		log_event(LEVEL_WARN, "journal_error", "{s:s, s:s}", "path",
		    spool_names_path(s, name, path), "error", strerror(errno));
		s->rotate_failed_ms = now;
	}
	pthread_mutex_lock(&s->append_lock);
	if (use_spare)
		s->spare_ready = false;
	old = s->journal;
	if (status == 0) {
		s->journal = fresh;
		s->journal_number++;
		s->commit_failed = false;
		s->committed = journal_committed(fresh);
		s->preallocated = use_spare;
	}
	pthread_mutex_unlock(&s->append_lock);
	if (status == 0)
		journal_close(old);
}

/*
 * Begin a new journal if this one is long enough, or if it was begun from
 * nothing and a spare is ready. The listener's thread, after it answered
 * the calls of a commit: no call waits for the files this makes.
 */
void
spool_roll(struct spool *s)
{
	bool	full;

	pthread_mutex_lock(&s->append_lock);
	full = s->committed >= s->journal_size ||
	    (!s->preallocated && s->spare_ready) || s->commit_failed;
	pthread_mutex_unlock(&s->append_lock);
	if (full)
		rotate(s);
}

const char *
spool_append_error(struct spool *s)
{
	return (s->append_error);
}

/*
 * Have a spare ready for the next journal, if logs pour in. The
 * forwarder's thread, when it waits or replays: writing megabytes of zeros
 * is no work for the listener's. The spare takes disk space as records
 * do, so there is none unless it fits under the cap beside them.
 */
void
spool_append_prepare_spare(struct spool *s)
{
	char	name[NAME_SIZE], path[PATH_MAX];
	int64_t	now = clock_monotonic_ms();
	off_t	size = s->journal_size + SPARE_EXTRA;
	bool	wanted;

	pthread_mutex_lock(&s->append_lock);
	wanted = !s->spare_ready && (s->committed >= SPARE_AFTER ||
	    s->journal_number != s->opened_journal) && (s->max_bytes == 0 ||
	    s->bytes + s->pending_bytes + (uint64_t)size <= s->max_bytes);
	pthread_mutex_unlock(&s->append_lock);
	if (!wanted || now - s->spare_tried_ms < SPARE_RETRY_MS)
		return;
	s->spare_tried_ms = now;
	if (spool_names_journal(s, SPARE, name) == -1 ||
	    journal_prepare(s->dirfd, name, size) == -1) {
		log_event(LEVEL_WARN, "journal_error", "{s:s, s:s}", "path",
		    spool_names_path(s, name, path), "error", strerror(errno));
		return;
	}
	pthread_mutex_lock(&s->append_lock);
	s->spare_ready = true;
	pthread_mutex_unlock(&s->append_lock);
}

static int
store_append(void *arg, const void *data, size_t size, uint64_t *seq)
{
	return (spool_append(arg, data, size, seq));
}

static int
store_commit(void *arg)
{
	return (spool_commit(arg));
}

static void
store_roll(void *arg)
{
	spool_roll(arg);
}

static const char *
store_error(void *arg)
{
	return (spool_append_error(arg));
}

/* The spool as the listener's store: its appends, commits and rotation. */
void
spool_store(struct spool *s, struct store *store)
{
	store->arg = s;
	store->append = store_append;
	store->commit = store_commit;
	store->roll = store_roll;
	store->error = store_error;
}
