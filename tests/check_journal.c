/*
 * check_journal.c: entries come back in order and whole; a torn commit is
 * cut off; a journal made from a spare reads the same, its zeros ending
 * the entries.
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
	struct journal	*j;

	ck_assert_int_eq(journal_resume(&j, dfd, NAME), 0);
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

/* Bytes after the last commit, as a crash leaves them, are cut off. */
START_TEST(torn_commit_cut_off)
{
	struct journal	*j;
	int		 fd;
	char		 torn[100];

	ck_assert_int_eq(journal_create(&j, dfd, NAME, 0), 0);
	add_entries(j, 0, 10);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_close(j);
	memset(torn, 0x5a, sizeof torn);
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, torn, sizeof torn), (ssize_t)sizeof torn);
	close(fd);

	resume_and_add(10, 20);
	ck_assert_uint_eq(read_all(NAME, -1, 0), 20);
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

/* A journal made from a spare: zeros after the entries end them. */
START_TEST(spare_reads_the_same)
{
	struct journal	*j;
	struct stat	 sb;

	ck_assert_int_eq(journal_prepare(dfd, SPARE, 1 << 20), 0);
	ck_assert_int_eq(journal_adopt(&j, dfd, SPARE, NAME, 7), 0);
	ck_assert_int_eq(access(spare, F_OK), -1);
	add_entries(j, 7, 500);
	ck_assert_int_eq(journal_commit(j), 0);
	journal_close(j);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 1 << 20);
	ck_assert_uint_eq(read_all(NAME, -1, 7), 493);

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

/* A file that is not a journal is refused, not read. */
START_TEST(no_header_refused)
{
	struct journal_reader	*r;
	int			 fd;

	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, "EPJ", 3), 3);
	close(fd);
	ck_assert_int_eq(journal_reader_open(&r, dfd, NAME), -1);
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
	tcase_add_test(tc, entry_cut_short_is_damage);
	tcase_add_test(tc, spare_reads_the_same);
	tcase_add_test(tc, large_group_one_commit);
	tcase_add_test(tc, no_header_refused);
	suite_add_tcase(s, tc);
	return (s);
}
