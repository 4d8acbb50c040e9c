/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * journal.h: an append-only file of records, the spool's fast way to disk.
 *
 * A journal file begins with a header naming the sequence number of its
 * first entry. Each entry carries its sequence number, its length and a
 * CRC-32, so that a write torn by a crash is found and cut off, and
 * damage is found and read past (journal.c says how). Appends
 * are gathered in memory and go out with one write (a few, for a group
 * over 256 KiB) and one fdatasync per commit: a group of calls costs one
 * disk sync, and no GDBM work.
 *
 * A writer owns the file; readers open it on their own descriptor and read
 * entries up to a limit the writer has committed. Files are named within
 * a directory given by its descriptor, and never followed as links.
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JOURNAL_HEADER_SIZE	16

struct journal;
struct journal_reader;

/*
 * What a journal left by a run holds (journal_survey). Appends may go on
 * after end, the last whole entry, unless it is damaged: then it holds
 * damage a crash cannot leave, or blocks that could not be read, and must
 * be kept as it is; no entry it may hold is numbered next or after. Where
 * its end could not be read, next is a bound: numbers from bound on may
 * never have been given (UINT64_MAX: none). cut: the bytes of a tail torn
 * by a crash after end (not the zeros of a spare).
 */
struct journal_survey {
	uint64_t	 first;
	uint64_t	 next;
	uint64_t	 bound;
	off_t		 end;
	off_t		 cut;
	bool		 damaged;
};

int		 journal_create(struct journal **, int, const char *,
		    uint64_t);
int		 journal_survey(int, const char *, bool,
		    struct journal_survey *);
int		 journal_resume(struct journal **, int, const char *,
		    const struct journal_survey *);
int		 journal_prepare(int, const char *, off_t);
int		 journal_adopt(struct journal **, int, const char *,
		    const char *, uint64_t);
int		 journal_add(struct journal *, const void *, size_t,
		    uint64_t *);
int		 journal_commit(struct journal *);
uint64_t	 journal_next(const struct journal *);
off_t		 journal_committed(const struct journal *);
void		 journal_close(struct journal *);

int		 journal_reader_open(struct journal_reader **, int,
		    const char *);
int		 journal_read(struct journal_reader *, off_t, uint64_t *,
		    const void **, size_t *);
int		 journal_resync(struct journal_reader *, off_t, int);
bool		 journal_reader_damaged(const struct journal_reader *);
uint64_t	 journal_reader_first(const struct journal_reader *);
uint64_t	 journal_reader_next(const struct journal_reader *);
off_t		 journal_reader_offset(const struct journal_reader *);
void		 journal_reader_close(struct journal_reader *);

#endif
