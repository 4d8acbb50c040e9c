/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * sealed_import.c: a spool of echopost 1 made a sealed file: copied,
 * recovered with GDBM, its records' range found, and sealed with "end".
 * The old file itself is only read.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gdbm.h>
#include <jansson.h>

#include "files.h"
#include "log.h"
#include "sealed.h"
#include "sealed_int.h"
#include "util.h"

#define COPY_CHUNK	(1024 * 1024)

/* Copy the file from to a new file to, both in dirfd. */
static int
copy_file(int dirfd, const char *from, const char *to)
{
	char	*buf;
	ssize_t	 n = -1;
	int	 in, out, saved;

	if ((buf = malloc(COPY_CHUNK)) == NULL)
		return (-1);
	in = file_open(dirfd, from, O_RDONLY, 2);
	out = file_open(dirfd, to, O_WRONLY | O_CREAT | O_EXCL, 1);
	if (in != -1 && out != -1)
		while ((n = read(in, buf, COPY_CHUNK)) > 0 &&
		    write_all(out, buf, (size_t)n) == 0)
			;
	saved = errno;
	if (out != -1 && close(out) == -1 && n == 0)
		n = -1;
	if (in != -1)
		close(in);
	free(buf);
	errno = saved;
	return (n == 0 ? 0 : -1);
}

/* Take key seq into [range->first, *high], if it is below range->end. */
static int
widen_range(struct sealed_range *range, uint64_t *high, uint64_t seq,
    int found)
{
	if (seq >= range->end) {
		range->ignored++;
		return (found);
	}
	if (!found || seq < range->first)
		range->first = seq;
	if (!found || seq > *high)
		*high = seq;
	return (1);
}

/*
 * The lowest and highest record keys below range->end, the first record
 * numbered after the file's: any other key is a damaged one the recovery
 * kept, counted in range->ignored. 0 if there is none.
 */
static int
key_range(GDBM_FILE db, enum key_order order, struct sealed_range *range,
    uint64_t *high)
{
	datum	key, next;
	int	found = 0;

	range->first = 0;
	range->ignored = 0;
	for (key = gdbm_firstkey(db); key.dptr != NULL; key = next) {
		if (key.dsize == KEY_SIZE)
			found = widen_range(range, high, order ==
			    KEYS_BIG_ENDIAN ? be64dec(key.dptr) :
			    le64dec(key.dptr), found);
		next = gdbm_nextkey(db, key);
		free(key.dptr);
	}
	if (gdbm_errno != GDBM_ITEM_NOT_FOUND) {
		errno = sealed_gdbm_errno(db);
		return (-1);
	}
	return (found);
}

/*
 * Rebuild the copy whatever it says of itself: echopost 1 wrote its clean
 * mark before its last sync, so even a file marked clean may be torn.
 */
static int
recover_copy(GDBM_FILE db, const char *legacy)
{
	gdbm_recovery	rcvr;

	memset(&rcvr, 0, sizeof rcvr);
	if (gdbm_recover(db, &rcvr, GDBM_RCVR_FORCE) != 0) {
		errno = sealed_gdbm_errno(db);
		return (-1);
	}
	log_event(LEVEL_WARN, "spool_recovered", "{s:s, s:I, s:I, s:I}",
	    "path", legacy,
	    "recovered_keys", (json_int_t)rcvr.recovered_keys,
	    "failed_keys", (json_int_t)rcvr.failed_keys,
	    "failed_buckets", (json_int_t)rcvr.failed_buckets);
	return (0);
}

/*
 * How the old spool's keys are written. A file of blocks is a sealed file
 * under its name, not a spool of echopost 1: its keys would not tell
 * where its records end.
 */
static int
legacy_key_order(GDBM_FILE db, enum key_order *order)
{
	if (sealed_key_order(db, order) == -1) {
		errno = sealed_gdbm_errno(db);
		return (-1);
	}
	if (*order == KEYS_OF_BLOCKS || *order == KEYS_OF_BLOCKS_SEVEN_BIT) {
		errno = EBADMSG;
		return (-1);
	}
	return (0);
}

/*
 * Make a sealed file, work in dirfd, from the echopost 1 spool legacy
 * there, which is only read. dirfd must be the working directory: GDBM
 * knows the copy by its name there, so that its recovery makes the new
 * file beside it without walking to the directory by path. Records
 * from range->end on are not its own. Returns 1 with its records' range
 * [first, end) and the head it had saved in range->head, 0 if it holds no
 * record (work is gone then), -1 on error; errno EBADMSG when GDBM cannot
 * read it at all, even recovered, or it is no spool of echopost 1.
 */
int
sealed_import(int dirfd, const char *legacy, const char *work,
    struct sealed_range *range)
{
	unsigned char	buf[KEY_SIZE];
	GDBM_FILE	db;
	enum key_order	order;
	uint64_t	last = 0;
	int		found, saved;

	if (copy_file(dirfd, legacy, work) == -1) {
		saved = errno;
		unlinkat(dirfd, work, 0);
		errno = saved;
		return (-1);
	}
	if ((db = sealed_open_gdbm(dirfd, work, work, O_RDWR, GDBM_WRITER,
	    WRITE_BUCKETS)) == NULL) {
		saved = errno;
		unlinkat(dirfd, work, 0);
		errno = saved;
		return (-1);
	}
	if (recover_copy(db, legacy) == -1 ||
	    legacy_key_order(db, &order) == -1 ||
	    (found = key_range(db, order, range, &last)) == -1) {
		saved = errno;
		gdbm_close(db);
		unlinkat(dirfd, work, 0);
		errno = saved;
		return (-1);
	}
	range->end = found ? last + 1 : 0;
	if (sealed_meta_get(db, "head", &range->head) != 1 ||
	    range->head < range->first)
		range->head = range->first;
	if (found && (gdbm_store(db, sealed_name_key("end"),
	    sealed_number_value(range->end, buf), GDBM_REPLACE) != 0 ||
	    gdbm_sync(db) != 0)) {
		saved = sealed_gdbm_errno(db);
		found = -1;
	} else
		saved = errno;
	if (gdbm_close(db) != 0 && found == 1) {
		saved = sealed_gdbm_errno(NULL);
		found = -1;
	}
	if (found != 1)
		unlinkat(dirfd, work, 0);
	errno = saved;
	return (found);
}
