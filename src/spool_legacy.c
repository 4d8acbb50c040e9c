/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool_legacy.c: a spool of echopost 1 (DIR/echopost.spool, one GDBM
 * file that took appends), taken up at open and imported as a sealed
 * file (sealed_import.c) before anything is read; its recovery's copies
 * (echopost.spool.~N~) go after.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "files.h"
#include "log.h"
#include "sealed.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

/* The copies a recovery of echopost 1 kept: older states of its spool. */
static void
remove_backups(struct spool *s)
{
	struct dirent	*entry;
	DIR		*dir;
	char		 path[PATH_MAX], *rest;
	uint64_t	 number;

	if ((dir = list_dir(s->dirfd)) == NULL)
		return;
	while ((entry = readdir(dir)) != NULL)
		if (spool_names_numbered(entry->d_name, s->name, ".~", &number,
		    &rest) && strcmp(rest, "~") == 0) {
			spool_names_remove(s, entry->d_name);
			log_event(LEVEL_INFO, "spool_copy_removed", "{s:s}",
			    "path", spool_names_path(s, entry->d_name, path));
		}
	closedir(dir);
}

static bool
has_journals(const struct spool *s)
{
	size_t	i;

	for (i = 0; i < s->count; i++)
		if (s->segments[i].kind == SEGMENT_JOURNAL)
			return (true);
	return (false);
}

/*
 * An echopost 1 spool marked closed cleanly, with no journal beside it:
 * 1 with the number after its last record. Its head stands in for ours
 * until it is imported, for counts.
 */
static int
legacy_closed_cleanly(struct spool *s, uint64_t *next)
{
	struct sealed	*old;
	uint64_t	 clean = 0, head;
	int		 whole;

	if (sealed_open(&old, s->dirfd, s->name, s->path) == -1)
		return (0);
	whole = sealed_meta(old, "head", &head) == 1;
	if (whole && !s->head_exact)
		s->head = head;
	whole = whole && !has_journals(s) &&
	    sealed_meta(old, "clean", &clean) == 1 && clean == 1 &&
	    sealed_meta(old, "next", next) == 1 && head <= *next;
	sealed_close(old);
	return (whole);
}

/*
 * Take up an echopost 1 spool at open: it is imported (copied, recovered,
 * sealed) by the forwarder's thread before anything is read (spool_next,
 * spool_settle). Even one marked clean is recovered: echopost 1 wrote
 * that mark before its last sync. New records are numbered after its
 * own: after the next it saved at a clean close, or, with no such mark
 * and no journal to say, after those the import finds, now.
 */
int
spool_legacy_take_up(struct spool *s)
{
	uint64_t	next;

	s->legacy_due = true;
	if (has_journals(s))
		return (0);
	if (legacy_closed_cleanly(s, &next)) {
		s->numbers_from = next;
		return (0);
	}
	return (spool_legacy_import(s));
}

/*
 * The first record in a journal, or UINT64_MAX. Journals are all that can
 * be there beside an echopost 1 spool not imported yet (nothing is sealed
 * before the import), and they were numbered after it: a record it holds
 * from there on is a damaged key its recovery kept.
 */
static uint64_t
first_journaled(const struct spool *s)
{
	size_t	i;

	for (i = 0; i < s->count; i++)
		if (s->segments[i].kind == SEGMENT_JOURNAL)
			return (s->segments[i].first);
	return (UINT64_MAX);
}

/*
 * Copy an echopost 1 spool into a sealed file, recovered, and only then
 * delete it. One GDBM cannot read at all is set aside for a person.
 */
int
spool_legacy_import(struct spool *s)
{
	struct sealed_range	 range;
	char			 work[NAME_SIZE], name[NAME_SIZE];
	int			 found;

	if (spool_names_file(s, work, IMPORT_SUFFIX) == -1) {
		cause_set(s->error, errno, "import %s", s->path);
		return (-1);
	}
	range.end = first_journaled(s);
	found = sealed_import(s->dirfd, s->name, work, &range);
	if (found == -1 && errno != EBADMSG) {
		cause_set(s->error, errno, "import %s", s->path);
		return (-1);
	}
	if (found == -1)
		spool_names_set_aside(s, s->name, "spool_damaged", "GDBM "
		    "cannot read it, even recovered, or it holds blocks of "
		    "records: not a spool of echopost 1");
	if (found == 1) {
		/* EEXIST: imported before a crash, not deleted yet. */
		if (spool_names_sealed(s, range.first, range.end,
		    name) == -1 || (publish_file(s->dirfd, work, name) == -1 &&
		    errno != EEXIST) || spool_segments_add(s, SEGMENT_SEALED, 0,
		    range.first, range.end) == -1) {
			cause_set(s->error, errno, "import %s", s->path);
			spool_names_remove(s, work);
			return (-1);
		}
		spool_names_remove(s, work);
		spool_segments_sort(s);
		if (!s->head_exact && range.head < s->head)
			s->head = range.head;
	}
	if (found == 1 || (found == 0 && range.ignored > 0))
		log_event(LEVEL_WARN, "spool_imported", "{s:s, s:I, s:I, s:I}",
		    "path", s->path, "first", (json_int_t)range.first,
		    "end", (json_int_t)range.end,
		    "ignored_keys", (json_int_t)range.ignored);
	if (found != -1)
		spool_names_remove(s, s->name);
	remove_backups(s);
	s->legacy_due = false;
	return (0);
}
