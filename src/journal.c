/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * journal.c: the append-only journal files of the spool.
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
#include <stdlib.h>
#include <string.h>
#include <sys/endian.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "journal.h"
#include "util.h"

#define MAGIC		"EPJ1"
#define ENTRY_HEAD	16
/* No record is larger: --max-message-size stays below 2 GiB. */
#define ENTRY_MAX	((uint32_t)INT32_MAX)
#define READ_CHUNK	(64 * 1024)
/*
 * A spare is written in chunks of this size: a journal whose size is a
 * multiple of it was made from one, and zeros after its entries are its
 * unused rest. Any other journal ends where its last write did.
 */
#define SPARE_CHUNK	READ_CHUNK
/* Added entries are written out, not yet synced, past this much. */
#define PENDING_MAX	(256 * 1024)
/* A read that fails is skipped this much at a time: a disk's block. */
#define BLOCK_SIZE	4096

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
	if (fdatasync(j->fd) == -1 || lseek(j->fd, JOURNAL_HEADER_SIZE,
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
 * Make a spare: a file of size zero bytes (rounded up to SPARE_CHUNK), on
 * disk, for journal_adopt(). A spare of that size left by an earlier run
 * is taken as it is: nothing but a header is ever written to a spare
 * before it is adopted.
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
		if (done >= size && fdatasync(fd) == 0)
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
	    -1 || fdatasync(j->fd) == -1)) ||
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
	survey->cut = survey->damaged ? 0 : sb.st_size - survey->end;
	journal_reader_close(r);
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
	if (write_pending(j) == 0 && fdatasync(j->fd) == 0) {
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
