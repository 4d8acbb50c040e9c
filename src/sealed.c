/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * sealed.c: GDBM files written once, under a temporary name, then read.
 *
 * Besides the records (in blocks under 8-byte keys, or one a value in
 * older files: sealed.h says which) a sealed file holds "end", the
 * sequence number after its last record, "key_order" and, with blocks,
 * "block_records". Files of echopost 1 hold "head", "next", "bytes" and
 * "clean" instead; "next" stands for "end" in them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
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

#define LENGTH_SIZE	4
/* Memory must not grow with the file: bucket caches of bounded size. */
#define READ_BUCKETS	1024
#define FLAGS		(GDBM_NOMMAP | GDBM_CLOEXEC | GDBM_CLOERROR)

/*
 * Each value GDBM reads costs two system calls (lseek, read), as many as
 * the request that sends the record: files sealed now hold records
 * several to a value, a block of consecutive records keyed by its first,
 * each record its length (4 bytes, little-endian), then its bytes. A
 * block closes at BLOCK_RECORDS records, or once it reaches BLOCK_BYTES.
 * "key_order" says KEYS_OF_BLOCKS_SEVEN_BIT, which a build from before
 * blocks refuses rather than take a block for one record, and "block_records"
 * how many a block may hold, and so how far below a record its block's
 * key can be. Other files have a record a value.
 */
#define BLOCK_RECORDS	64
#define BLOCK_BYTES	(64 * 1024)
#define BLOCK_RECORDS_MAX 4096		/* more, and the file is refused */

struct block {
	char		*data;
	size_t		 size;
	size_t		 allocated;
	uint64_t	 first;		/* its first record's number */
	size_t		 count;
};

struct sealed {
	GDBM_FILE	 db;
	enum key_order	 order;
	uint64_t	 block_records;	/* 0: a record a value */
	struct block	 block;		/* the last one read */
	uint32_t	 offsets[BLOCK_RECORDS_MAX]; /* of its records */
};

struct sealed_writer {
	GDBM_FILE	 db;
	int		 dirfd;
	char		*name;		/* temporary, until sealed */
	struct block	 block;		/* being filled */
};

static datum
sequence_key(uint64_t seq, enum key_order order,
    unsigned char buf[SEVEN_BIT_KEY_SIZE])
{
	datum	key;
	int	i;

	key.dptr = (char *)buf;
	key.dsize = KEY_SIZE;
	switch (order) {
	case KEYS_BIG_ENDIAN:
		be64enc(buf, seq);
		break;
	case KEYS_LITTLE_ENDIAN:
	case KEYS_OF_BLOCKS:
		le64enc(buf, seq);
		break;
	case KEYS_OF_BLOCKS_SEVEN_BIT:
		for (i = 0; i < SEVEN_BIT_KEY_SIZE; i++)
			buf[i] = (seq >> (7 * i)) & 0x7f;
		key.dsize = SEVEN_BIT_KEY_SIZE;
		break;
	}
	return (key);
}

/* A bookkeeping number, as a value: big-endian, as echopost 1 had it. */
datum
sealed_number_value(uint64_t number, unsigned char buf[KEY_SIZE])
{
	datum	value;

	be64enc(buf, number);
	value.dptr = (char *)buf;
	value.dsize = KEY_SIZE;
	return (value);
}

datum
sealed_name_key(const char *name)
{
	datum	key;

	key.dptr = (char *)name;
	key.dsize = (int)strlen(name);
	return (key);
}

/* A bookkeeping number: 1 if there, 0 if not, -1 if GDBM cannot tell. */
int
sealed_meta_get(GDBM_FILE db, const char *name, uint64_t *value)
{
	datum	data;
	int	found;

	data = gdbm_fetch(db, sealed_name_key(name));
	if (data.dptr == NULL)
		return (gdbm_errno == GDBM_ITEM_NOT_FOUND ? 0 : -1);
	found = data.dsize == KEY_SIZE;
	if (found)
		*value = be64dec(data.dptr);
	free(data.dptr);
	return (found);
}

/* How the file's record keys are written: 0, or -1 if GDBM cannot tell. */
int
sealed_key_order(GDBM_FILE db, enum key_order *order)
{
	uint64_t	value;

	switch (sealed_meta_get(db, "key_order", &value)) {
	case 0:
		*order = KEYS_BIG_ENDIAN;	/* echopost 1's */
		return (0);
	case 1:
		if (value > KEYS_OF_BLOCKS_SEVEN_BIT)
			break;
		*order = (enum key_order)value;
		return (0);
	}
	return (-1);
}

/*
 * errno for GDBM's last failure on db (NULL: an open): the system's when
 * a system call failed, which a later try may not meet; EBADMSG when GDBM
 * found the file's bytes damaged, which it always will.
 */
int
sealed_gdbm_errno(GDBM_FILE db)
{
	int	error;

	if (gdbm_errno == GDBM_MALLOC_ERROR)
		return (ENOMEM);
	if (!gdbm_check_syserr(gdbm_errno))
		return (EBADMSG);
	error = db != NULL ? gdbm_last_syserr(db) : errno;
	return (error != 0 ? error : EIO);
}

static int
set_cache(GDBM_FILE db, size_t buckets)
{
	return (gdbm_setopt(db, GDBM_SETCACHESIZE, &buckets, sizeof buckets));
}

/*
 * A reader caches every bucket of a sealed file (a few hundred), up to
 * READ_BUCKETS: records are fetched in key order, which GDBM's hash
 * spreads over all of them, and a missed bucket costs two system calls.
 */
static int
fit_cache(GDBM_FILE db)
{
	size_t	buckets;

	if (gdbm_bucket_count(db, &buckets) != 0)
		return (-1);
	return (set_cache(db, buckets < READ_BUCKETS ? buckets :
	    READ_BUCKETS));
}

/*
 * Open the GDBM file name in dirfd on a descriptor this process opened, no
 * link followed, only a file of ours (two names: a crash while it was
 * named leaves its temporary name too). GDBM knows it as path: its
 * messages name it, and a recovery builds the new file beside it.
 */
GDBM_FILE
sealed_open_gdbm(int dirfd, const char *name, const char *path,
    int open_flags, int gdbm_flags, size_t buckets)
{
	GDBM_FILE	db;
	int		fd;

	if ((fd = file_open(dirfd, name, open_flags, 2)) == -1)
		return (NULL);
	if ((db = gdbm_fd_open(fd, path, 0, gdbm_flags | FLAGS, NULL)) ==
	    NULL) {
		errno = sealed_gdbm_errno(NULL);
		return (NULL);
	}
	if (set_cache(db, buckets) != 0 && !gdbm_needs_recovery(db)) {
		errno = sealed_gdbm_errno(db);
		gdbm_close(db);
		return (NULL);
	}
	return (db);
}

/* Begin a sealed file under name in dirfd, a name nothing else has. */
int
sealed_create(struct sealed_writer **wp, int dirfd, const char *name,
    const char *path)
{
	struct sealed_writer	*w;

	*wp = NULL;
	if ((w = calloc(1, sizeof *w)) == NULL ||
	    (w->name = strdup(name)) == NULL) {
		free(w);
		return (-1);
	}
	w->dirfd = dirfd;
	w->db = sealed_open_gdbm(dirfd, name, path, O_RDWR | O_CREAT | O_EXCL,
	    GDBM_NEWDB, WRITE_BUCKETS);
	if (w->db == NULL) {
		if (errno == EEXIST)
			w->dirfd = -1;	/* not ours to remove */
		sealed_abandon(w);
		return (-1);
	}
	*wp = w;
	return (0);
}

/* Add record seq to the block, which grows to take it. */
static int
block_add(struct block *b, uint64_t seq, const void *data, size_t size)
{
	size_t	 need, allocated;
	char	*grown;

	/* GDBM takes a value's size as an int. */
	if (size > INT_MAX - LENGTH_SIZE - b->size) {
		errno = EFBIG;
		return (-1);
	}
	need = b->size + LENGTH_SIZE + size;
	if (need > b->allocated) {
		allocated = need > 2 * b->allocated ? need : 2 * b->allocated;
		if ((grown = realloc(b->data, allocated)) == NULL)
			return (-1);
		b->data = grown;
		b->allocated = allocated;
	}
	if (b->count == 0)
		b->first = seq;
	le32enc(b->data + b->size, (uint32_t)size);
	memcpy(b->data + b->size + LENGTH_SIZE, data, size);
	b->size = need;
	b->count++;
	return (0);
}

static int
store_block(struct sealed_writer *w)
{
	unsigned char	buf[SEVEN_BIT_KEY_SIZE];
	datum		value;

	value.dptr = w->block.data;
	value.dsize = (int)w->block.size;
	if (gdbm_store(w->db, sequence_key(w->block.first,
	    KEYS_OF_BLOCKS_SEVEN_BIT, buf), value, GDBM_REPLACE) != 0) {
		errno = sealed_gdbm_errno(w->db);
		return (-1);
	}
	w->block.size = 0;
	w->block.count = 0;
	return (0);
}

/* Records go in ascending order; one that does not follow starts a block. */
int
sealed_put(struct sealed_writer *w, uint64_t seq, const void *data,
    size_t size)
{
	struct block	*b = &w->block;

	if (b->count > 0 && (seq != b->first + b->count ||
	    b->count == BLOCK_RECORDS || b->size >= BLOCK_BYTES) &&
	    store_block(w) == -1)
		return (-1);
	return (block_add(b, seq, data, size));
}

/* Write "end", sync and close the file, then name it name, durably. */
int
sealed_finish(struct sealed_writer *w, uint64_t end, const char *name)
{
	unsigned char	buf[KEY_SIZE], order[KEY_SIZE], records[KEY_SIZE];
	int		status = 0, saved;

	if (w->block.count > 0 && store_block(w) == -1)
		status = -1;
	else if (gdbm_store(w->db, sealed_name_key("key_order"),
	    sealed_number_value(KEYS_OF_BLOCKS_SEVEN_BIT, order),
	    GDBM_REPLACE) != 0 ||
	    gdbm_store(w->db, sealed_name_key("block_records"),
	    sealed_number_value(BLOCK_RECORDS, records), GDBM_REPLACE) != 0 ||
	    gdbm_store(w->db, sealed_name_key("end"),
	    sealed_number_value(end, buf), GDBM_REPLACE) != 0 ||
	    gdbm_sync(w->db) != 0) {
		errno = sealed_gdbm_errno(w->db);
		status = -1;
	}
	saved = errno;
	if (gdbm_close(w->db) != 0 && status == 0) {
		saved = sealed_gdbm_errno(NULL);
		status = -1;
	}
	w->db = NULL;
	if (status == 0 && publish_file(w->dirfd, w->name, name) == -1) {
		saved = errno;
		status = -1;
	}
	sealed_abandon(w);
	errno = saved;
	return (status);
}

/* Close a sealed file not finished, and remove what was written of it. */
void
sealed_abandon(struct sealed_writer *w)
{
	if (w == NULL)
		return;
	if (w->db != NULL)
		gdbm_close(w->db);
	if (w->dirfd != -1)
		unlinkat(w->dirfd, w->name, 0);
	free(w->block.data);
	free(w->name);
	free(w);
}

/* How many records a block of the file may hold: 0, or -1 if unreadable. */
static int
block_layout(struct sealed *s)
{
	if (s->order != KEYS_OF_BLOCKS &&
	    s->order != KEYS_OF_BLOCKS_SEVEN_BIT) {
		s->block_records = 0;
		return (0);
	}
	if (sealed_meta_get(s->db, "block_records", &s->block_records) != 1 ||
	    s->block_records == 0 || s->block_records > BLOCK_RECORDS_MAX)
		return (-1);
	return (0);
}

static int
open_failed(struct sealed *s)
{
	int	error = errno;

	sealed_close(s);
	errno = error;
	return (-1);
}

int
sealed_open(struct sealed **sp, int dirfd, const char *name,
    const char *path)
{
	struct sealed	*s;

	*sp = NULL;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return (-1);
	s->db = sealed_open_gdbm(dirfd, name, path, O_RDONLY, GDBM_READER |
	    GDBM_NOLOCK, READ_BUCKETS);
	if (s->db == NULL || gdbm_needs_recovery(s->db) ||
	    fit_cache(s->db) != 0) {
		if (s->db != NULL)
			errno = gdbm_needs_recovery(s->db) ? EBADMSG :
			    sealed_gdbm_errno(s->db);
		return (open_failed(s));
	}
	if (sealed_key_order(s->db, &s->order) != 0 || block_layout(s) != 0) {
		errno = sealed_gdbm_errno(s->db);
		return (open_failed(s));
	}
	*sp = s;
	return (0);
}

static bool
in_block(const struct sealed *s, uint64_t seq)
{
	return (s->block.count > 0 && seq >= s->block.first &&
	    seq - s->block.first < s->block.count);
}

static void
drop_block(struct sealed *s)
{
	free(s->block.data);
	s->block.data = NULL;
	s->block.count = 0;
}

/* Take data, the block keyed first, if its lengths fill it exactly. */
static int
take_block(struct sealed *s, uint64_t first, datum data)
{
	size_t		at = 0, count = 0, size = (size_t)data.dsize;
	uint32_t	length;

	while (at < size) {
		if (count == s->block_records || size - at < LENGTH_SIZE)
			return (-1);
		length = le32dec(data.dptr + at);
		if (length > size - at - LENGTH_SIZE)
			return (-1);
		s->offsets[count++] = (uint32_t)at;
		at += LENGTH_SIZE + length;
	}
	if (count == 0)
		return (-1);
	s->block.data = data.dptr;
	s->block.size = size;
	s->block.first = first;
	s->block.count = count;
	return (0);
}

/*
 * Read the block that would hold seq, the one with the nearest key at or
 * below it: 1 if it holds seq, 0 if no block does, -1 on error.
 */
static int
load_block(struct sealed *s, uint64_t seq)
{
	unsigned char	buf[SEVEN_BIT_KEY_SIZE];
	datum		data;
	uint64_t	key, lowest;

	drop_block(s);
	lowest = seq > s->block_records - 1 ? seq - (s->block_records - 1) :
	    0;
	for (key = seq;; key--) {
		data = gdbm_fetch(s->db, sequence_key(key, s->order, buf));
		if (data.dptr != NULL)
			break;
		if (gdbm_errno != GDBM_ITEM_NOT_FOUND) {
			errno = sealed_gdbm_errno(s->db);
			return (-1);
		}
		if (key == lowest)
			return (0);
	}
	if (take_block(s, key, data) == -1) {
		free(data.dptr);
		errno = EBADMSG;
		return (-1);
	}
	return (in_block(s, seq));
}

static int
fetch_record(struct sealed *s, uint64_t seq, void **value, size_t *size)
{
	unsigned char	buf[SEVEN_BIT_KEY_SIZE];
	datum		data;

	data = gdbm_fetch(s->db, sequence_key(seq, s->order, buf));
	if (data.dptr == NULL) {
		if (gdbm_errno == GDBM_ITEM_NOT_FOUND)
			return (0);
		errno = sealed_gdbm_errno(s->db);
		return (-1);
	}
	*value = data.dptr;
	*size = (size_t)data.dsize;
	return (1);
}

/* Record seq: 1 and a malloc'd copy in *value, 0 if absent, -1 on error. */
int
sealed_get(struct sealed *s, uint64_t seq, void **value, size_t *size)
{
	const char	*record;
	size_t		 length;
	int		 found;

	if (s->block_records == 0)
		return (fetch_record(s, seq, value, size));
	if (!in_block(s, seq) && (found = load_block(s, seq)) != 1)
		return (found);
	record = s->block.data + s->offsets[seq - s->block.first];
	length = le32dec(record);
	if ((*value = malloc(length > 0 ? length : 1)) == NULL)
		return (-1);
	memcpy(*value, record + LENGTH_SIZE, length);
	*size = length;
	return (1);
}

int
sealed_meta(struct sealed *s, const char *name, uint64_t *value)
{
	return (sealed_meta_get(s->db, name, value));
}

void
sealed_close(struct sealed *s)
{
	if (s == NULL)
		return;
	if (s->db != NULL)
		gdbm_close(s->db);
	free(s->block.data);
	free(s);
}
