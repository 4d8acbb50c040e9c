/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool.c: the logs not delivered yet, and the spool's public interface.
 *
 * Appends go to a journal (spool_append.c, journal.c): one write and one
 * fdatasync per group of calls acknowledge them. The forwarder's thread
 * reads at the head, in arrival order, from journals and sealed GDBM files
 * alike, and when it has time seals closed journals into GDBM
 * (spool_segments.c). No file is changed in place once synced, so a kill
 * at any instant leaves files that the next start opens as they are: it
 * never needs to recover anything before it serves, and never refuses to.
 * The one exception is a spool of echopost 1, taken up once after an
 * upgrade: gdbm_recover runs on it at open if it was not closed cleanly.
 * spool_int.h says which thread owns what.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "files.h"
#include "journal.h"
#include "log.h"
#include "position.h"
#include "sealed.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

/*
 * The head is saved after this many removals, or this long after the first
 * one not saved: a crash repeats at most that many deliveries.
 */
#define REMOVALS_PER_SAVE 1024
#define SAVE_AFTER_MS	100
/* An import or a move that failed (a full disk) is tried again after. */
#define RETRY_MS	1000

/*
 * A spool at path, DIR/NAME, for people: its files are reached through
 * dirfd, DIR's descriptor, which it keeps a copy of.
 */
static struct spool *
new_spool(const char *path)
{
	struct spool	*s;
	const char	*slash;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return (NULL);
	s->dirfd = -1;
	slash = strrchr(path, '/');
	if ((s->path = strdup(path)) == NULL ||
	    (s->name = strdup(slash != NULL ? slash + 1 : path)) == NULL ||
	    (s->dir = slash == NULL ? strdup(".") : slash == path ?
	    strdup("/") : strndup(path, (size_t)(slash - path))) == NULL) {
		free(s->name);
		free(s->path);
		free(s);
		return (NULL);
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->append_lock, NULL);
	s->retry_ms = -RETRY_MS;
	s->bound_first = s->bound_end = UINT64_MAX;
	s->spare_tried_ms = s->rotate_failed_ms = -RETRY_MS;
	s->committed_ms = INT64_MIN;
	return (s);
}

static void
free_spool(struct spool *s)
{
	spool_segments_close_cursors(s);
	journal_close(s->journal);
	position_close(s->position);
	free(s->given_up);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->append_lock);
	if (s->dirfd != -1)
		close(s->dirfd);
	free(s->segments);
	free(s->dir);
	free(s->name);
	free(s->path);
	free(s);
}

/* The end of the newest segment: where numbers go on. */
static uint64_t
last_end(const struct spool *s)
{
	uint64_t	end = s->head > s->numbers_from ? s->head :
			    s->numbers_from;
	size_t		i;

	for (i = 0; i < s->count; i++)
		if (s->segments[i].end != GROWING && s->segments[i].end > end)
			end = s->segments[i].end;
	return (end);
}

/* Bytes in the files of the segments the head has not passed, about. */
static uint64_t
segment_bytes(const struct spool *s)
{
	struct stat	sb;
	char		name[NAME_SIZE];
	uint64_t	total = 0;
	size_t		i;

	for (i = 0; i < s->count; i++) {
		if (s->segments[i].end <= s->head)
			continue;
		if (spool_segments_name(s, &s->segments[i], name) == 0 &&
		    fstatat(s->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
			total += (uint64_t)sb.st_size;
	}
	return (total);
}

/*
 * DIR, for every file of the spool to be named in: the caller's
 * descriptor, of the directory it checked. The owner's only, when files
 * are written in it.
 */
static int
open_dir(struct spool *s, int dirfd)
{
	struct stat	sb;

	s->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (s->dirfd == -1 || fstat(s->dirfd, &sb) == -1) {
		cause_set(s->error, errno, "%s", s->dir);
		return (-1);
	}
	if (!s->reader && sb.st_uid != geteuid()) {
		cause_set(s->error, 0, "%s: not the directory of the user "
		    "echopost runs as", s->dir);
		return (-1);
	}
	return (0);
}

/*
 * The position file, name: 1 with the head it saved, 0 when it saved none
 * (as position_open). One that cannot be read, after a few tries, is set
 * aside and begun again: the head goes back to the oldest file, which
 * costs duplicates, never a record. If not even that can be done, the
 * spool runs without one (s->position NULL): it delivers, but cannot
 * delete what it delivered, and says so at close.
 */
static int
open_position(struct spool *s, const char *name)
{
	char	path[PATH_MAX];
	int	found, tries, error;

	for (tries = 1; (found = position_open(&s->position, s->dirfd, name,
	    &s->head)) == -1 && transient_error(errno) &&
	    tries < START_TRIES; tries++)
		delay_ms((int64_t)START_RETRY_MS << (tries - 1));
	if (found != -1 || (error = errno) == ENAMETOOLONG || error == EACCES)
		return (found);
	if (faccessat(s->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		spool_names_set_aside(s, name, "position_damaged",
		    strerror(error));
	if ((found = position_open(&s->position, s->dirfd, name,
	    &s->head)) == -1)
		log_event(LEVEL_ERROR, "spool_error", "{s:s, s:s}", "path",
		    spool_names_path(s, name, path), "error", strerror(errno));
	s->head = 0;
	return (0);
}

static int
open_writer(struct spool *s, int dirfd)
{
	char		name[NAME_SIZE];
	uint64_t	lowest;
	bool		legacy = false;
	int		found;

	if (open_dir(s, dirfd) == -1)
		return (-1);
	spool_given_up_load(s);
	if (spool_names_file(s, name, POSITION_SUFFIX) == -1 ||
	    (found = open_position(s, name)) == -1) {
		cause_set(s->error, errno, "%s/%s", s->dir, name);
		return (-1);
	}
	s->head_exact = found == 1;
	s->saved_head = s->head;
	if (spool_files_scan(s, &legacy) == -1 ||
	    (legacy && spool_legacy_take_up(s) == -1))
		return (-1);
	/*
	 * Not saved yet: the oldest file, or the guess an old spool gave.
	 * Unless a journal had to be kept aside: what it held lies below.
	 */
	lowest = s->count > 0 ? s->segments[0].first : 0;
	if (!s->head_exact && !s->kept_at_open && (!s->legacy_due ||
	    lowest < s->head))
		s->head = lowest;
	if (s->journal == NULL &&
	    spool_append_begin_journal(s, last_end(s)) == -1)
		return (-1);
	s->journal_number = s->opened_journal = s->tracked;
	s->next = s->journal != NULL ? journal_next(s->journal) : last_end(s);
	s->committed = s->journal != NULL ? journal_committed(s->journal) : 0;
	s->bytes = segment_bytes(s);
	return (0);
}

static int
open_reader(struct spool *s, int dirfd)
{
	struct sealed	*old;
	char		 name[NAME_SIZE];
	uint64_t	 head, next;
	bool		 legacy = false;
	int		 found = 0;

	if (open_dir(s, dirfd) == -1)
		return (-1);
	spool_given_up_load(s);
	if (spool_names_file(s, name, POSITION_SUFFIX) == -1)
		return (-1);
	/* As a writer would set it aside: count from the first record. */
	if ((found = position_read(s->dirfd, name, &s->head)) == -1) {
		cause_set(s->error, 0, "%s/%s: %s: counted from the first "
		    "record", s->dir, name, strerror(errno));
		found = 0;
	}
	if (spool_files_scan(s, &legacy) == -1)
		return (-1);
	if (legacy && sealed_open(&old, s->dirfd, s->name, s->path) == 0) {
		if (sealed_meta(old, "head", &head) == 1 &&
		    sealed_meta(old, "next", &next) == 1 && head < next &&
		    spool_segments_add(s, SEGMENT_LEGACY, 0, head, next) == 0)
			spool_segments_sort(s);
		sealed_close(old);
	} else if (legacy)
		cause_set(s->error, errno == EBADMSG ? 0 : errno, "%s, a spool "
		    "of echopost 1, needs recovery; the next run imports it, "
		    "and its records are not counted here", s->path);
	if (found == 0 && s->count > 0)
		s->head = s->segments[0].first;
	if (s->next < last_end(s))
		s->next = last_end(s);
	s->bytes = segment_bytes(s);
	return (0);
}

/* The spool, opened; or NULL and why, nothing of it left behind. */
static struct spool *
opened(struct spool *s, int status, char cause[CAUSE_SIZE])
{
	if (status == 0)
		return (s);
	if (s->error[0] != '\0')
		cause_set(cause, 0, "%s", s->error);
	else
		cause_set(cause, 0, "%s", strerror(errno));
	free_spool(s);
	return (NULL);
}

/*
 * Open or create the spool at path (its files in the directory dirfd),
 * with journals of journal_size bytes (0: the default) and at most
 * max_bytes of records (0: no limit but the disk's).
 */
struct spool *
spool_open(int dirfd, const char *path, uint64_t max_bytes,
    off_t journal_size, char cause[CAUSE_SIZE])
{
	struct spool	*s;

	if ((s = new_spool(path)) == NULL) {
		cause_set(cause, 0, "%s", strerror(errno));
		return (NULL);
	}
	s->max_bytes = max_bytes;
	s->journal_size = journal_size > 0 ? journal_size : JOURNAL_SIZE;
	return (opened(s, open_writer(s, dirfd), cause));
}

/*
 * Open the spool for reading only, beside a running owner. A part it
 * cannot show is named by spool_error() after the open.
 */
struct spool *
spool_open_reader(int dirfd, const char *path, char cause[CAUSE_SIZE])
{
	struct spool	*s;

	if ((s = new_spool(path)) == NULL) {
		cause_set(cause, 0, "%s", strerror(errno));
		return (NULL);
	}
	s->reader = true;
	return (opened(s, open_reader(s, dirfd), cause));
}

/* An echopost 1 spool is imported before anything is read or moved. */
static int
imported(struct spool *s)
{
	if (!s->legacy_due)
		return (0);
	if (clock_monotonic_ms() - s->retry_ms < RETRY_MS)
		return (-1);	/* s->error still says why */
	if (spool_legacy_import(s) == -1) {
		s->retry_ms = clock_monotonic_ms();
		return (-1);
	}
	return (0);
}

/* Save the head when enough was removed, or a removal waited long enough. */
static int
save_if_due(struct spool *s)
{
	if (s->removals >= REMOVALS_PER_SAVE || (s->removals > 0 &&
	    clock_monotonic_ms() - s->removed_ms >= SAVE_AFTER_MS))
		return (spool_segments_save_position(s));
	return (0);
}

/*
 * Seal closed journals into GDBM, import an echopost 1 spool, save the
 * head if due, have a spare ready. The forwarder's thread, while it waits.
 */
int
spool_settle(struct spool *s)
{
	int	status = 0;

	pthread_mutex_lock(&s->lock);
	if (imported(s) == -1)
		status = -1;
	else if (clock_monotonic_ms() - s->retry_ms >= RETRY_MS &&
	    spool_seal_journals(s) == -1) {
		s->retry_ms = clock_monotonic_ms();
		status = -1;
	}
	if (save_if_due(s) == -1)
		status = -1;
	pthread_mutex_unlock(&s->lock);
	spool_append_prepare_spare(s);
	return (status);
}

/* Removals so far are on disk when this returns 0. */
int
spool_sync(struct spool *s)
{
	int	status;

	pthread_mutex_lock(&s->lock);
	status = s->removals > 0 ? spool_segments_save_position(s) : 0;
	pthread_mutex_unlock(&s->lock);
	return (status);
}

/*
 * The next record to deliver: the head's first, then each after the last
 * one handed out. 1, its number and a malloc'd copy; 0 if no more is
 * stored yet; -1 on error.
 */
int
spool_next(struct spool *s, uint64_t *seq, void **value, size_t *size)
{
	int	status;

	pthread_mutex_lock(&s->lock);
	if ((status = imported(s)) == 0) {
		spool_segments_track(s);
		status = spool_segments_read_next(s, seq, value, size);
	}
	pthread_mutex_unlock(&s->lock);
	/* Logs may pour in during a long replay too. */
	spool_append_prepare_spare(s);
	return (status);
}

/*
 * Remove record seq, of size bytes, handed out by spool_next. Records go
 * in the order they were handed out: the head moves past seq, and past
 * any gap behind it when seq was the last one handed out.
 */
int
spool_remove(struct spool *s, uint64_t seq, size_t size)
{
	uint64_t	head;
	int		status;

	pthread_mutex_lock(&s->lock);
	if (seq >= s->head)
		s->head = seq + 1 == s->handed ? s->read : seq + 1;
	head = s->head;
	if (s->removals++ == 0)
		s->removed_ms = clock_monotonic_ms();
	status = save_if_due(s);
	pthread_mutex_unlock(&s->lock);
	/*
	 * After a restart the count began as the size of the files, which is
	 * more than their records: once all is delivered, nothing counts.
	 */
	pthread_mutex_lock(&s->append_lock);
	s->bytes = head >= s->next ? 0 : s->bytes - (size < s->bytes ? size :
	    s->bytes);
	pthread_mutex_unlock(&s->append_lock);
	return (status);
}

/*
 * Record seq: 1 and a malloc'd copy in *value, 0 if absent or delivered,
 * -1 on error. For a reader.
 */
int
spool_get(struct spool *s, uint64_t seq, void **value, size_t *size)
{
	int	status;

	pthread_mutex_lock(&s->lock);
	status = seq < s->head ? 0 : spool_segments_read(s, seq, value, size);
	pthread_mutex_unlock(&s->lock);
	return (status);
}

/* The range of keys that may hold records: [*head, *next). Any thread. */
void
spool_range(struct spool *s, uint64_t *head, uint64_t *next)
{
	pthread_mutex_lock(&s->lock);
	*head = s->head;
	pthread_mutex_lock(&s->append_lock);
	*next = s->next;
	pthread_mutex_unlock(&s->append_lock);
	pthread_mutex_unlock(&s->lock);
}

/* Records not delivered yet, gaps included. Any thread. */
uint64_t
spool_count(struct spool *s)
{
	uint64_t	head, next;

	spool_range(s, &head, &next);
	return (next > head ? next - head : 0);
}

/*
 * Nothing to deliver: no record, and no echopost 1 file waiting to be
 * imported. The forwarder's thread.
 */
bool
spool_empty(struct spool *s)
{
	return (spool_count(s) == 0 && !s->legacy_due);
}

/* Bytes in records not delivered yet, about (more after a crash). */
uint64_t
spool_size(struct spool *s)
{
	uint64_t	bytes;

	pthread_mutex_lock(&s->append_lock);
	bytes = s->bytes;
	pthread_mutex_unlock(&s->append_lock);
	return (bytes);
}

const char *
spool_error(struct spool *s)
{
	return (s->error);
}

/*
 * Records reported missing so far (record_missing): lost to damage; and
 * in *maybe, numbers reported that may never have been given, where the
 * end of a journal could not be read.
 */
uint64_t
spool_missing(struct spool *s, uint64_t *maybe)
{
	uint64_t	missing;

	pthread_mutex_lock(&s->lock);
	missing = s->missing;
	*maybe = s->maybe_missing;
	pthread_mutex_unlock(&s->lock);
	return (missing);
}

/*
 * Nothing is left: every file goes, the position last, so that a crash
 * in between leaves files whose records it says were delivered.
 */
static int
remove_all(struct spool *s)
{
	char	name[NAME_SIZE];

	if (spool_given_up_remove(s) == -1)
		return (-1);
	spool_segments_close_cursors(s);
	journal_close(s->journal);
	s->journal = NULL;
	while (s->count > 0) {
		spool_segments_remove_file(s, &s->segments[0]);
		spool_segments_drop(s, 0);
	}
	if (spool_names_journal(s, SPARE, name) == 0)
		spool_names_remove(s, name);
	if (spool_names_file(s, name, POSITION_SUFFIX) == -1 ||
	    fsync(s->dirfd) == -1 || (unlinkat(s->dirfd, name, 0) == -1 &&
	    (errno != ENOENT || s->position != NULL))) {
		cause_set(s->error, errno, "remove %s/%s", s->dir, name);
		return (-1);
	}
	return (0);
}

/*
 * Close the spool. Its files stay as they are, with the head saved, or
 * all go when the spool is empty and remove_if_empty is set. The
 * listener has stopped by then.
 */
int
spool_close(struct spool *s, int remove_if_empty)
{
	int	status = 0;

	if (s == NULL)
		return (0);
	if (!s->reader) {
		pthread_mutex_lock(&s->lock);
		if (remove_if_empty && !s->legacy_due && s->head >= s->next)
			status = remove_all(s);
		else if (s->removals > 0 || s->position == NULL)
			status = spool_segments_save_position(s);
		pthread_mutex_unlock(&s->lock);
	}
	if (status != 0)
		log_event(LEVEL_ERROR, "spool_error", "{s:s, s:s}", "path",
		    s->path, "error", s->error);
	free_spool(s);
	return (status);
}
