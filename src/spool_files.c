/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool_files.c: what a crash or an older echopost left under DIR, found
 * at open: the row of segments, the newest journal to resume, what goes
 * (spool_legacy.c takes up the spool of echopost 1 it finds).
 *
 * A file being built has a temporary name (.building, .importing) and is
 * removed at the next open if a crash left it: what it was made from is
 * still there.
 */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "files.h"
#include "journal.h"
#include "log.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

/* What the directory holds besides sealed files, which become segments. */
struct listing {
	uint64_t	*journals;	/* their numbers, in no order */
	size_t		 count;
	bool		 legacy;	/* echopost.spool */
	uint64_t	 backup;	/* the newest echopost.spool.~N~ */
	uint64_t	 kept_bytes;	/* of journals kept aside at open */
};

/*
 * A temporary file of ours, or the new file of a recovery of echopost 1
 * (its name plus six letters or digits, from gdbm_recover): a crash left
 * it, and what it was made from is still there.
 */
static bool
leftover(const char *name, const char *base)
{
	size_t	len = strlen(base), i;

	if (strncmp(name, base, len) != 0)
		return (false);
	name += len;
	if (strncmp(name, BUILD_SUFFIX, strlen(BUILD_SUFFIX)) == 0 ||
	    strncmp(name, IMPORT_SUFFIX, strlen(IMPORT_SUFFIX)) == 0)
		return (true);
	if (name[0] != '.' || strlen(name + 1) != 6)
		return (false);
	for (i = 1; name[i] != '\0'; i++)
		if (!isalnum((unsigned char)name[i]))
			return (false);
	return (true);
}

/* Take note of one name in the directory. */
static int
list_name(struct spool *s, const char *name, struct listing *l)
{
	struct stat	 sb;
	uint64_t	 a, b, *grown;
	char		*rest, path[PATH_MAX];

	if (strcmp(name, s->name) == 0) {
		/* Never a link planted to be read, or renamed, as a spool. */
		if (fstatat(s->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode))
			l->legacy = true;
		else
			log_event(LEVEL_WARN, "spool_ignored", "{s:s, s:s}",
			    "path", s->path, "reason", "not a regular file");
	} else if (spool_names_numbered(name, s->name, SEALED_SUFFIX, &a,
	    &rest) && rest[0] == '-' && isdigit((unsigned char)rest[1]) &&
	    (b = strtoull(rest + 1, &rest, 10)) > a && *rest == '\0')
		return (spool_segments_add(s, SEGMENT_SEALED, 0, a, b));
	else if (spool_names_numbered(name, s->name, JOURNAL_SUFFIX, &a,
	    &rest) && *rest == '\0' && a != SPARE) {
		if ((grown = reallocarray(l->journals, l->count + 1,
		    sizeof *grown)) == NULL)
			return (-1);
		l->journals = grown;
		l->journals[l->count++] = a;
	} else if (spool_names_numbered(name, s->name, ".~", &a, &rest) &&
	    strcmp(rest, "~") == 0 && a > l->backup)
		l->backup = a;
	else if (!s->reader && leftover(name, s->name) &&
	    unlinkat(s->dirfd, name, 0) == 0)
		log_event(LEVEL_INFO, "spool_leftover_removed", "{s:s}",
		    "path", spool_names_path(s, name, path));
	return (0);
}

static int
list_directory(struct spool *s, struct listing *l)
{
	struct dirent	*entry;
	DIR		*dir;
	int		 status = 0;

	if ((dir = list_dir(s->dirfd)) == NULL) {
		cause_set(s->error, errno, "%s", s->dir);
		return (-1);
	}
	while (status == 0 && (errno = 0, entry = readdir(dir)) != NULL)
		status = list_name(s, entry->d_name, l);
	if (status == 0 && errno != 0)
		status = -1;
	if (status == -1)
		cause_set(s->error, errno, "%s", s->dir);
	closedir(dir);
	return (status);
}

static int
by_number(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/*
 * A start cannot wait for the forwarder's backoff (the SDK waits 2 s for
 * the socket): a read that fails is tried again at once, a few times.
 * Returns the delay before try number tries + 1, or 0 for no more.
 */
static int64_t
start_retry(const struct spool *s, const char *name, int tries)
{
	char	path[PATH_MAX];

	if (!transient_error(errno) || tries >= START_TRIES)
		return (0);
	log_event(LEVEL_WARN, "spool_read_retry", "{s:s, s:s, s:i}", "path",
	    spool_names_path(s, name, path), "error", strerror(errno), "try",
	    tries);
	return ((int64_t)START_RETRY_MS << (tries - 1));
}

static int
open_journal(struct spool *s, struct journal_reader **r, const char *name)
{
	int64_t	wait;
	int	tries;

	for (tries = 1; journal_reader_open(r, s->dirfd, name) == -1; tries++)
		if (s->reader || (wait = start_retry(s, name, tries)) == 0)
			return (-1);
		else
			delay_ms(wait);
	return (0);
}

/*
 * A journal no entry of which can be read. One no longer than a header
 * was being begun when a run died, the newest, and never took an entry:
 * it goes. Any other is kept aside for a person; what it held is lost,
 * and whatever gap that leaves is reported. Returns 1 if it was kept.
 */
static int
unreadable_journal(struct spool *s, struct listing *l, const char *name,
    bool newest)
{
	struct stat	sb;
	char		path[PATH_MAX];
	int		error = errno;

	if (fstatat(s->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		sb.st_size = 0;
	if (newest && error == EBADMSG && sb.st_size <= JOURNAL_HEADER_SIZE &&
	    unlinkat(s->dirfd, name, 0) == 0) {
		log_event(LEVEL_WARN, "journal_removed", "{s:s, s:s}", "path",
		    spool_names_path(s, name, path), "reason",
		    "no header: it was being begun");
		return (0);
	}
	spool_names_set_aside(s, name, "journal_damaged", error == EBADMSG ?
	    "no entry in it checks out" : strerror(error));
	l->kept_bytes += (uint64_t)sb.st_size;
	s->damaged_until = UINT64_MAX;
	s->kept_at_open = true;
	return (1);
}

/*
 * Each journal is a segment from its first record to the next one's
 * first; the newest grows. A reader takes the newest's end from its
 * entries. One none of whose entries can be read is set aside, and its
 * records reported missing when their turn comes; *kept_newest says
 * whether that one was the newest.
 */
static int
add_journals(struct spool *s, struct listing *l, bool *kept_newest)
{
	struct journal_reader	*r;
	struct journal_survey	 survey;
	struct segment		*seg;
	char			 name[NAME_SIZE];
	size_t			 i;

	*kept_newest = false;
	for (i = 0; i < l->count; i++) {
		if (spool_names_journal(s, l->journals[i], name) == -1)
			return (-1);
		if (open_journal(s, &r, name) == -1) {
			if (errno == ENOENT)
				continue;
			if (s->reader) {
				cause_set(s->error, errno, "%s/%s", s->dir,
				    name);
				continue;
			}
			*kept_newest = unreadable_journal(s, l, name,
			    i == l->count - 1) == 1 && i == l->count - 1;
			continue;
		}
		if (s->count > 0 && (seg = &s->segments[s->count - 1])->kind ==
		    SEGMENT_JOURNAL && seg->end == GROWING)
			seg->end = journal_reader_first(r);
		if (spool_segments_add(s, SEGMENT_JOURNAL, l->journals[i],
		    journal_reader_first(r), GROWING) == -1) {
			journal_reader_close(r);
			return (-1);
		}
		s->segments[s->count - 1].damaged = journal_reader_damaged(r);
		journal_reader_close(r);
		/* Past damage too, as the delivery reads it. */
		if (s->reader && i == l->count - 1 && journal_survey(s->dirfd,
		    name, true, &survey) == 0)
			s->next = survey.next;
	}
	s->tracked = l->count > 0 ? l->journals[l->count - 1] : 0;
	return (0);
}

/* The newest journal's segment: the last one added, growing. */
static struct segment *
newest_journal(struct spool *s)
{
	size_t	i;

	for (i = s->count; i > 0; i--)
		if (s->segments[i - 1].kind == SEGMENT_JOURNAL)
			return (&s->segments[i - 1]);
	return (NULL);
}

/*
 * No record a file of the spool may hold is numbered from here on: the
 * newest first known, plus as many records as all journals, those kept
 * aside at open too, could hold.
 */
static uint64_t
numbers_bound(struct spool *s, struct listing *l, uint64_t *known)
{
	struct stat	sb;
	char		name[NAME_SIZE];
	uint64_t	bound = s->head, bytes = l->kept_bytes;
	size_t		i;

	for (i = 0; i < s->count; i++)
		if (s->segments[i].first > bound)
			bound = s->segments[i].first;
		else if (s->segments[i].end != GROWING &&
		    s->segments[i].end > bound)
			bound = s->segments[i].end;
	for (i = 0; i < l->count; i++)
		if (spool_names_journal(s, l->journals[i], name) == 0 &&
		    fstatat(s->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
			bytes += (uint64_t)sb.st_size;
	*known = bound;
	return (bound + bytes / (JOURNAL_HEADER_SIZE + 1) + 1);
}

/*
 * The numbers from first to end may never have been given: where a
 * journal could not be read, its end is a bound. record_missing says so.
 */
static void
numbers_at_most(struct spool *s, uint64_t first, uint64_t end)
{
	if (first < end) {
		s->bound_first = first;
		s->bound_end = end;
	}
}

static int
survey_newest(struct spool *s, const char *name,
    struct journal_survey *survey)
{
	int64_t	wait;
	int	tries;

	for (tries = 1; journal_survey(s->dirfd, name, tries == START_TRIES,
	    survey) == -1; tries++)
		if ((wait = start_retry(s, name, tries)) == 0)
			return (-1);
		else
			delay_ms(wait);
	return (0);
}

/*
 * The newest journal takes appends again after its last whole entry,
 * cutting off what a crash tore there. One that holds damage a crash
 * cannot leave is not written again: it stays as it is, a segment like
 * any other, and the next journal's numbers begin after every one it may
 * hold. So do they when a newer journal had to be kept aside.
 */
static int
resume_newest(struct spool *s, struct listing *l, bool kept_newest)
{
	struct journal_survey	 survey;
	struct segment		*seg;
	char			 name[NAME_SIZE], path[PATH_MAX];
	uint64_t		 known;
	int64_t			 wait;
	int			 tries;

	if ((seg = newest_journal(s)) == NULL) {
		if (kept_newest) {
			s->numbers_from = numbers_bound(s, l, &known);
			numbers_at_most(s, known, s->numbers_from);
		}
		return (0);
	}
	if (spool_names_journal(s, seg->number, name) == -1)
		return (-1);
	spool_names_path(s, name, path);
	if (survey_newest(s, name, &survey) == -1) {
		log_event(LEVEL_ERROR, "journal_unreadable", "{s:s, s:s}",
		    "path", path, "error", strerror(errno));
		seg->damaged = true;
		seg->end = numbers_bound(s, l, &known);
		numbers_at_most(s, seg->first, seg->end);
		s->damaged_until = UINT64_MAX;
		return (0);
	}
	if (survey.damaged || kept_newest || seg->damaged) {
		log_event(LEVEL_ERROR, "journal_damaged", "{s:s, s:s, s:I}",
		    "path", path, "error", survey.damaged ? "damaged, or a "
		    "block cannot be read: kept as it is, and read past the "
		    "damage" : "a newer journal was kept aside", "next",
		    (json_int_t)survey.next);
		seg->damaged = seg->damaged || survey.damaged;
		seg->end = kept_newest ? numbers_bound(s, l, &known) :
		    survey.next;
		numbers_at_most(s, survey.bound < survey.next ? survey.bound :
		    survey.next, seg->end);
		return (0);
	}
	/* One that cannot be written is closed where it ends: it is whole. */
	for (tries = 1; journal_resume(&s->journal, s->dirfd, name,
	    &survey) == -1; tries++)
		if ((wait = start_retry(s, name, tries)) == 0) {
			log_event(LEVEL_WARN, "journal_error", "{s:s, s:s}",
			    "path", path, "error", strerror(errno));
			seg->end = survey.next;
			return (0);
		} else
			delay_ms(wait);
	s->tracked = seg->number;
	if (survey.cut > 0)
		log_event(LEVEL_WARN, "journal_repaired", "{s:s, s:I, s:I}",
		    "name", name, "cut_bytes", (json_int_t)survey.cut,
		    "next", (json_int_t)survey.next);
	return (0);
}

/*
 * Find the spool's files: sealed files and journals become segments, the
 * newest journal takes appends again (not for a reader), and an echopost 1
 * spool is noted in *legacy. Leftovers of a crash go.
 */
int
spool_files_scan(struct spool *s, bool *legacy)
{
	struct listing	l;
	char		name[NAME_SIZE];
	bool		kept_newest;
	int		status = -1;

	memset(&l, 0, sizeof l);
	if (list_directory(s, &l) == -1)
		goto out;
	if (l.count > 0)
		qsort(l.journals, l.count, sizeof *l.journals, by_number);
	if (add_journals(s, &l, &kept_newest) == -1) {
		cause_set(s->error, errno, "journal");
		goto out;
	}
	if (!s->reader && resume_newest(s, &l, kept_newest) == -1)
		goto out;
	spool_segments_sort(s);
	*legacy = l.legacy;
	/*
	 * A recovery of echopost 1 renamed the spool to its copy, then the
	 * new file to the spool; a crash between the two left only the copy,
	 * which holds everything: it is the spool again.
	 */
	if (!l.legacy && l.backup > 0 && !s->reader) {
		if (spool_names_file(s, name, ".~%" PRIu64 "~",
		    l.backup) == -1 ||
		    renameat(s->dirfd, name, s->dirfd, s->name) == -1 ||
		    fsync(s->dirfd) == -1) {
			cause_set(s->error, errno, "rename %s/%s", s->dir,
			    name);
			goto out;
		}
		*legacy = true;
	}
	status = 0;
out:
	free(l.journals);
	return (status);
}
