/*
 * spool_segments.c: the row of segments, reading at the head, saving the
 * head, and the mover that seals closed journals into GDBM.
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

#include <jansson.h>

#include "journal.h"
#include "log.h"
#include "position.h"
#include "sealed.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

/* Journals sealed at one go, so that the forwarder stays responsive. */
#define MOVE_MAX	4

int
add_segment(struct spool *s, enum segment_kind kind, uint64_t number,
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
	s->count++;
	return (0);
}

/* Forget segment i; its file is someone else's business. */
void
drop_segment(struct spool *s, size_t i)
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
sort_segments(struct spool *s)
{
	close_cursors(s);
	if (s->count > 0)
		qsort(s->segments, s->count, sizeof *s->segments, by_first);
}

void
close_cursors(struct spool *s)
{
	journal_reader_close(s->cursor);
	s->cursor = NULL;
	s->cursor_number = 0;
	sealed_close(s->sealed);
	s->sealed = NULL;
}

int
segment_name(const struct spool *s, const struct segment *seg,
    char name[NAME_SIZE])
{
	switch (seg->kind) {
	case SEGMENT_SEALED:
		return (sealed_file(s, seg->first, seg->named_end, name));
	case SEGMENT_JOURNAL:
		return (journal_file(s, seg->number, name));
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
track_journals(struct spool *s)
{
	struct journal_reader	*r;
	struct segment		*last;
	uint64_t		 newest;
	char			 name[NAME_SIZE];

	pthread_mutex_lock(&s->append_lock);
	newest = s->journal_number;
	pthread_mutex_unlock(&s->append_lock);
	while (s->tracked < newest) {
		if (journal_file(s, s->tracked + 1, name) == -1 ||
		    journal_reader_open(&r, s->dirfd, name) == -1)
			return;		/* rotation is never half done */
		last = s->count > 0 ? &s->segments[s->count - 1] : NULL;
		if (last != NULL && last->kind == SEGMENT_JOURNAL &&
		    last->end == GROWING)
			last->end = journal_reader_first(r);
		if (add_segment(s, SEGMENT_JOURNAL, s->tracked + 1,
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
skip_to(struct spool *s, uint64_t to)
{
	if (s->head_exact || s->read < s->damaged_until)
		log_event(LEVEL_ERROR, "record_missing", "{s:s, s:I, s:I}",
		    "path", s->path, "seq", (json_int_t)s->read,
		    "count", (json_int_t)(to - s->read));
	if (s->head == s->read)
		s->head = to;
	s->read = to;
}

/* Segment seg holds its records only up to readable: the rest is lost. */
static void
cut_segment(struct spool *s, struct segment *seg, uint64_t readable)
{
	if (seg->end > s->damaged_until)
		s->damaged_until = seg->end;
	seg->end = readable;
}

/*
 * A journal ends before the records its segment should hold: damaged, or
 * cut short. What it holds up to there stays readable; the segment is cut
 * to that, and the file renamed aside for a person.
 */
static void
journal_cut(struct spool *s, struct segment *seg, uint64_t readable)
{
	char	name[NAME_SIZE];

	cut_segment(s, seg, readable);
	if (!s->reader && journal_file(s, seg->number, name) == 0)
		set_aside(s, name, "journal_damaged", "entries damaged or cut "
		    "short");
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
 * Record seq from journal segment i: 1 and a copy, 0 if it is not there,
 * 2 if it is not written yet (the growing journal), -1 on error.
 */
static int
read_journal(struct spool *s, size_t i, uint64_t seq, void **value,
    size_t *size)
{
	struct segment	*seg = &s->segments[i];
	const void	*data;
	char		 name[NAME_SIZE];
	uint64_t	 got;
	off_t		 limit = -1;
	int		 found;

	if (s->cursor != NULL && (s->cursor_number != seg->number ||
	    journal_reader_next(s->cursor) > seq)) {
		journal_reader_close(s->cursor);
		s->cursor = NULL;
	}
	if (s->cursor == NULL) {
		if (journal_file(s, seg->number, name) == -1)
			return (-1);
		if (journal_reader_open(&s->cursor, s->dirfd, name) == -1) {
			if (errno != ENOENT && errno != EBADMSG)
				return (-1);
			/* Gone, or its header damaged: none of it is there. */
			if (seg->end != GROWING)
				journal_cut(s, seg, seg->first);
			return (0);
		}
		s->cursor_number = seg->number;
	}
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
	if (found == -1 && errno != EBADMSG)
		return (-1);
	if (seg->end == GROWING)
		return (s->reader ? 0 : 2);
	journal_cut(s, seg, journal_reader_next(s->cursor));
	return (0);
}

/*
 * Record seq from sealed segment i, as read_journal. A file GDBM cannot
 * open is set aside, its records lost; a record it cannot read, or the
 * block that holds it, is lost alone, and the file opened again for the
 * next one: nothing else ever changes a sealed file, so what cannot be
 * read now never will be.
 */
static int
read_sealed(struct spool *s, size_t i, uint64_t seq, void **value,
    size_t *size)
{
	char	 name[NAME_SIZE], path[PATH_MAX], *cause = NULL;
	int	 found;

	if (s->sealed != NULL && s->sealed_index != i) {
		sealed_close(s->sealed);
		s->sealed = NULL;
	}
	if (segment_name(s, &s->segments[i], name) == -1)
		return (-1);
	spool_path(s, name, path);
	if (s->sealed == NULL) {
		if (sealed_open(&s->sealed, s->dirfd, name, path, &cause) ==
		    -1) {
			if (!s->reader)
				set_aside(s, name, "spool_damaged", cause);
			free(cause);
			cut_segment(s, &s->segments[i], s->segments[i].first);
			return (0);
		}
		s->sealed_index = i;
	}
	found = sealed_get(s->sealed, seq, value, size, &cause);
	if (found == -1) {
		log_event(LEVEL_ERROR, "spool_read_error", "{s:s, s:I, s:s}",
		    "path", path, "seq", (json_int_t)seq, "error", cause);
		free(cause);
		sealed_close(s->sealed);
		s->sealed = NULL;
		found = 0;
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
read_next(struct spool *s, uint64_t *seq, void **value, size_t *size)
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
			track_journals(s);
			continue;
		}
		if (found == 1) {
			*seq = s->read++;
			s->handed = s->read;
			return (1);
		}
		if (found != 0)
			return (found == 2 ? 0 : found);
		/* None has it; or a damaged file was cut short. */
		i = read_segment_index(s);
		if (i < s->count && s->segments[i].first <= s->read) {
			if (s->damaged_until <= s->read)
				s->damaged_until = s->read + 1;
			skip_to(s, s->read + 1);
		}
	}
}

/* Record seq, wherever it is: for a reader. */
int
read_record(struct spool *s, uint64_t seq, void **value, size_t *size)
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
save_position(struct spool *s)
{
	struct segment	*seg;
	char		 name[NAME_SIZE];
	size_t		 i;

	if (position_save(s->position, s->head) == -1) {
		snprintf(s->error, sizeof s->error, "save the head: %s",
		    strerror(errno));
		return (-1);
	}
	s->head_exact = true;
	s->removals = 0;
	for (i = 0; i < s->count; ) {
		seg = &s->segments[i];
		if (seg->end > s->head) {
			i++;
			continue;
		}
		if (segment_name(s, seg, name) == 0)
			remove_file(s, name);
		drop_segment(s, i);
	}
	return (0);
}

/*
 * Copy the entries of journal segment seg from start on into w. Returns 0
 * when it was read whole, 1 when it is damaged or cut short (left to the
 * reading, which reports what is lost), -1 on error.
 */
static int
seal_journal(struct spool *s, struct sealed_writer *w,
    const struct segment *seg, uint64_t start)
{
	struct journal_reader	*r;
	const void		*data;
	char			 name[NAME_SIZE], *cause = NULL;
	uint64_t		 seq;
	size_t			 size;
	int			 found;

	if (journal_file(s, seg->number, name) == -1 ||
	    journal_reader_open(&r, s->dirfd, name) == -1) {
		snprintf(s->error, sizeof s->error, "journal %s/%s: %s",
		    s->dir, name, strerror(errno));
		return (errno == EBADMSG ? 1 : -1);
	}
	while ((found = journal_read(r, -1, &seq, &data, &size)) == 1)
		if (seq >= start && sealed_put(w, seq, data, size,
		    &cause) == -1) {
			snprintf(s->error, sizeof s->error, "%s", cause);
			free(cause);
			found = -2;
			break;
		}
	if (found == 0 && journal_reader_next(r) != seg->end)
		found = -1;
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
	char		 name[NAME_SIZE];
	size_t		 i;

	for (i = 0; i < s->count; ) {
		seg = &s->segments[i];
		if (seg->kind != SEGMENT_JOURNAL || seg->number < low ||
		    seg->number > high) {
			i++;
			continue;
		}
		if (journal_file(s, seg->number, name) == 0)
			remove_file(s, name);
		drop_segment(s, i);
	}
	if (add_segment(s, SEGMENT_SEALED, 0, start, end) == -1)
		return (-1);
	sort_segments(s);
	return (0);
}

static int
mover_error(struct spool *s, char *cause)
{
	snprintf(s->error, sizeof s->error, "%s", cause != NULL ? cause :
	    strerror(errno));
	free(cause);
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
	    clock_monotonic_ms() - committed_ms >= SEAL_QUIET_MS)
		return (true);
	for (i = 0; i < s->count; i++)
		if (s->segments[i].kind == SEGMENT_JOURNAL &&
		    s->segments[i].end != GROWING &&
		    s->segments[i].end > s->head)
			closed++;
	return (closed >= SEAL_BACKLOG);
}

/*
 * Seal the oldest closed journals into one GDBM file, from the head on:
 * GDBM writes it under a temporary name, syncs it, and only then is it
 * named and are the journals deleted. Returns 1 if it moved any, 0 if
 * there was nothing to move or it is not due, -1 on error.
 */
int
move_journals(struct spool *s)
{
	struct sealed_writer	*w = NULL;
	struct segment		*seg;
	char			 work[NAME_SIZE], name[NAME_SIZE];
	char			 path[PATH_MAX], *cause = NULL;
	uint64_t		 start = 0, end = 0, low = 0, high = 0;
	size_t			 i, moved = 0;
	int			 status = 0;

	track_journals(s);
	if (!sealing_due(s))
		return (0);
	for (i = 0; i < s->count && moved < MOVE_MAX && status == 0; i++) {
		seg = &s->segments[i];
		if (seg->kind != SEGMENT_JOURNAL || seg->end == GROWING ||
		    seg->end <= s->head)
			continue;
		if (w == NULL) {
			start = seg->first > s->head ? seg->first : s->head;
			low = seg->number;
			if (spool_name(s, work, BUILD_SUFFIX) == -1 ||
			    sealed_create(&w, s->dirfd, work, spool_path(s,
			    work, path), &cause) == -1)
				return (mover_error(s, cause));
		}
		if ((status = seal_journal(s, w, seg, start)) == 0) {
			end = seg->end;
			high = seg->number;
			moved++;
		}
	}
	if (moved == 0 || status == -1) {
		sealed_abandon(w);
		return (status == -1 ? -1 : 0);
	}
	/* EEXIST: sealed before a crash that kept the journals. */
	if (sealed_file(s, start, end, name) == -1 ||
	    (sealed_finish(w, end, name, &cause) == -1 && errno != EEXIST))
		return (mover_error(s, cause));
	free(cause);
	if (replace_journals(s, low, high, start, end) == -1)
		return (mover_error(s, NULL));
	log_event(LEVEL_DEBUG, "journals_sealed", "{s:s, s:I, s:I}", "path",
	    spool_path(s, name, path), "first", (json_int_t)start, "end",
	    (json_int_t)end);
	return (1);
}
