/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool_names.c: the spool's files under DIR, by name, and how one goes.
 *
 *	echopost.spool.sealed.FIRST-END	records FIRST to END-1 (sealed.c)
 *	echopost.spool.journal.N	journals, N counting up (journal.c)
 *	echopost.spool.journal.spare	zeros for the next journal
 *	echopost.spool.position		the head (position.c)
 *	echopost.spool			a spool of echopost 1, imported
 *	echopost.spool.~N~		its copies, from its recovery
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

/*
 * A file of the spool: its name, made of the spool's and a suffix from
 * fmt, relative to DIR (s->dirfd).
 */
int
spool_names_file(const struct spool *s, char name[NAME_SIZE], const char *fmt,
    ...)
{
	va_list	ap;
	int	n, m;

	n = snprintf(name, NAME_MAX + 1, "%s", s->name);
	va_start(ap, fmt);
	m = n <= NAME_MAX ? vsnprintf(name + n, NAME_SIZE - n, fmt, ap) : 0;
	va_end(ap);
	if (n > NAME_MAX || m < 0 || m > NAME_MAX - n) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	return (0);
}

/* DIR/name, for what is printed and for GDBM; truncated if it must be. */
const char *
spool_names_path(const struct spool *s, const char *name, char path[PATH_MAX])
{
	snprintf(path, PATH_MAX, "%s/%s", s->dir, name);
	return (path);
}

/* A journal's name, or the spare's for number SPARE. */
int
spool_names_journal(const struct spool *s, uint64_t number,
    char name[NAME_SIZE])
{
	if (number == SPARE)
		return (spool_names_file(s, name, SPARE_SUFFIX));
	return (spool_names_file(s, name, JOURNAL_SUFFIX "%" PRIu64, number));
}

int
spool_names_sealed(const struct spool *s, uint64_t first, uint64_t end,
    char name[NAME_SIZE])
{
	return (spool_names_file(s, name, SEALED_SUFFIX "%" PRIu64 "-%" PRIu64,
	    first, end));
}

/* Delete a file of the spool; one already gone is fine. */
void
spool_names_remove(const struct spool *s, const char *name)
{
	char	path[PATH_MAX];

	if (unlinkat(s->dirfd, name, 0) == -1 && errno != ENOENT)
		log_event(LEVEL_WARN, "spool_file_error", "{s:s, s:s}", "path",
		    spool_names_path(s, name, path), "error", strerror(errno));
}

/*
 * Rename a damaged file to name.damaged-TIME, for a person to look at; it
 * is never deleted. event names what it was.
 */
void
spool_names_set_aside(const struct spool *s, const char *name,
    const char *event, const char *why)
{
	char	when[TIME_BUFSIZE], kept[NAME_SIZE], path[PATH_MAX];
	char	kept_path[PATH_MAX];

	format_time(clock_realtime_us(), when);
	if (snprintf(kept, sizeof kept, "%s.damaged-%s", name, when) >=
	    (int)sizeof kept || renameat(s->dirfd, name, s->dirfd, kept) == -1)
		strlcpy(kept, name, sizeof kept);
	log_event(LEVEL_ERROR, event, "{s:s, s:s, s:s}", "path",
	    spool_names_path(s, name, path), "kept_as",
	    spool_names_path(s, kept, kept_path), "error", why);
}

/* Is name base, then suffix, then a decimal number (and what follows)? */
bool
spool_names_numbered(const char *name, const char *base, const char *suffix,
    uint64_t *number, char **rest)
{
	size_t	len = strlen(base), slen = strlen(suffix);

	if (strncmp(name, base, len) != 0 ||
	    strncmp(name + len, suffix, slen) != 0 ||
	    !isdigit((unsigned char)name[len + slen]))
		return (false);
	errno = 0;
	*number = strtoull(name + len + slen, rest, 10);
	return (errno == 0);
}
