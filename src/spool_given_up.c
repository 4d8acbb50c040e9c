/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool_given_up.c: the records an administrator gave up on
 * (echopost --give-up), which the forwarder moves to the failure log
 * instead of sending.
 *
 * The spool removes records only at its head, so a record in the middle
 * is not removed here but named: DIR/echopost.spool.given-up holds lines
 * "first-last". It is appended to only while no instance runs on DIR
 * (the caller holds the pid lock), read when the spool is opened, and
 * removed before the spool's other files when the spool is emptied, so
 * that numbers given again later are never taken for the old ones.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

#define GIVEN_UP_SUFFIX	".given-up"
/* More lines than an administrator types: --give-up refuses more. */
#define GIVEN_UP_MAX	65536

static int
by_first(const void *a, const void *b)
{
	const struct given_up	*x = a, *y = b;

	return (x->first < y->first ? -1 : x->first > y->first);
}

static int
add_range(struct spool *s, uint64_t first, uint64_t last)
{
	struct given_up	*grown;

	if ((grown = reallocarray(s->given_up, s->given_up_count + 1,
	    sizeof *grown)) == NULL)
		return (-1);
	s->given_up = grown;
	s->given_up[s->given_up_count].first = first;
	s->given_up[s->given_up_count++].last = last;
	return (0);
}

/* Sorted, and overlapping ranges made one: a number is in one at most. */
static void
merge_ranges(struct spool *s)
{
	struct given_up	*r = s->given_up;
	size_t		 i, kept = 0;

	if (s->given_up_count == 0)
		return;
	qsort(r, s->given_up_count, sizeof *r, by_first);
	for (i = 1; i < s->given_up_count; i++) {
		if (r[i].first <= r[kept].last + 1) {
			if (r[i].last > r[kept].last)
				r[kept].last = r[i].last;
		} else
			r[++kept] = r[i];
	}
	s->given_up_count = kept + 1;
}

static int
parse_lines(struct spool *s, FILE *f)
{
	char		*line = NULL;
	size_t		 room = 0;
	ssize_t		 n;
	uint64_t	 first, last;
	int		 status = 0;

	while (status == 0 && (n = getline(&line, &room, f)) != -1) {
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (++s->given_up_lines > GIVEN_UP_MAX) {
			errno = EFBIG;
			status = -1;
		} else if (parse_range(line, &first, &last) == -1) {
			errno = EBADMSG;
			status = -1;
		} else
			status = add_range(s, first, last);
	}
	if (status == 0 && ferror(f))
		status = -1;
	free(line);
	if (status == -1) {
		free(s->given_up);
		s->given_up = NULL;
		s->given_up_count = 0;
	}
	merge_ranges(s);
	return (status);
}

/*
 * Read the list at open. One that cannot be read does not stop a start:
 * its records are sent as any other, and the event says so.
 */
void
spool_given_up_load(struct spool *s)
{
	char	 name[NAME_SIZE], path[PATH_MAX];
	FILE	*f = NULL;
	int	 fd;

	if (spool_names_file(s, name, GIVEN_UP_SUFFIX) == -1)
		return;
	if ((fd = file_open(s->dirfd, name, O_RDONLY, 1)) == -1) {
		if (errno == ENOENT)
			return;
	} else if ((f = fdopen(fd, "r")) == NULL)
		close(fd);
	if (f == NULL || parse_lines(s, f) == -1) {
		cause_set(s->error, errno, "its records are sent as any other, "
		    "for %s is unreadable", spool_names_path(s, name, path));
		if (!s->reader)
			log_event(LEVEL_ERROR, "given_up_unreadable", "{s:s}",
			    "error", s->error);
	}
	if (f != NULL)
		fclose(f);
}

bool
spool_given_up(struct spool *s, uint64_t seq)
{
	size_t	low = 0, high = s->given_up_count, middle;

	while (low < high) {
		middle = low + (high - low) / 2;
		if (s->given_up[middle].first > seq)
			high = middle;
		else if (s->given_up[middle].last < seq)
			low = middle + 1;
		else
			return (true);
	}
	return (false);
}

/* The records given up that the head has not passed. */
uint64_t
spool_given_up_count(struct spool *s)
{
	uint64_t	count = 0, head, next, first, end;
	size_t		i;

	spool_range(s, &head, &next);
	for (i = 0; i < s->given_up_count; i++) {
		first = s->given_up[i].first > head ? s->given_up[i].first :
		    head;
		end = s->given_up[i].last < next ? s->given_up[i].last + 1 :
		    next;
		if (end > first)
			count += end - first;
	}
	return (count);
}

/*
 * Give up records first to last (ERANGE: the spool does not hold them
 * all; EOVERFLOW: too many given up already): the caller holds DIR's pid
 * lock. The line is synced, and the directory, before this returns: a
 * give-up that was answered is never forgotten.
 */
int
spool_give_up(struct spool *s, uint64_t first, uint64_t last)
{
	char		 name[NAME_SIZE], line[64];
	uint64_t	 head, next;
	int		 fd, n, saved;

	spool_range(s, &head, &next);
	if (s->given_up_lines >= GIVEN_UP_MAX) {
		cause_set(s->error, 0, "%d ranges are given up already: let "
		    "a run deliver the spool first", GIVEN_UP_MAX);
		errno = EOVERFLOW;
		return (-1);
	}
	if (first < head || last >= next) {
		if (head >= next)
			cause_set(s->error, 0, "the spool is empty");
		else
			cause_set(s->error, 0, "the spool holds records %"
			    PRIu64 " to %" PRIu64, head, next - 1);
		errno = ERANGE;
		return (-1);
	}
	if (spool_names_file(s, name, GIVEN_UP_SUFFIX) == -1)
		goto fail;
	if ((fd = file_open(s->dirfd, name, O_WRONLY | O_APPEND | O_CREAT,
	    1)) == -1)
		goto fail;
	n = snprintf(line, sizeof line, "%" PRIu64 "-%" PRIu64 "\n", first,
	    last);
	if (write_all(fd, line, (size_t)n) == -1 ||
	    compat_sync_file(fd) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		goto fail;
	}
	/* The directory too: the file may be new. */
	if (close(fd) == -1 || fsync(s->dirfd) == -1)
		goto fail;
	return (0);
fail:
	cause_set(s->error, errno, "%s/%s", s->dir, name);
	return (-1);
}

/* Before the spool's files go: see the top of this file. */
int
spool_given_up_remove(struct spool *s)
{
	char	name[NAME_SIZE];

	if (spool_names_file(s, name, GIVEN_UP_SUFFIX) == -1 ||
	    (unlinkat(s->dirfd, name, 0) == -1 && errno != ENOENT)) {
		cause_set(s->error, errno, "remove %s/%s", s->dir, name);
		return (-1);
	}
	return (0);
}
