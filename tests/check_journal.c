/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * check_journal.c: entries come back in order and whole; a torn commit is
 * cut off; a journal made from a spare reads the same, its zeros ending
 * the entries; damage a crash cannot leave is read past, never cut.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "unit.h"

#define NAME		"test.journal.1"
#define SPARE		"test.journal.spare"

static char	*dir;
static int	 dfd;
static char	 path[4096];
static char	 spare[4096];

static void
setup(void)
{
	dir = unit_tempdir();
	ck_assert_ptr_nonnull(dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ne(dfd, -1);
	snprintf(path, sizeof path, "%s/" NAME, dir);
	snprintf(spare, sizeof spare, "%s/" SPARE, dir);
}

static void
teardown(void)
{
	close(dfd);
	unit_rmtree(dir);
	free(dir);
}

static void
add_text(struct journal *j, const char *text, uint64_t expected)
{
	uint64_t	seq;

	ck_assert_int_eq(journal_add(j, text, strlen(text) + 1, &seq), 0);
	ck_assert_uint_eq(seq, expected);
}

/* Read entries up to limit; they must be "entry N" from first on. */
static uint64_t
read_all(const char *file, off_t limit, uint64_t first)
{
	struct journal_reader	*r;
	const void		*data;
	size_t			 size;
	uint64_t		 seq, count = 0;
	char			 text[32];
	int			 found;

	ck_assert_int_eq(journal_reader_open(&r, dfd, file), 0);
	ck_assert_uint_eq(journal_reader_first(r), first);
	while ((found = journal_read(r, limit, &seq, &data, &size)) == 1) {
		snprintf(text, sizeof text, "entry %llu",
		    (unsigned long long)seq);
		ck_assert_uint_eq(seq, first + count);
		ck_assert_uint_eq(size, strlen(text) + 1);
		ck_assert_str_eq(data, text);
		count++;
	}
	ck_assert_int_eq(found, 0);
	journal_reader_close(r);
	return (count);
}

/* Read a journal whose end is damaged: the whole entries, then -1. */
static uint64_t
read_cut(const char *file)
{
	struct journal_reader	*r;
	const void		*data;
	size_t			 size;
	uint64_t		 seq, count = 0;
	int			 found;

	ck_assert_int_eq(journal_reader_open(&r, dfd, file), 0);
	while ((found = journal_read(r, -1, &seq, &data, &size)) == 1)
		count++;
	ck_assert_int_eq(found, -1);
	ck_assert_int_eq(errno, EBADMSG);
	journal_reader_close(r);
	return (count);
}

static void
add_entries(struct journal *j, uint64_t from, uint64_t to)
{
	char	text[32];

	for (; from < to; from++) {
		snprintf(text, sizeof text, "entry %llu",
		    (unsigned long long)from);
		add_text(j, text, from);
	}
}

/* Take up the journal, as after a restart, and add entries from to to. */
static void
resume_and_add(uint64_t from, uint64_t to)
{
	struct journal_survey	 survey;
	struct journal		*j;

	ck_assert_int_eq(journal_survey(dfd, NAME, false, &survey), 0);
	ck_assert(!survey.damaged);
	ck_assert_uint_eq(survey.next, from);
	ck_assert_int_eq(journal_resume(&j, dfd, NAME, &survey), 0);
	ck_assert_uint_eq(journal_next(j), from);
	add_entries(j, from, to);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_close(j);
}

START_TEST(entries_in_order_up_to_the_limit)
{
	struct journal	*j;
	off_t		 first_commit;

	ck_assert_int_eq(journal_create(&j, dfd, NAME, 100), 0);
	add_entries(j, 100, 150);
	ck_assert_int_eq(journal_commit(j), 0);
	first_commit = journal_committed(j);
	add_entries(j, 150, 1000);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_uint_eq(journal_next(j), 1000);
	ck_assert_uint_eq(read_all(NAME, first_commit, 100), 50);
	ck_assert_uint_eq(read_all(NAME, -1, 100), 900);
	journal_close(j);
}
END_TEST

/* Append bytes to the journal, as a crash or damage leaves them. */
static void
append_bytes(const void *bytes, size_t size)
{
	int	fd;

	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, bytes, size), (ssize_t)size);
	close(fd);
}

/* Ten entries, 0 to 9, committed, the journal closed; its size. */
static off_t
ten_entries(void)
{
	struct journal	*j;
	struct stat	 sb;

	ck_assert_int_eq(journal_create(&j, dfd, NAME, 0), 0);
	add_entries(j, 0, 10);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_close(j);
	ck_assert_int_eq(stat(path, &sb), 0);
	return (sb.st_size);
}

/*
 * A commit torn by a crash after the last one synced: the next entry's
 * head, its data cut short by the end of the file. It is cut off.
 */
START_TEST(torn_commit_cut_off)
{
	struct journal_survey	survey;
	unsigned char		torn[16 + 40];
	off_t			size;

	size = ten_entries();
	memset(torn, 0, sizeof torn);
	torn[7] = 10;			/* entry 10 */
	torn[11] = 200;			/* of 200 bytes, 40 of them here */
	memset(torn + 16, 'x', 40);
	append_bytes(torn, sizeof torn);
	ck_assert_int_eq(journal_survey(dfd, NAME, false, &survey), 0);
	ck_assert(!survey.damaged);
	ck_assert_int_eq(survey.end, size);
	ck_assert_int_eq(survey.cut, (off_t)sizeof torn);

	resume_and_add(10, 20);
	ck_assert_uint_eq(read_all(NAME, -1, 0), 20);
}
END_TEST

/*
 * Bytes after the last entry that no crash writes (no entry numbered
 * next, cut short): its last entries may be damaged, and acknowledged.
 * The journal is left as it is, and numbers go on after all those bytes
 * could hold.
 */
START_TEST(damaged_tail_kept)
{
	struct journal_survey	survey;
	struct stat		sb;
	char			tail[100];
	off_t			size;

	size = ten_entries();
	memset(tail, 0x5a, sizeof tail);
	append_bytes(tail, sizeof tail);
	ck_assert_int_eq(journal_survey(dfd, NAME, false, &survey), 0);
	ck_assert(survey.damaged);
	/* No number those bytes could hold is given again; no more. */
	ck_assert_uint_gt(survey.next, 10);
	ck_assert_uint_le(survey.next, 10 + sizeof tail / 16 + 1);
	ck_assert_int_eq(survey.cut, 0);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, size + (off_t)sizeof tail);
}
END_TEST

/* Flip the byte at offset in the journal. */
static void
flip_byte(off_t offset)
{
	unsigned char	byte;
	int		fd;

	fd = open(path, O_RDWR);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(pread(fd, &byte, 1, offset), 1);
	byte ^= 0xff;
	ck_assert_int_eq(pwrite(fd, &byte, 1, offset), 1);
	close(fd);
}

/*
 * One damaged byte in the middle: the entry it is in is lost, every one
 * after it is found again, and nothing is cut.
 */
START_TEST(damage_in_the_middle_read_past)
{
	struct journal_survey	 survey;
	struct journal_reader	*r;
	const void		*data;
	size_t			 size;
	uint64_t		 seq, seen = 0;
	off_t			 whole;
	int			 found;

	whole = ten_entries();
	/* Entries are 16 + 8 bytes ("entry N" and its NUL): inside 4. */
	flip_byte(JOURNAL_HEADER_SIZE + 4 * 24 + 20);
	ck_assert_int_eq(journal_survey(dfd, NAME, false, &survey), 0);
	ck_assert(survey.damaged);
	ck_assert_uint_eq(survey.next, 10);
	ck_assert_int_eq(survey.end, whole);

	ck_assert_int_eq(journal_reader_open(&r, dfd, NAME), 0);
	while ((found = journal_read(r, -1, &seq, &data, &size)) == 1)
		seen++;
	ck_assert_int_eq(found, -1);
	ck_assert_int_eq(errno, EBADMSG);
	ck_assert_uint_eq(seen, 4);
	ck_assert_int_eq(journal_resync(r, -1, EBADMSG), 1);
	ck_assert_uint_eq(journal_reader_next(r), 5);
	while ((found = journal_read(r, -1, &seq, &data, &size)) == 1)
		ck_assert_uint_eq(seq, ++seen);
	ck_assert_int_eq(found, 0);
	ck_assert_uint_eq(seen, 9);
	journal_reader_close(r);
}
END_TEST

/*
 * A damaged header on a journal with entries: they say where they
 * belong, and none is lost.
 */
START_TEST(damaged_header_entries_found)
{
	struct journal_survey	 survey;
	struct journal_reader	*r;

	ten_entries();
	flip_byte(0);
	ck_assert_int_eq(journal_reader_open(&r, dfd, NAME), 0);
	ck_assert(journal_reader_damaged(r));
	ck_assert_uint_eq(journal_reader_first(r), 0);
	journal_reader_close(r);
	ck_assert_int_eq(journal_survey(dfd, NAME, false, &survey), 0);
	ck_assert(survey.damaged);
	ck_assert_uint_eq(survey.next, 10);
}
END_TEST

/*
 * A journal whose last entry the end of the file cuts short: reading it
 * whole says so (damage, if it was closed), and taking it up cuts it off.
 */
START_TEST(entry_cut_short_is_damage)
{
	struct journal	*j;
	struct stat	 sb;

	ck_assert_int_eq(journal_create(&j, dfd, NAME, 0), 0);
	add_entries(j, 0, 10);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_close(j);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(truncate(path, sb.st_size - 3), 0);
	ck_assert_uint_eq(read_cut(NAME), 9);
	resume_and_add(9, 12);
	ck_assert_uint_eq(read_all(NAME, -1, 0), 12);
}
END_TEST

/*
 * A journal made from a spare: zeros after the entries end them, and
 * are no torn tail (no journal_repaired after a clean stop).
 */
START_TEST(spare_reads_the_same)
{
	struct journal_survey	 survey;
	struct journal		*j;
	struct stat		 sb;

	ck_assert_int_eq(journal_prepare(dfd, SPARE, 1 << 20), 0);
	ck_assert_int_eq(journal_adopt(&j, dfd, SPARE, NAME, 7), 0);
	ck_assert_int_eq(access(spare, F_OK), -1);
	add_entries(j, 7, 500);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_close(j);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 1 << 20);
	ck_assert_uint_eq(read_all(NAME, -1, 7), 493);
	ck_assert_int_eq(journal_survey(dfd, NAME, false, &survey), 0);
	ck_assert(!survey.damaged);
	ck_assert_uint_eq(survey.next, 500);
	ck_assert_int_eq(survey.cut, 0);

	resume_and_add(500, 510);
	ck_assert_uint_eq(read_all(NAME, -1, 7), 503);
}
END_TEST

/*
 * A group larger than the memory kept for it goes out in parts; readers
 * that stop at the commit (the mover) see it only once it is committed.
 */
START_TEST(large_group_one_commit)
{
	struct journal		*j;
	struct journal_reader	*r;
	const void		*data;
	size_t			 size;
	uint64_t		 seq, i;
	static char		 big[40000];

	ck_assert_int_eq(journal_create(&j, dfd, NAME, 0), 0);
	for (i = 0; i < 100; i++) {
		memset(big, 'a' + (int)(i % 26), sizeof big);
		ck_assert_int_eq(journal_add(j, big, sizeof big, &seq), 0);
		ck_assert_uint_eq(seq, i);
	}
	/* Parts are in the file, but a reader up to the commit sees none. */
	ck_assert_int_eq(journal_committed(j), JOURNAL_HEADER_SIZE);
	ck_assert_uint_eq(read_all(NAME, journal_committed(j), 0), 0);
	ck_assert_int_eq(journal_commit(j), 0);
	ck_assert_int_eq(journal_committed(j),
	    JOURNAL_HEADER_SIZE + 100 * (16 + (off_t)sizeof big));
	journal_close(j);
	ck_assert_int_eq(journal_reader_open(&r, dfd, NAME), 0);
	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(journal_read(r, -1, &seq, &data, &size), 1);
		ck_assert_uint_eq(seq, i);
		ck_assert_uint_eq(size, sizeof big);
		ck_assert_int_eq(((const char *)data)[size - 1],
		    'a' + (int)(i % 26));
	}
	ck_assert_int_eq(journal_read(r, -1, &seq, &data, &size), 0);
	journal_reader_close(r);
}
END_TEST

/*
 * A file with no journal header and no entry is refused, not read, with
 * errno EBADMSG: the spool takes that for "no entry in it" and sets the
 * file aside (spool_files.c, spool_check.c), where any other errno is a
 * failure to read, tried again.
 */
START_TEST(no_header_refused)
{
	static const struct {
		const char	*bytes;
		size_t		 size;
	} files[] = {
		{ "", 0 },
		{ "EPJ", 3 },
		{ "not a journal at all", JOURNAL_HEADER_SIZE },
	};
	struct journal_reader	*r;
	size_t			 i;
	int			 fd;

	for (i = 0; i < sizeof files / sizeof files[0]; i++) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ck_assert_int_ne(fd, -1);
		ck_assert_int_eq(write(fd, files[i].bytes, files[i].size),
		    (ssize_t)files[i].size);
		ck_assert_int_eq(close(fd), 0);
		r = (struct journal_reader *)&fd;
		errno = 0;
		ck_assert_int_eq(journal_reader_open(&r, dfd, NAME), -1);
		ck_assert_msg(errno == EBADMSG, "file %zu: errno %d (%s)", i,
		    errno, strerror(errno));
		ck_assert_ptr_null(r);
	}
}
END_TEST

Suite *
journal_suite(void)
{
	Suite	*s = suite_create("journal");
	TCase	*tc = tcase_create("files");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, entries_in_order_up_to_the_limit);
	tcase_add_test(tc, torn_commit_cut_off);
	tcase_add_test(tc, damaged_tail_kept);
	tcase_add_test(tc, damage_in_the_middle_read_past);
	tcase_add_test(tc, damaged_header_entries_found);
	tcase_add_test(tc, entry_cut_short_is_damage);
	tcase_add_test(tc, spare_reads_the_same);
	tcase_add_test(tc, large_group_one_commit);
	tcase_add_test(tc, no_header_refused);
	suite_add_tcase(s, tc);
	return (s);
}
