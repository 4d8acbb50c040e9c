/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool_segments.c: the row of segments, reading at the head, and saving
 * the head (spool_seal.c seals closed journals into GDBM).
 *
 * Why no record is ever lost to a crash (see also files.h for power loss):
 * a record is acknowledged once its journal entry is synced, and from then
 * on it is in at least one file that is whole: the journal, which is only
 * appended to, or a sealed file, which is never written after its sync.
 * A journal is deleted only after a sealed file holding all of its records
 * not delivered yet has its name, durably; a segment of any kind is
 * deleted only once the head saved in the position file is past its end.
 * Segments may overlap (a crash between sealing and deleting, an imported
 * echopost 1 spool beside its journals); a record is missing only when no
 * segment that should hold it has it.
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
#include "position.h"
#include "sealed.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

int
spool_segments_add(struct spool *s, enum segment_kind kind, uint64_t number,
    uint64_t first, uint64_t end)
{
	struct segment	*grown;
	size_t		 size;

	if (s->count == s->allocated) {
		size = s->allocated > 0 ? 2 * s->allocated : 16;
		if ((grown = reallocarray(s->segments, size,
		    sizeof *grown)) == NULL)
			return (-1);
		s->segments = grown;
		s->allocated = size;
	}
	s->segments[s->count].kind = kind;
	s->segments[s->count].number = number;
	s->segments[s->count].first = first;
	s->segments[s->count].end = s->segments[s->count].named_end = end;
	s->segments[s->count].damaged = false;
	s->count++;
	return (0);
}

/* Forget segment i; its file is someone else's business. */
void
spool_segments_drop(struct spool *s, size_t i)
{
	struct segment	*seg = &s->segments[i];

	if (seg->kind == SEGMENT_JOURNAL && seg->number == s->cursor_number) {
		journal_reader_close(s->cursor);
		s->cursor = NULL;
		s->cursor_number = 0;
	}
	if (s->sealed != NULL && i <= s->sealed_index) {
		sealed_close(s->sealed);
		s->sealed = NULL;
	}
	memmove(seg, seg + 1, (s->count - i - 1) * sizeof *seg);
	s->count--;
}

static int
by_first(const void *a, const void *b)
{
	const struct segment	*x = a, *y = b;

	if (x->first != y->first)
		return (x->first < y->first ? -1 : 1);
	if (x->kind != y->kind)
		return (x->kind == SEGMENT_JOURNAL ? 1 : -1);
	return (x->number < y->number ? -1 : x->number > y->number);
}

void
spool_segments_sort(struct spool *s)
{
	spool_segments_close_cursors(s);
	if (s->count > 0)
		qsort(s->segments, s->count, sizeof *s->segments, by_first);
}

void
spool_segments_close_cursors(struct spool *s)
{
	journal_reader_close(s->cursor);
	s->cursor = NULL;
	s->cursor_number = 0;
	sealed_close(s->sealed);
	s->sealed = NULL;
}

int
spool_segments_name(const struct spool *s, const struct segment *seg,
    char name[NAME_SIZE])
{
	switch (seg->kind) {
	case SEGMENT_SEALED:
		return (spool_names_sealed(s, seg->first, seg->named_end,
		    name));
	case SEGMENT_JOURNAL:
		return (spool_names_journal(s, seg->number, name));
	case SEGMENT_LEGACY:
		break;
	}
	return (strlcpy(name, s->name, NAME_SIZE) < NAME_SIZE ? 0 : -1);
}

/*
 * Journals the listener began since the last look become segments: the
 * one growing until now ends where the next begins.
 */
void
spool_segments_track(struct spool *s)
{
	struct journal_reader	*r;
	struct segment		*last;
	uint64_t		 newest;
	char			 name[NAME_SIZE];

	pthread_mutex_lock(&s->append_lock);
	newest = s->journal_number;
	pthread_mutex_unlock(&s->append_lock);
	while (s->tracked < newest) {
		if (spool_names_journal(s, s->tracked + 1, name) == -1 ||
		    journal_reader_open(&r, s->dirfd, name) == -1)
			return;		/* rotation is never half done */
		last = s->count > 0 ? &s->segments[s->count - 1] : NULL;
		if (last != NULL && last->kind == SEGMENT_JOURNAL &&
		    last->end == GROWING)
			last->end = journal_reader_first(r);
		if (spool_segments_add(s, SEGMENT_JOURNAL, s->tracked + 1,
		    journal_reader_first(r), GROWING) == 0)
			s->tracked++;
		journal_reader_close(r);
	}
}

/*
 * The records from the read position up to to are in no file: say so,
 * and go on. Before the head was ever saved, a gap up to the first file
 * is what an earlier run delivered; a gap where a damaged file was is a
 * loss. With nothing handed out and not removed, the head passes the gap
 * too.
 */
static void
report_missing(struct spool *s, uint64_t from, uint64_t to, bool at_most)
{
	if (from >= to)
		return;
	log_event(LEVEL_ERROR, "record_missing", "{s:s, s:I, s:I, s:b}",
	    "path", s->path, "seq", (json_int_t)from, "count",
	    (json_int_t)(to - from), "at_most", at_most);
	if (at_most)
		s->maybe_missing += to - from;
	else
		s->missing += to - from;
}

static void
skip_to(struct spool *s, uint64_t to)
{
	uint64_t	low, high;

	/* Numbers a journal's unreadable end may have held: at most. */
	if (s->head_exact || s->read < s->damaged_until) {
		low = s->bound_first < to ? s->bound_first : to;
		low = low > s->read ? low : s->read;
		high = s->bound_end < to ? s->bound_end : to;
		high = high > low ? high : low;
		report_missing(s, s->read, low, false);
		report_missing(s, low, high, true);
		report_missing(s, high, to, false);
	}
	if (s->head == s->read)
		s->head = to;
	s->read = to;
}

/*
 * Records from to end of segment seg could not be read: damage, or a
 * block that failed every try. They are reported when their turn comes;
 * the file is kept for a person, never deleted (spool_segments_remove_file).
 */
static void
lose_records(struct spool *s, struct segment *seg, uint64_t from,
    uint64_t to)
{
	seg->damaged = true;
	if (to <= from)
		return;
	s->lost_first = from;
	s->lost_end = to;
	if (to > s->damaged_until)
		s->damaged_until = to;
}

/*
 * A read of record seq failed with an error a later try may not meet:
 * false while it is to be tried again (the forwarder keeps its place and
 * backs off), true once it failed READ_TRIES times in a row. Not for a
 * reader (--status, --dump), which does not wait: it says so at once.
 */
static bool
read_given_up(struct spool *s, uint64_t seq)
{
	int	error = errno;

	if (s->failed_seq != seq || s->failures == 0) {
		s->failed_seq = seq;
		s->failures = 0;
	}
	if (++s->failures >= READ_TRIES) {
		s->failures = 0;
		return (true);
	}
	cause_set(s->error, error, "read record %ju (try %u of %d)",
	    (uintmax_t)seq, s->failures, READ_TRIES);
	errno = error;
	return (false);
}

/*
 * Delete the file of a segment the head has passed; one from which a
 * record could not be read is renamed aside instead, for a person.
 */
void
spool_segments_remove_file(struct spool *s, const struct segment *seg)
{
	char	name[NAME_SIZE];

	if (spool_segments_name(s, seg, name) == -1)
		return;
	if (seg->damaged)
		spool_names_set_aside(s, name, seg->kind == SEGMENT_JOURNAL ?
		    "journal_damaged" : "spool_damaged", "records in it could "
		    "not be read (record_missing says which)");
	else
		spool_names_remove(s, name);
}

static int
copy_out(const void *data, size_t size, void **value, size_t *out)
{
	if ((*value = malloc(size > 0 ? size : 1)) == NULL)
		return (-1);
	memcpy(*value, data, size);
	*out = size;
	return (1);
}

/*
 * Journal segment seg could not be read at the cursor (error: why), or
 * ended before the segment does: go on at the next entry that checks out,
 * and lose what lies between. Returns 0, or -1 on error.
 */
static int
read_past(struct spool *s, struct segment *seg, off_t limit, int error)
{
	uint64_t	from = journal_reader_next(s->cursor), to;
	int		found;

	if ((found = journal_resync(s->cursor, limit, error)) == -1)
		return (-1);
	to = found == 1 ? journal_reader_next(s->cursor) : seg->end ==
	    GROWING ? from + 1 : seg->end;
	lose_records(s, seg, from, to);
	return (0);
}

/* The cursor on journal segment seg: 1, 0 if none of it can be read. */
static int
open_cursor(struct spool *s, struct segment *seg, uint64_t seq)
{
	char	name[NAME_SIZE];

	if (s->cursor != NULL && (s->cursor_number != seg->number ||
	    journal_reader_next(s->cursor) > seq)) {
		journal_reader_close(s->cursor);
		s->cursor = NULL;
	}
	if (s->cursor != NULL)
		return (1);
	if (spool_names_journal(s, seg->number, name) == -1)
		return (-1);
	if (journal_reader_open(&s->cursor, s->dirfd, name) == -1) {
		if (transient_error(errno) && (s->reader ||
		    !read_given_up(s, seq)))
			return (-1);
		/* Gone, or nothing in it checks out, or it never will. */
		if (seg->end != GROWING)
			lose_records(s, seg, seq, seg->end);
		return (0);
	}
	s->cursor_number = seg->number;
	if (journal_reader_damaged(s->cursor))
		seg->damaged = true;
	return (1);
}

/*
 * Record seq from journal segment i: 1 and a copy, 0 if it is not there,
 * 2 if it is not written yet (the growing journal), -1 on error.
 */
static int
read_journal(struct spool *s, size_t i, uint64_t seq, void **value,
    size_t *size)
{
	struct segment	*seg = &s->segments[i];
	const void	*data;
	uint64_t	 got;
	off_t		 limit = -1;
	int		 found;

	if ((found = open_cursor(s, seg, seq)) != 1)
		return (found);
	if (seg->end == GROWING && !s->reader) {
		pthread_mutex_lock(&s->append_lock);
		limit = seg->number == s->journal_number ? s->committed : -1;
		pthread_mutex_unlock(&s->append_lock);
	}
	while ((found = journal_read(s->cursor, limit, &got, &data,
	    size)) == 1 && got < seq)
		;
	if (found == 1 && got == seq)
		return (copy_out(data, *size, value, size));
	if (found == 1 || (found == 0 && seg->end == GROWING))
		return (found == 1 ? 0 : 2);
	if (found == -1 && transient_error(errno) && (s->reader ||
	    !read_given_up(s, seq))) {
		journal_reader_close(s->cursor);
		s->cursor = NULL;
		return (-1);
	}
	if (s->reader && seg->end == GROWING)
		return (0);
	if (read_past(s, seg, limit, found == -1 ? errno : EBADMSG) == -1)
		return (-1);
	return (0);
}

/*
 * Opening sealed segment seg, or reading seq from it, failed: -1 while it
 * is to be tried again, else 0, the records from seq to lost lost.
 */
static int
sealed_failed(struct spool *s, struct segment *seg, const char *name,
    uint64_t seq, uint64_t lost, bool opening)
{
	int	error = errno, retry;

	retry = transient_error(error) && (s->reader ||
	    !read_given_up(s, seq));
	if (!retry || s->reader) {
		if (opening)
			cause_set(s->error, error, "open %s/%s", s->dir, name);
		else
			cause_set(s->error, error, "read record %ju from %s/%s",
			    (uintmax_t)seq, s->dir, name);
	}
	if (!retry && !s->reader)
		log_event(LEVEL_ERROR, "spool_read_error", "{s:s, s:I, s:s}",
		    "path", s->path, "seq", (json_int_t)seq, "error",
		    s->error);
	if (retry)
		return (-1);
	lose_records(s, seg, seq, lost);
	return (0);
}

/*
 * Record seq from sealed segment i, as read_journal. A file GDBM finds
 * damaged loses the records from seq on; a record whose bytes are damaged
 * is lost alone, and the file opened again for the next one. Read errors
 * are tried again first. Nothing else ever changes a sealed file, so
 * what is damaged now always will be: the file is kept for a person.
 */
static int
read_sealed(struct spool *s, size_t i, uint64_t seq, void **value,
    size_t *size)
{
	struct segment	*seg = &s->segments[i];
	char		 name[NAME_SIZE], path[PATH_MAX];
	int		 found, error;

	if (s->sealed != NULL && s->sealed_index != i) {
		sealed_close(s->sealed);
		s->sealed = NULL;
	}
	if (spool_segments_name(s, seg, name) == -1)
		return (-1);
	spool_names_path(s, name, path);
	if (s->sealed == NULL) {
		if (sealed_open(&s->sealed, s->dirfd, name, path) == -1)
			return (sealed_failed(s, seg, name, seq, seg->end,
			    true));
		s->sealed_index = i;
	}
	if ((found = sealed_get(s->sealed, seq, value, size)) == -1) {
		error = errno;
		sealed_close(s->sealed);
		s->sealed = NULL;
		errno = error;
		return (sealed_failed(s, seg, name, seq, seq + 1, false));
	}
	return (found);
}

static int
read_segment(struct spool *s, size_t i, uint64_t seq, void **value,
    size_t *size)
{
	if (s->segments[i].kind == SEGMENT_JOURNAL)
		return (read_journal(s, i, seq, value, size));
	return (read_sealed(s, i, seq, value, size));
}

/*
 * Record seq from the first segment that has it, from segment i on:
 * 1 and a copy, 0 if none has it, 2 if it is not written yet, -1.
 */
static int
read_from(struct spool *s, size_t i, uint64_t seq, void **value,
    size_t *size)
{
	int	found = 0;

	for (; i < s->count && s->segments[i].first <= seq; i++)
		if (seq < s->segments[i].end && (found = read_segment(s, i,
		    seq, value, size)) != 0)
			return (found);
	return (found);
}

/* The first segment still to be read from the read position on. */
static size_t
read_segment_index(const struct spool *s)
{
	size_t	i;

	for (i = 0; i < s->count; i++)
		if (s->segments[i].end > s->read)
			break;
	return (i);
}

/* Has the listener begun a journal the row does not know yet? */
static bool
journals_behind(struct spool *s)
{
	bool	behind;

	pthread_mutex_lock(&s->append_lock);
	behind = s->tracked < s->journal_number;
	pthread_mutex_unlock(&s->append_lock);
	return (behind);
}

/*
 * The record at the read position, which then moves past it: 1, its
 * number and a malloc'd copy, 0 if the spool holds no more, -1 on error.
 * Records no file holds are reported and passed.
 */
int
spool_segments_read_next(struct spool *s, uint64_t *seq, void **value,
    size_t *size)
{
	size_t	i;
	int	found;

	if (s->read < s->head)
		s->read = s->head;
	for (;;) {
		if ((i = read_segment_index(s)) == s->count)
			return (0);
		if (s->segments[i].first > s->read) {
			skip_to(s, s->segments[i].first);
			continue;
		}
		found = read_from(s, i, s->read, value, size);
		if (found == 2 && !s->reader && journals_behind(s)) {
			spool_segments_track(s);
			continue;
		}
		if (found == 1) {
			s->failures = 0;
			*seq = s->read++;
			s->handed = s->read;
			return (1);
		}
		if (found != 0)
			return (found == 2 ? 0 : found);
		/* None has it: what a damaged file lost, or one record. */
		if (s->read >= s->lost_first && s->read < s->lost_end) {
			skip_to(s, s->lost_end);
			continue;
		}
		i = read_segment_index(s);
		if (i < s->count && s->segments[i].first <= s->read) {
			/* A file that should hold it and does not is kept. */
			for (; i < s->count && s->segments[i].first <= s->read;
			    i++)
				if (s->read < s->segments[i].end)
					s->segments[i].damaged = true;
			if (s->damaged_until <= s->read)
				s->damaged_until = s->read + 1;
			skip_to(s, s->read + 1);
		}
	}
}

/* Record seq, wherever it is: for a reader. */
int
spool_segments_read(struct spool *s, uint64_t seq, void **value, size_t *size)
{
	size_t	i;
	int	found;

	for (i = 0; i < s->count && s->segments[i].end <= seq; i++)
		;
	found = read_from(s, i, seq, value, size);
	return (found == 2 ? 0 : found);
}

/*
 * Save the head, then delete the segments it has passed: only a head on
 * disk lets their files go.
 */
int
spool_segments_save_position(struct spool *s)
{
	struct segment	*seg;
	size_t		 i;

	if (s->position == NULL) {
		cause_set(s->error, 0, "save the head: no position file (what "
		    "was delivered stays in the spool, and is sent again)");
		return (-1);
	}
	if (position_save(s->position, s->head) == -1) {
		cause_set(s->error, errno, "save the head");
		return (-1);
	}
	s->head_exact = true;
	s->saved_head = s->head;
	s->removals = 0;
	for (i = 0; i < s->count; ) {
		seg = &s->segments[i];
		if (seg->end > s->head) {
			i++;
			continue;
		}
		spool_segments_remove_file(s, seg);
		spool_segments_drop(s, i);
	}
	return (0);
}
