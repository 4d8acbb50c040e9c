/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool_seal.c: the mover, which seals closed journals into a GDBM file
 * (sealed.c) while the forwarder waits, then deletes them. It waits
 * while logs pour in (SEAL_QUIET_MS, SEAL_BACKLOG in spool.h). The rule
 * that makes it safe is spool_segments.c's: a journal goes only after a
 * sealed file holding all of its records not delivered yet has its name,
 * durably.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "journal.h"
#include "log.h"
#include "sealed.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

/* Journals sealed at one go, so that the forwarder stays responsive. */
#define MOVE_MAX	4

int64_t	(*spool_quiet_clock)(void) = clock_monotonic_ms;

/*
 * Copy the entries of journal segment seg from start on into w. Returns 0
 * when it was read whole, 1 when it is not to be sealed now (damaged, and
 * marked so: left to the reading, which reports what is lost; or a read
 * failed), -1 on error.
 */
static int
seal_journal(struct spool *s, struct sealed_writer *w, const char *work,
    struct segment *seg, uint64_t start)
{
	struct journal_reader	*r;
	const void		*data;
	char			 name[NAME_SIZE];
	uint64_t		 seq;
	size_t			 size;
	int			 found;

	if (spool_names_journal(s, seg->number, name) == -1 ||
	    journal_reader_open(&r, s->dirfd, name) == -1) {
		cause_set(s->error, errno, "journal %s/%s", s->dir, name);
		seg->damaged = errno == EBADMSG;
		return (errno == EBADMSG || transient_error(errno) ?
		    1 : -1);
	}
	found = 0;
	if (journal_reader_damaged(r)) {
		found = -1;
		errno = EBADMSG;
	}
	/* What lies after its end is not its own: a commit that failed. */
	while (found == 0 && journal_reader_next(r) < seg->end &&
	    (found = journal_read(r, -1, &seq, &data, &size)) == 1) {
		found = 0;
		if (seq >= start && sealed_put(w, seq, data, size) == -1) {
			cause_set(s->error, errno, "seal %s/%s into %s", s->dir,
			    name, work);
			found = -2;
		}
	}
	if ((found == -1 && errno == EBADMSG) || (found == 0 &&
	    journal_reader_next(r) != seg->end)) {
		seg->damaged = true;
		found = -1;
	}
	journal_reader_close(r);
	if (found == -1)
		return (1);
	return (found == 0 ? 0 : -1);
}

/* Put the sealed file in place of journals low to high. */
static int
replace_journals(struct spool *s, uint64_t low, uint64_t high,
    uint64_t start, uint64_t end)
{
	struct segment	*seg;
	size_t		 i;

	for (i = 0; i < s->count; ) {
		seg = &s->segments[i];
		if (seg->kind != SEGMENT_JOURNAL || seg->number < low ||
		    seg->number > high) {
			i++;
			continue;
		}
		spool_segments_remove_file(s, seg);
		spool_segments_drop(s, i);
	}
	if (spool_segments_add(s, SEGMENT_SEALED, 0, start, end) == -1)
		return (-1);
	spool_segments_sort(s);
	return (0);
}

/* What the mover was doing to which file when it failed. */
static int
mover_error(struct spool *s, const char *doing, const char *name)
{
	cause_set(s->error, errno, "%s %s/%s", doing, s->dir, name);
	return (-1);
}

/* Is sealing due: no commit for a while, or many journals waiting? */
static bool
sealing_due(struct spool *s)
{
	int64_t	committed_ms;
	size_t	i, closed = 0;

	pthread_mutex_lock(&s->append_lock);
	committed_ms = s->committed_ms;
	pthread_mutex_unlock(&s->append_lock);
	if (committed_ms == INT64_MIN ||
	    spool_quiet_clock() - committed_ms >= SEAL_QUIET_MS)
		return (true);
	for (i = 0; i < s->count; i++)
		if (s->segments[i].kind == SEGMENT_JOURNAL &&
		    s->segments[i].end != GROWING &&
		    s->segments[i].end > s->head)
			closed++;
	return (closed >= SEAL_BACKLOG);
}

/*
 * Seal the oldest closed journals into one GDBM file, from the saved head
 * on (records past it may be delivered, but a crash would go back to it):
 * GDBM writes it under a temporary name, syncs it, and only then is it
 * named and are the journals deleted. A damaged journal is never sealed:
 * it is read where it is, and kept. Returns 1 if it moved any, 0 if there
 * was nothing to move or it is not due, -1 on error.
 */
int
spool_seal_journals(struct spool *s)
{
	struct sealed_writer	*w = NULL;
	struct segment		*seg;
	char			 work[NAME_SIZE], name[NAME_SIZE];
	char			 path[PATH_MAX];
	uint64_t		 start = 0, end = 0, low = 0, high = 0;
	size_t			 i, moved = 0;
	int			 status = 0;

	spool_segments_track(s);
	if (!sealing_due(s))
		return (0);
	for (i = 0; i < s->count && moved < MOVE_MAX && status == 0; i++) {
		seg = &s->segments[i];
		if (seg->kind != SEGMENT_JOURNAL || seg->end == GROWING ||
		    seg->end <= s->saved_head || (seg->damaged && w == NULL))
			continue;
		if (seg->damaged)
			break;
		if (w == NULL) {
			start = seg->first > s->saved_head ? seg->first :
			    s->saved_head;
			low = seg->number;
			if (spool_names_file(s, work, BUILD_SUFFIX) == -1 ||
			    sealed_create(&w, s->dirfd, work,
			    spool_names_path(s, work, path)) == -1)
				return (mover_error(s, "create", work));
		}
		if ((status = seal_journal(s, w, work, seg, start)) == 0) {
			end = seg->end;
			high = seg->number;
			moved++;
		}
	}
	if (moved == 0 || status == -1) {
		sealed_abandon(w);
		return (status == -1 ? -1 : 0);
	}
	/*
	 * EEXIST: sealed before a crash that kept the journals, maybe before
	 * its name was synced: the journals go only once it is.
	 */
	if (spool_names_sealed(s, start, end, name) == -1) {
		sealed_abandon(w);
		return (mover_error(s, "name", work));
	}
	if (sealed_finish(w, end, name) == -1 && (errno != EEXIST ||
	    fsync(s->dirfd) == -1))
		return (mover_error(s, "seal", name));
	if (replace_journals(s, low, high, start, end) == -1)
		return (mover_error(s, "seal", name));
	log_event(LEVEL_DEBUG, "journals_sealed", "{s:s, s:I, s:I}", "path",
	    spool_names_path(s, name, path), "first", (json_int_t)start, "end",
	    (json_int_t)end);
	return (1);
}
