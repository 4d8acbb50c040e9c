/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * journal.c: the append-only journal files of the spool, as written
 * (journal_reader.c reads them).
 *
 * Layout, all numbers big-endian:
 *	header	"EPJ1", first sequence number (8), CRC-32 of both (4)
 *	entry	sequence number (8), length (4), CRC-32 (4) of the
 *		sequence number, the length and the data, then the data
 * Entries follow each other with consecutive sequence numbers. Reading
 * stops at the first entry that is cut short, fails its CRC or is out of
 * sequence: after a crash that is where the last commit was torn.
 *
 * A crash can leave only that: a torn tail after the last synced commit,
 * or a file shorter than a header. Anything else is damage (a flipped
 * byte, a block of zeros, a block that cannot be read), and what lies
 * past it is not given up: a reader looks for the next entry whose header
 * and CRC check out and goes on from there (journal_resync), and a
 * journal found damaged at resume is left as it is (journal_survey).
 *
 * A journal may be made from a spare: a file written with zeros ahead of
 * time. Overwriting blocks that are already there lets fdatasync skip the
 * file system's own journal, which an append that grows the file cannot;
 * here that halves the cost of a commit. Zeros where an entry would begin
 * (a sequence number, length and CRC all zero, which no entry has) end the
 * entries.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "journal.h"
#include "journal_int.h"
#include "util.h"

/* Added entries are written out, not yet synced, past this much. */
#define PENDING_MAX	(256 * 1024)

struct journal {
	int		 fd;
	uint64_t	 next;		/* of the next entry added */
	uint64_t	 committed_next; /* next, as of the last commit */
	off_t		 committed;	/* end of the last commit */
	bool		 torn;		/* a failed commit left bytes behind */
	unsigned char	*pending;	/* entries added, not written */
	size_t		 pending_len;
	size_t		 pending_size;
	off_t		 written;	/* past committed, for this commit */
	int		 write_error;	/* of a write for this commit */
};

static void
encode_header(unsigned char header[JOURNAL_HEADER_SIZE], uint64_t first)
{
	memcpy(header, MAGIC, 4);
	be64enc(header + 4, first);
	be32enc(header + 12, checksum(0, header, 12));
}

/* Write the header at the start of j's file, and sync it. */
static int
write_header(struct journal *j, uint64_t first)
{
	unsigned char	header[JOURNAL_HEADER_SIZE];

	encode_header(header, first);
	if (pwrite(j->fd, header, sizeof header, 0) != (ssize_t)sizeof header)
		return (-1);
	if (compat_sync_data(j->fd) == -1 || lseek(j->fd, JOURNAL_HEADER_SIZE,
	    SEEK_SET) == -1)
		return (-1);
	j->next = j->committed_next = first;
	j->committed = JOURNAL_HEADER_SIZE;
	return (0);
}

static struct journal *
new_journal(void)
{
	struct journal	*j;

	if ((j = calloc(1, sizeof *j)) != NULL)
		j->fd = -1;
	return (j);
}

/*
 * Begin the journal name in the directory dirfd, whose first entry will be
 * number first, durably: a new file, or the spare (NULL: none) under its
 * new name. On failure nothing is left at name: a newest journal that
 * takes no appends would give its numbers again.
 */
static int
begin_file(struct journal **jp, int dirfd, const char *spare,
    const char *name, uint64_t first)
{
	struct journal	*j;
	bool		 named;
	int		 saved;

	*jp = NULL;
	if ((j = new_journal()) == NULL)
		return (-1);
	if (spare == NULL)
		j->fd = file_open(dirfd, name, O_WRONLY | O_CREAT | O_EXCL,
		    1);
	else
		j->fd = file_open(dirfd, spare, O_WRONLY, 1);
	named = spare == NULL && j->fd != -1;
	if (j->fd == -1 || write_header(j, first) == -1 || (spare != NULL &&
	    !(named = renameat(dirfd, spare, dirfd, name) == 0)) ||
	    fsync(dirfd) == -1) {
		saved = errno;
		if (named)
			unlinkat(dirfd, name, 0);
		journal_close(j);
		errno = saved;
		return (-1);
	}
	*jp = j;
	return (0);
}

/* Create journal name in dirfd, whose first entry will be number first. */
int
journal_create(struct journal **jp, int dirfd, const char *name,
    uint64_t first)
{
	return (begin_file(jp, dirfd, NULL, name, first));
}

/*
 * Make a spare: a file of size bytes, all zeros (size rounded up to
 * SPARE_CHUNK), on disk, for journal_adopt(). A spare of that size left
 * by an earlier run is taken as it is: nothing but a header is ever
 * written to a spare before it is adopted.
 */
int
journal_prepare(int dirfd, const char *name, off_t size)
{
	static const unsigned char	 zeros[SPARE_CHUNK];
	struct stat			 sb;
	off_t				 done;
	int				 fd, status = -1;

	size = (size + SPARE_CHUNK - 1) / SPARE_CHUNK * SPARE_CHUNK;
	if ((fd = file_open(dirfd, name, O_WRONLY | O_CREAT, 1)) == -1)
		return (-1);
	if (fstat(fd, &sb) == 0 && sb.st_size == size) {
		close(fd);
		return (0);
	}
	if (ftruncate(fd, 0) == 0) {
		for (done = 0; done < size; done += sizeof zeros)
			if (write_all(fd, zeros, sizeof zeros) == -1)
				break;
		if (done >= size && compat_sync_data(fd) == 0)
			status = 0;
	}
	if (close(fd) == -1)
		status = -1;
	if (status == -1)
		unlinkat(dirfd, name, 0);
	return (status);
}

/* Turn the spare into the journal name, as journal_create. */
int
journal_adopt(struct journal **jp, int dirfd, const char *spare,
    const char *name, uint64_t first)
{
	return (begin_file(jp, dirfd, spare, name, first));
}

/*
 * Take up the journal a run left for appends after its entry end, the end
 * journal_survey found of its last whole one: what follows (a commit torn
 * by the crash, never acknowledged, or the zeros of a spare) is cut off.
 */
int
journal_resume(struct journal **jp, int dirfd, const char *name,
    const struct journal_survey *survey)
{
	struct journal	*j;
	struct stat	 sb;
	int		 saved;

	*jp = NULL;
	if ((j = new_journal()) == NULL)
		return (-1);
	j->next = j->committed_next = survey->next;
	j->committed = survey->end;
	j->fd = file_open(dirfd, name, O_WRONLY, 1);
	if (j->fd == -1 || fstat(j->fd, &sb) == -1 ||
	    (sb.st_size > j->committed && (ftruncate(j->fd, j->committed) ==
	    -1 || compat_sync_data(j->fd) == -1)) ||
	    lseek(j->fd, j->committed, SEEK_SET) == -1) {
		saved = errno;
		journal_close(j);
		errno = saved;
		return (-1);
	}
	*jp = j;
	return (0);
}

/*
 * Write the added entries after what this commit wrote so far, without a
 * sync. The first write after a failed commit cuts off what it left.
 */
static int
write_pending(struct journal *j)
{
	if (j->write_error != 0) {
		errno = j->write_error;
		return (-1);
	}
	if (j->pending_len == 0)
		return (0);
	if ((j->torn && ftruncate(j->fd, j->committed) == -1) ||
	    lseek(j->fd, j->committed + j->written, SEEK_SET) == -1)
		return (-1);
	j->torn = false;
	if (write_all(j->fd, j->pending, j->pending_len) == -1)
		return (-1);
	j->written += (off_t)j->pending_len;
	j->pending_len = 0;
	return (0);
}

/*
 * Add an entry to the next commit; *seq is its sequence number. Memory
 * stays bounded however large the group: past PENDING_MAX, the entries go
 * to the file, and the commit only syncs them. A failed write fails the
 * commit.
 */
int
journal_add(struct journal *j, const void *data, size_t size, uint64_t *seq)
{
	unsigned char	*p;
	size_t		 need, grown;

	if (size > ENTRY_MAX) {
		errno = EFBIG;
		return (-1);
	}
	if (j->pending_len > 0 &&
	    j->pending_len + ENTRY_HEAD + size > PENDING_MAX &&
	    write_pending(j) == -1) {
		if (j->write_error == 0)
			j->write_error = errno;
		j->pending_len = 0;
	}
	need = j->pending_len + ENTRY_HEAD + size;
	if (need > j->pending_size) {
		grown = j->pending_size > 0 ? j->pending_size : READ_CHUNK;
		while (grown < need)
			grown *= 2;
		if ((p = realloc(j->pending, grown)) == NULL)
			return (-1);
		j->pending = p;
		j->pending_size = grown;
	}
	p = j->pending + j->pending_len;
	be64enc(p, j->next);
	be32enc(p + 8, (uint32_t)size);
	be32enc(p + 12, checksum(checksum(0, p, 12), data, size));
	memcpy(p + ENTRY_HEAD, data, size);
	j->pending_len = need;
	*seq = j->next++;
	return (0);
}

/*
 * Write the added entries and sync them. If that fails none of them is
 * kept: their numbers are given again, and whatever reached the file is
 * cut off before anything else is written after it.
 */
int
journal_commit(struct journal *j)
{
	int	saved;

	if (j->next == j->committed_next)
		return (0);
	if (write_pending(j) == 0 && compat_sync_data(j->fd) == 0) {
		j->committed += j->written;
		j->written = 0;
		j->committed_next = j->next;
		return (0);
	}
	saved = errno;
	j->torn = true;
	if (ftruncate(j->fd, j->committed) == 0)
		j->torn = false;
	j->next = j->committed_next;
	j->pending_len = 0;
	j->written = 0;
	j->write_error = 0;
	errno = saved;
	return (-1);
}

uint64_t
journal_next(const struct journal *j)
{
	return (j->next);
}

off_t
journal_committed(const struct journal *j)
{
	return (j->committed);
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->fd != -1)
		close(j->fd);
	free(j->pending);
	free(j);
}
