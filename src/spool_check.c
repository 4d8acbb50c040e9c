/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * spool_check.c: a reader's look at every file of the spool, for --status
 * and --dump, which must name what cannot be read rather than show a
 * damaged spool as healthy.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "journal.h"
#include "sealed.h"
#include "spool.h"
#include "spool_int.h"
#include "util.h"

/* A journal, read whole and past any damage. */
static int
check_journal(struct spool *s, const char *name, char why[CAUSE_SIZE])
{
	struct journal_survey	survey;

	if (journal_survey(s->dirfd, name, true, &survey) == -1) {
		cause_set(why, 0, "%s", errno == EBADMSG ? "no entry in it "
		    "checks out" : strerror(errno));
		return (-1);
	}
	if (survey.damaged) {
		cause_set(why, 0, "damaged, or a block cannot be read, among "
		    "its records %ju to %ju: delivery reads past the damage, "
		    "and names each record lost", (uintmax_t)survey.first,
		    (uintmax_t)survey.next - 1);
		return (-1);
	}
	return (0);
}

/* A sealed file, opened: GDBM's header, directory and bookkeeping. */
static int
check_sealed(struct spool *s, const char *name, char why[CAUSE_SIZE])
{
	struct sealed	*sealed;
	char		 path[PATH_MAX];

	if (sealed_open(&sealed, s->dirfd, name,
	    spool_names_path(s, name, path)) == -1) {
		cause_set(why, errno, "GDBM cannot open it");
		return (-1);
	}
	sealed_close(sealed);
	return (0);
}

/* Can the spool file name be opened to be read: 0, or -1 and why. */
static int
check_open(struct spool *s, const char *name, char why[CAUSE_SIZE])
{
	int	fd;

	if ((fd = file_open(s->dirfd, name, O_RDONLY, 2)) != -1) {
		close(fd);
		return (0);
	}
	cause_set(why, 0, "%s", errno == EPERM ? "not a regular file of the "
	    "owner's alone (a FIFO, a device, another user's, linked "
	    "elsewhere or writable by others): never used" :
	    strerror(errno));
	return (-1);
}

/*
 * Every file under the spool's name: one an earlier run set aside,
 * NAME.damaged-TIME, held a loss; one that cannot be opened is not used.
 */
static int
check_names(struct spool *s, spool_report_fn report, void *arg)
{
	struct dirent	*entry;
	DIR		*dir;
	char		 why[CAUSE_SIZE];
	size_t		 len = strlen(s->name);
	int		 found = 0;

	if ((dir = list_dir(s->dirfd)) == NULL)
		return (0);
	while ((entry = readdir(dir)) != NULL) {
		if (strncmp(entry->d_name, s->name, len) != 0)
			continue;
		if (strstr(entry->d_name + len, ".damaged-") != NULL)
			report(arg, entry->d_name, "set aside by an earlier "
			    "run for a person to look at: any record it held "
			    "and could not give was reported missing "
			    "(record_missing)");
		else if (check_open(s, entry->d_name, why) == -1)
			report(arg, entry->d_name, why);
		else
			continue;
		found++;
	}
	closedir(dir);
	return (found);
}

/*
 * Look at every file of a spool opened for reading, and call report with
 * the name and why of each one that cannot be opened or read whole, or
 * that an earlier run set aside. Returns how many it reported.
 */
int
spool_check(struct spool *s, spool_report_fn report, void *arg)
{
	char	name[NAME_SIZE], why[CAUSE_SIZE];
	size_t	i;
	int	found = 0, status = 0;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->count; i++) {
		/* One that cannot be opened is check_names' to report. */
		if (spool_segments_name(s, &s->segments[i], name) == -1 ||
		    check_open(s, name, why) == -1)
			continue;
		switch (s->segments[i].kind) {
		case SEGMENT_JOURNAL:
			status = check_journal(s, name, why);
			break;
		case SEGMENT_SEALED:
		case SEGMENT_LEGACY:
			status = check_sealed(s, name, why);
			break;
		}
		if (status == -1) {
			report(arg, name, why);
			found++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return (found + check_names(s, report, arg));
}
