/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * admin_records.c: the admin commands on stored records: --dump prints
 * them (or counts them), --give-up moves them to the failure log unsent.
 *
 * --dump, like --status, takes no lock and can be run beside a serving
 * instance. --give-up changes what the next run does, so it takes DIR's
 * pid lock and refuses while an instance runs: a running forwarder has
 * read the list of records given up at its start, and may have sent the
 * record already.
 */
#include "config.h"

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin.h"
#include "dir.h"
#include "echopost.h"
#include "record.h"
#include "spool.h"
#include "util.h"

/* Print record seq as its log line; 1, or -1 when it cannot be read. */
static int
dump_one(struct spool *spool, uint64_t seq)
{
	struct record	 r;
	enum record_status status;
	void		*data;
	size_t		 size;
	char		 context[64], *line;
	int		 found;

	if ((found = spool_get(spool, seq, &data, &size)) == -1)
		warnx("record %" PRIu64 ": %s", seq, spool_error(spool));
	else if (found == 0)
		warnx("record %" PRIu64 ": in no file that can be read", seq);
	if (found != 1)
		return (-1);
	status = record_decode(data, size, &r);
	if (status != RECORD_OK) {
		warnx("record %" PRIu64 ": %s", seq,
		    record_status_string(status));
		free(data);
		return (-1);
	}
	snprintf(context, sizeof context, "{\"seq\":%" PRIu64 "%s}", seq,
	    spool_given_up(spool, seq) ? ",\"given_up\":true" : "");
	line = record_log_line(&r, context);
	free(data);
	if (line == NULL)
		return (-1);
	fputs(line, stdout);
	free(line);
	return (1);
}

static void
warn_damaged(void *arg, const char *name, const char *why)
{
	(void)arg;
	warn_shown(name, why);
}

/* The spool of DIR, read only; NULL with the message printed. */
static struct spool *
open_spool(const struct dir_check *dir, int *status)
{
	struct spool	*spool;
	char		 path[PATH_MAX], cause[CAUSE_SIZE];

	if (dir_file(path, dir->path, SPOOL_NAME) == -1) {
		warn_shown(dir->path, strerror(errno));
		*status = EX_USAGE;
		return (NULL);
	}
	if ((spool = spool_open_reader(dir->fd, path, cause)) == NULL) {
		warn_shown(path, cause);
		*status = EX_IOERR;
		return (NULL);
	}
	if (*spool_error(spool) != '\0')
		warn_shown(path, spool_error(spool));
	return (spool);
}

/* The records --seq asks for that the spool holds: [*first, *end). */
static void
dump_range(const struct options *o, struct spool *spool, uint64_t *first,
    uint64_t *end)
{
	spool_range(spool, first, end);
	if (!o->seq_given)
		return;
	if (o->first_seq > *first)
		*first = o->first_seq;
	if (o->last_seq + 1 < *end)
		*end = o->last_seq + 1;
	if (*end < *first)
		*end = *first;
}

int
admin_dump(const struct options *o)
{
	struct spool	*spool;
	struct dir_check dir;
	uint64_t	 seq, end;
	int		 bad = 0, status;

	if ((status = dir_open(o->dir, false, &dir)) != 0) {
		warn_shown(NULL, dir.error);
		return (status);
	}
	spool = open_spool(&dir, &status);
	close(dir.fd);
	if (spool == NULL)
		return (status);
	bad = spool_check(spool, warn_damaged, NULL);
	dump_range(o, spool, &seq, &end);
	if (o->count)
		printf("%" PRIu64 "\n", end - seq);
	else
		for (; seq < end && !ferror(stdout); seq++)
			if (dump_one(spool, seq) == -1)
				bad++;
	spool_close(spool, 0);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		warn("write error");
		return (EX_IOERR);
	}
	return (bad == 0 ? 0 : EX_IOERR);
}

/* Is DIR free? 0 with the lock taken, or the exit status, said. */
static int
lock_for_give_up(const struct dir_check *dir, struct dir_lock **lock)
{
	pid_t	other = -1;

	switch (dir_lock(lock, dir->fd, &other)) {
	case 0:
		return (0);
	case 1:
		warnx("echopost (pid %ld) runs on %s: stop it first, then "
		    "give up records", (long)other, dir->path);
		return (EX_TEMPFAIL);
	default:
		warn_shown(PID_FILE_NAME, strerror(errno));
		return (EX_CANTCREAT);
	}
}

int
admin_give_up(const struct options *o)
{
	struct spool	*spool = NULL;
	struct dir_check dir;
	struct dir_lock	*lock = NULL;
	int		 status;

	if ((status = dir_open(o->dir, false, &dir)) != 0) {
		warn_shown(NULL, dir.error);
		return (status);
	}
	if ((status = lock_for_give_up(&dir, &lock)) == 0 &&
	    (spool = open_spool(&dir, &status)) != NULL) {
		if (spool_give_up(spool, o->first_seq, o->last_seq) == -1) {
			status = errno == ERANGE || errno == EOVERFLOW ?
			    EX_DATAERR : EX_IOERR;
			warnx("cannot give up records %" PRIu64 " to %" PRIu64
			    ": %s", o->first_seq, o->last_seq,
			    spool_error(spool));
		} else
			printf("%" PRIu64 " record%s given up: to the failure "
			    "log, unsent, when echopost next delivers\n",
			    o->last_seq - o->first_seq + 1,
			    o->last_seq > o->first_seq ? "s" : "");
		spool_close(spool, 0);
	}
	dir_unlock(lock);
	close(dir.fd);
	if (status == 0 && fflush(stdout) != 0)
		status = EX_IOERR;
	return (status);
}
