/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * journal_reader.c: reading the journals journal.c writes: entry by
 * entry, past damage (journal_resync), and a survey of the newest one at
 * resume, which tells a crash's torn tail from damage.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "journal.h"
#include "journal_int.h"
#include "util.h"

/* A read that fails is skipped this much at a time: a disk's block. */
#define BLOCK_SIZE	4096

struct journal_reader {
	int		 fd;
	uint64_t	 first;
	uint64_t	 expected;	/* sequence number of the next entry */
	off_t		 offset;	/* of the next entry */
	unsigned char	*buf;
	size_t		 start;		/* of offset's byte in buf */
	size_t		 buf_len;
	size_t		 buf_size;
	bool		 header_damaged;
	bool		 any_sequence;	/* the next entry found may have any */
};

/*
 * After the last whole entry, at offset at of a file of size bytes, is
 * what a crash can leave there: a header cut short, or an entry numbered
 * next whose length runs past the end of the file?
 */
static bool
torn_tail(const struct journal_reader *r, off_t at, off_t size)
{
	unsigned char	head[ENTRY_HEAD];

	if (size - at < ENTRY_HEAD)
		return (true);
	if (pread(r->fd, head, sizeof head, at) != (ssize_t)sizeof head)
		return (false);
	return (be64dec(head) == r->expected && be32dec(head + 8) <=
	    ENTRY_MAX && (off_t)be32dec(head + 8) > size - at - ENTRY_HEAD);
}

/*
 * Number the entries the damaged bytes from at to size may hold, those
 * that cannot be read (error) or fail their checks: the ones whose heads
 * still give their lengths, and the damaged one after them; then, unless
 * the rest is the zeros of a spare, as many as the rest could hold, a
 * bound: numbers from survey->bound on may never have been given.
 */
static void
number_damaged(const struct journal_reader *r, struct journal_survey *survey,
    off_t at, off_t size, int error)
{
	unsigned char	head[ENTRY_HEAD];
	off_t		whole;

	while (size - at >= ENTRY_HEAD && pread(r->fd, head, sizeof head,
	    at) == (ssize_t)sizeof head && be64dec(head) != 0 &&
	    (whole = ENTRY_HEAD + (off_t)be32dec(head + 8)) <= size - at) {
		survey->next++;
		at += whole;
	}
	if (error == EBADMSG)
		survey->next++;
	survey->bound = survey->next;
	if (error != EBADMSG || size % SPARE_CHUNK != 0)
		survey->next += (uint64_t)((size - at) / (ENTRY_HEAD + 1)) + 1;
}

/* Read every entry, from one that checks out to the next, to the end. */
static int
survey_entries(struct journal_reader *r, struct journal_survey *survey,
    bool skip_unreadable, int *error)
{
	const void	*data;
	uint64_t	 seq;
	size_t		 size;
	int		 found;

	for (;;) {
		while ((found = journal_read(r, -1, &seq, &data, &size)) == 1)
			;
		survey->end = r->offset;
		survey->next = r->expected;
		*error = found == -1 ? errno : 0;
		if (found == -1 && *error != EBADMSG && (!skip_unreadable ||
		    *error == ENOMEM))
			return (-1);
		/* Zeros end the entries, unless some follow them. */
		if ((found = journal_resync(r, -1, found == -1 ? *error :
		    EBADMSG)) != 1)
			return (found);
		survey->damaged = true;
	}
}

/*
 * Read a journal a run left, to its end and past any damage, and say what
 * it holds (journal.h). A read that fails fails the survey, for the caller
 * to try again, unless skip_unreadable: then the block is skipped, and
 * counted as damage.
 */
int
journal_survey(int dirfd, const char *name, bool skip_unreadable,
    struct journal_survey *survey)
{
	struct journal_reader	*r;
	struct stat		 sb;
	bool			 spare;
	int			 error, saved;

	memset(survey, 0, sizeof *survey);
	survey->bound = UINT64_MAX;
	if (journal_reader_open(&r, dirfd, name) == -1)
		return (-1);
	survey->first = r->first;
	survey->damaged = r->header_damaged;
	if (fstat(r->fd, &sb) == -1 ||
	    survey_entries(r, survey, skip_unreadable, &error) == -1) {
		saved = errno;
		journal_reader_close(r);
		errno = saved;
		return (-1);
	}
	spare = sb.st_size % SPARE_CHUNK == 0;
	if (survey->end < sb.st_size && !torn_tail(r, survey->end,
	    sb.st_size) && (error != 0 || !spare)) {
		/*
		 * Its last entries are damaged, or (outside a spare's zeros)
		 * zeroed, or could not be read: they may have been
		 * acknowledged, and their numbers are never given again.
		 */
		survey->damaged = true;
		number_damaged(r, survey, survey->end, sb.st_size, error);
	}
	/* What follows a spare's entries is its zeros, not a torn tail. */
	if (!survey->damaged && (!spare || torn_tail(r, survey->end,
	    sb.st_size)))
		survey->cut = sb.st_size - survey->end;
	journal_reader_close(r);
	return (0);
}

/*
 * Have at least want bytes from r->offset on in the buffer, from r->start;
 * 0 if the file, or limit (-1: none), ends first. Bytes before r->start
 * were handed out already. Nothing past limit is read: in a journal made
 * from a spare, what lies there are zeros that commits will overwrite.
 */
static int
read_ahead(struct journal_reader *r, size_t want, off_t limit)
{
	struct stat	 sb;
	unsigned char	*p;
	size_t		 size, room;
	off_t		 end;
	ssize_t		 n;

	if (r->buf_len - r->start >= want)
		return (1);
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->buf_len - r->start);
		r->buf_len -= r->start;
		r->start = 0;
	}
	if (want > r->buf_size) {
		/* A length read from a damaged file must not cost memory. */
		if (fstat(r->fd, &sb) == -1)
			return (-1);
		if (r->offset + (off_t)want > sb.st_size)
			return (0);
		size = want > READ_CHUNK ? want : READ_CHUNK;
		if ((p = realloc(r->buf, size)) == NULL)
			return (-1);
		r->buf = p;
		r->buf_size = size;
	}
	while (r->buf_len < want) {
		end = r->offset + (off_t)r->buf_len;
		room = r->buf_size - r->buf_len;
		if (limit != -1 && (off_t)room > limit - end)
			room = (size_t)(limit - end);
		if (room == 0)
			return (0);
		n = pread(r->fd, r->buf + r->buf_len, room, end);
		if (n == -1 && errno == EINTR)
			continue;
		/* A block that cannot be read past what is wanted is not ours. */
		if (n == -1 && errno != ENOMEM && room > want - r->buf_len)
			n = pread(r->fd, r->buf + r->buf_len, want - r->buf_len,
			    end);
		if (n == -1)
			return (-1);
		if (n == 0)
			return (0);
		r->buf_len += (size_t)n;
	}
	return (1);
}

void
journal_reader_close(struct journal_reader *r)
{
	if (r == NULL)
		return;
	close(r->fd);
	free(r->buf);
	free(r);
}

/* Move the reader n bytes on, past what it has read ahead if need be. */
static void
step(struct journal_reader *r, off_t n)
{
	if ((off_t)(r->buf_len - r->start) >= n)
		r->start += (size_t)n;
	else
		r->start = r->buf_len = 0;
	r->offset += n;
}

/*
 * Could an entry begin at the reader's offset, in a file of size bytes?
 * Its number follows those read (any, after a damaged header) and its
 * length fits in the file: worth the cost of its CRC.
 */
static bool
plausible(const struct journal_reader *r, off_t size, size_t *whole)
{
	const unsigned char	*p = r->buf + r->start;
	uint64_t		 seq = be64dec(p);
	uint32_t		 len = be32dec(p + 8);

	if (len > ENTRY_MAX || (off_t)len > size - r->offset - ENTRY_HEAD)
		return (false);
	if (!r->any_sequence && (seq < r->expected ||
	    seq - r->expected > (uint64_t)size))
		return (false);
	*whole = ENTRY_HEAD + len;
	return (true);
}

static bool
checks_out(const struct journal_reader *r)
{
	const unsigned char	*p = r->buf + r->start;

	return (be32dec(p + 12) == checksum(checksum(0, p, 12), p + ENTRY_HEAD,
	    be32dec(p + 8)));
}

/*
 * The reader is at zeros, which no entry begins with: move it on to 15
 * bytes before the next byte that is not zero in what it has read ahead
 * (an entry's small number begins with zeros), or as near its end.
 */
static void
skip_zeros(struct journal_reader *r)
{
	size_t	at = r->start + ENTRY_HEAD;

	while (at < r->buf_len && r->buf[at] == 0)
		at++;
	step(r, (off_t)(at - r->start - (ENTRY_HEAD - 1)));
}

/*
 * Find the first entry that checks out from the reader's offset on, past
 * damage, and past blocks that cannot be read: 1 with the reader at it,
 * 0 if none does before the file (or limit) ends, -1 on error.
 */
static int
seek_entry(struct journal_reader *r, off_t limit)
{
	static const unsigned char	zeros[ENTRY_HEAD];
	struct stat			sb;
	size_t				whole;
	int				found;

	if (fstat(r->fd, &sb) == -1)
		return (-1);
	while (r->offset < sb.st_size && (limit == -1 || r->offset < limit)) {
		if ((found = read_ahead(r, ENTRY_HEAD, limit)) == 1 &&
		    memcmp(r->buf + r->start, zeros, ENTRY_HEAD) == 0) {
			skip_zeros(r);
			continue;
		}
		if (found == 1 && plausible(r, sb.st_size, &whole))
			found = read_ahead(r, whole, limit);
		else if (found == 1)
			found = 0;
		if (found == 1 && checks_out(r)) {
			r->expected = be64dec(r->buf + r->start);
			r->any_sequence = false;
			return (1);
		}
		if (found == -1 && errno == ENOMEM)
			return (-1);
		if (found == -1)
			step(r, BLOCK_SIZE - r->offset % BLOCK_SIZE);
		else
			step(r, 1);
	}
	return (0);
}

/*
 * Go on past the damage, or the unreadable block (error: the errno of the
 * failed journal_read or journal_reader_open), where the reader stopped:
 * 1 at the next entry that checks out, with journal_reader_next its
 * number (those before it are lost); 0 if none follows; -1 on error.
 */
int
journal_resync(struct journal_reader *r, off_t limit, int error)
{
	if (error == EBADMSG)
		step(r, 1);
	else
		step(r, BLOCK_SIZE - r->offset % BLOCK_SIZE);
	return (seek_entry(r, limit));
}

int
journal_reader_open(struct journal_reader **rp, int dirfd, const char *name)
{
	struct journal_reader	*r;
	int			 found, saved;

	*rp = NULL;
	if ((r = calloc(1, sizeof *r)) == NULL)
		return (-1);
	if ((r->fd = file_open(dirfd, name, O_RDONLY, 1)) == -1) {
		free(r);
		return (-1);
	}
	found = read_ahead(r, JOURNAL_HEADER_SIZE, JOURNAL_HEADER_SIZE);
	if (found == 1 && memcmp(r->buf, MAGIC, 4) == 0 &&
	    be32dec(r->buf + 12) == checksum(0, r->buf, 12)) {
		r->first = r->expected = be64dec(r->buf + 4);
		step(r, JOURNAL_HEADER_SIZE);
	} else if (found != -1) {
		/* A damaged header: the entries say where they belong. */
		r->any_sequence = r->header_damaged = true;
		step(r, JOURNAL_HEADER_SIZE);
		if ((found = seek_entry(r, -1)) == 0)
			errno = EBADMSG;
		r->first = r->expected;
	}
	if (found != 1) {
		saved = errno;
		journal_reader_close(r);
		errno = saved;
		return (-1);
	}
	*rp = r;
	return (0);
}

/*
 * The file ends inside an entry. Up to a limit, the rest is still to come;
 * at the end of the file it is a write cut short, or damage.
 */
static int
cut_short(const struct journal_reader *r, int found, off_t limit)
{
	if (found == 0 && limit == -1 && r->buf_len > r->start) {
		errno = EBADMSG;
		return (-1);
	}
	return (found);
}

/*
 * The next entry, if it ends at or before limit (-1: the end of the file).
 * Returns 1 with *data valid until the next call, 0 at the end, -1 with
 * errno EBADMSG for an entry that is damaged, out of sequence, or (with no
 * limit) cut short by the end of the file.
 */
int
journal_read(struct journal_reader *r, off_t limit, uint64_t *seq,
    const void **data, size_t *size)
{
	static const unsigned char	zeros[ENTRY_HEAD];
	const unsigned char	*p;
	size_t			 len, whole;
	int			 found;

	if ((found = read_ahead(r, ENTRY_HEAD, limit)) != 1)
		return (cut_short(r, found, limit));
	p = r->buf + r->start;
	if (memcmp(p, zeros, ENTRY_HEAD) == 0)
		return (0);	/* the unused rest of a spare */
	len = be32dec(p + 8);
	whole = ENTRY_HEAD + len;
	if (len > ENTRY_MAX || be64dec(p) != r->expected) {
		errno = EBADMSG;
		return (-1);
	}
	if ((found = read_ahead(r, whole, limit)) != 1)
		return (cut_short(r, found, limit));
	p = r->buf + r->start;
	if (be32dec(p + 12) != checksum(checksum(0, p, 12), p + ENTRY_HEAD,
	    len)) {
		errno = EBADMSG;
		return (-1);
	}
	*seq = r->expected++;
	*data = p + ENTRY_HEAD;
	*size = len;
	r->offset += (off_t)whole;
	r->start += whole;
	return (1);
}

uint64_t
journal_reader_first(const struct journal_reader *r)
{
	return (r->first);
}

/* Was the header damaged? The first entry found stood in for it. */
bool
journal_reader_damaged(const struct journal_reader *r)
{
	return (r->header_damaged);
}

/* Where the next entry starts; after the last whole one, the file's end. */
off_t
journal_reader_offset(const struct journal_reader *r)
{
	return (r->offset);
}

/* The sequence number the next entry must have. */
uint64_t
journal_reader_next(const struct journal_reader *r)
{
	return (r->expected);
}
