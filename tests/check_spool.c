/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * check_spool.c: append and read in order, remove, reopen and resume after
 * a crash, sealing, the spools of echopost 1, damage.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gdbm.h>

#include "spool.h"
#include "unit.h"

static char	*dir;
static char	 path[4096];
static int	 dir_fd;	/* dir, as echopost holds DIR */

/* The spool's quiet time is counted by this clock, moved by the tests. */
static int64_t	 now_ms;
static int64_t	(*real_clock)(void);

static int64_t
test_clock(void)
{
	return (now_ms);
}

static void
setup(void)
{
	dir = unit_tempdir();
	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof path, "%s/test.spool", dir);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ne(dir_fd, -1);
	/* echopost works in DIR: a GDBM recovery makes its files there. */
	ck_assert_int_eq(fchdir(dir_fd), 0);
	now_ms = 0;
	real_clock = spool_quiet_clock;
	spool_quiet_clock = test_clock;
}

static void
teardown(void)
{
	spool_quiet_clock = real_clock;
	ck_assert_int_eq(chdir("/"), 0);
	close(dir_fd);
	unit_rmtree(dir);
	free(dir);
}

static struct spool *
open_spool(void)
{
	struct spool	*s;
	char		 cause[CAUSE_SIZE];

	s = spool_open(dir_fd, path, 0, 0, cause);
	ck_assert_msg(s != NULL, "open: %s", cause);
	return (s);
}

static void
append_text(struct spool *s, const char *text, uint64_t *seq)
{
	ck_assert_int_eq(spool_append(s, text, strlen(text) + 1, seq), 0);
	ck_assert_int_eq(spool_commit(s), 0);
}

/* Check the first record is text, then remove it. */
static void
expect_first(struct spool *s, const char *text)
{
	uint64_t	 seq;
	size_t		 size;
	void		*value;

	ck_assert_int_eq(spool_next(s, &seq, &value, &size), 1);
	ck_assert_str_eq(value, text);
	free(value);
	ck_assert_int_eq(spool_remove(s, seq, size), 0);
}

START_TEST(order_kept)
{
	struct spool	*s = open_spool();
	uint64_t	 seq, previous = 0;
	char		 text[32];
	int		 i;
	void		*value;
	size_t		 size;

	for (i = 0; i < 1000; i++) {
		snprintf(text, sizeof text, "record %d", i);
		append_text(s, text, &seq);
		if (i > 0)
			ck_assert_uint_eq(seq, previous + 1);
		previous = seq;
	}
	ck_assert_uint_eq(spool_count(s), 1000);
	for (i = 0; i < 1000; i++) {
		snprintf(text, sizeof text, "record %d", i);
		expect_first(s, text);
	}
	ck_assert_uint_eq(spool_count(s), 0);
	ck_assert_int_eq(spool_next(s, &seq, &value, &size), 0);
	ck_assert_int_eq(spool_close(s, 0), 0);
}
END_TEST

/*
 * Is a file whose name holds part left in dir? If so, and name is not
 * NULL, its name.
 */
static bool
find_file(const char *part, char name[NAME_MAX + 1])
{
	struct dirent	*entry;
	DIR		*d;
	bool		 found = false;

	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while (!found && (entry = readdir(d)) != NULL)
		if (strstr(entry->d_name, part) != NULL) {
			found = true;
			if (name != NULL)
				strlcpy(name, entry->d_name, NAME_MAX + 1);
		}
	closedir(d);
	return (found);
}

static bool
file_left(const char *part)
{
	return (find_file(part, NULL));
}

/* A clean close and reopen resumes where it was, and numbering goes on. */
START_TEST(reopen_resumes)
{
	struct spool	*s = open_spool();
	uint64_t	 seq, last;

	append_text(s, "one", &seq);
	append_text(s, "two", &seq);
	append_text(s, "three", &last);
	expect_first(s, "one");
	ck_assert_int_eq(spool_close(s, 1), 0);
	ck_assert(file_left(".journal."));
	ck_assert(file_left(".position"));

	s = open_spool();
	ck_assert_uint_eq(spool_count(s), 2);
	append_text(s, "four", &seq);
	ck_assert_uint_gt(seq, last);
	expect_first(s, "two");
	expect_first(s, "three");
	expect_first(s, "four");
	ck_assert_int_eq(spool_close(s, 1), 0);
	ck_assert(!file_left("test.spool"));
}
END_TEST

/*
 * The forwarder reads ahead of the head: records handed out but not
 * removed are sent again by the next run; the head passes only what was
 * removed, and nothing is handed out twice in one run.
 */
START_TEST(read_ahead_resumes_at_first_not_removed)
{
	struct spool	*s = open_spool();
	uint64_t	 seq[4], got;
	void		*value;
	size_t		 size[4], ignored;
	int		 i;

	append_text(s, "one", &got);
	append_text(s, "two", &got);
	append_text(s, "three", &got);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(spool_next(s, &seq[i], &value, &size[i]), 1);
		free(value);
	}
	ck_assert_int_eq(spool_next(s, &got, &value, &ignored), 0);
	ck_assert_uint_eq(seq[1], seq[0] + 1);
	ck_assert_int_eq(spool_remove(s, seq[0], size[0]), 0);
	ck_assert_uint_eq(spool_count(s), 2);
	append_text(s, "four", &got);
	ck_assert_int_eq(spool_next(s, &seq[3], &value, &size[3]), 1);
	ck_assert_str_eq(value, "four");
	free(value);
	ck_assert_int_eq(spool_close(s, 1), 0);

	s = open_spool();
	ck_assert_uint_eq(spool_count(s), 3);
	expect_first(s, "two");
	expect_first(s, "three");
	expect_first(s, "four");
	ck_assert_uint_eq(spool_count(s), 0);
	ck_assert_int_eq(spool_close(s, 1), 0);
	ck_assert(!file_left("test.spool"));
}
END_TEST

/* Long enough without a commit for sealing to be due, on its clock. */
static void
wait_quiet(void)
{
	now_ms += SEAL_QUIET_MS;
}

/*
 * A run that appends count records, delivers the first removed of them,
 * syncs, and dies: no spool_close, a crash. If quiet, it waits for
 * sealing first.
 */
static void
crash_after(int count, int removed, off_t journal_size, bool quiet)
{
	struct spool	*s;
	pid_t		 child;
	int		 status, i;
	uint64_t	 seq;
	char		 text[32], cause[CAUSE_SIZE];

	child = fork();
	ck_assert_int_ne(child, -1);
	if (child == 0) {
		if ((s = spool_open(dir_fd, path, 0, journal_size, cause)) == NULL)
			_exit(1);
		for (i = 0; i < count; i++) {
			snprintf(text, sizeof text, "record %d", i);
			append_text(s, text, &seq);
			spool_roll(s);
			if (i % 10 == 9 && spool_settle(s) == -1)
				_exit(1);
		}
		if (quiet) {
			wait_quiet();
			if (spool_settle(s) == -1)
				_exit(1);
		}
		for (i = 0; i < removed; i++) {
			snprintf(text, sizeof text, "record %d", i);
			expect_first(s, text);
		}
		spool_sync(s);
		kill(getpid(), SIGKILL);
	}
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* Reopen: records from to count are there, in order. */
static void
expect_left(int from, int count)
{
	struct spool	*s = open_spool();
	char		 text[32];
	int		 i;

	ck_assert_uint_eq(spool_count(s), (uint64_t)(count - from));
	for (i = from; i < count; i++) {
		snprintf(text, sizeof text, "record %d", i);
		expect_first(s, text);
	}
	ck_assert_int_eq(spool_close(s, 1), 0);
	ck_assert(!file_left("test.spool"));
}

/* A run that died after saving its head resumes at that head. */
START_TEST(unclean_stop_resumes)
{
	crash_after(50, 1, 0, false);
	expect_left(1, 50);
}
END_TEST

/* Records only in the journal survive a crash. */
START_TEST(crash_keeps_journal)
{
	crash_after(300, 0, 0, false);
	ck_assert(file_left(".journal."));
	ck_assert(!file_left(".sealed."));
	expect_left(0, 300);
}
END_TEST

/* Does journal number exist? */
static bool
journal_exists(int number)
{
	char	name[4096 + 32];

	snprintf(name, sizeof name, "%s.journal.%d", path, number);
	return (access(name, F_OK) == 0);
}

/* Append, commit and settle as the listener and the forwarder would. */
static void
append_settle(struct spool *s, int i)
{
	char		text[32];
	uint64_t	seq;

	snprintf(text, sizeof text, "record %d", i);
	append_text(s, text, &seq);
	spool_roll(s);
	ck_assert_int_eq(spool_settle(s), 0);
}

/*
 * While commits come, closed journals are not sealed, until SEAL_BACKLOG
 * of them wait; once commits stop for a while, they are.
 */
START_TEST(sealing_waits_while_commits_come)
{
	struct spool	*s;
	char		 cause[CAUSE_SIZE];
	int		 i = 0, n;

	s = spool_open(dir_fd, path, 0, 1024, cause);
	ck_assert_msg(s != NULL, "open: %s", cause);
	/* SEAL_BACKLOG - 1 closed, and the one that takes appends. */
	while (!journal_exists(SEAL_BACKLOG))
		append_settle(s, i++);
	ck_assert(!file_left(".sealed."));
	/* Quiet for a moment less than SEAL_QUIET_MS: not yet. */
	now_ms += SEAL_QUIET_MS - 1;
	ck_assert_int_eq(spool_settle(s), 0);
	ck_assert(!file_left(".sealed."));
	now_ms += 1;
	for (n = 0; n < SEAL_BACKLOG; n++)
		ck_assert_int_eq(spool_settle(s), 0);
	ck_assert(file_left(".sealed."));
	ck_assert(!journal_exists(SEAL_BACKLOG - 1));
	ck_assert(journal_exists(SEAL_BACKLOG));

	/* Busy again: sealing waits until SEAL_BACKLOG are closed. */
	while (!journal_exists(2 * SEAL_BACKLOG - 1))
		append_settle(s, i++);
	ck_assert(journal_exists(SEAL_BACKLOG));
	while (!journal_exists(2 * SEAL_BACKLOG))
		append_settle(s, i++);
	ck_assert(!journal_exists(SEAL_BACKLOG));
	ck_assert_int_eq(spool_close(s, 0), 0);

	s = open_spool();
	ck_assert_uint_eq(spool_count(s), (uint64_t)i);
	ck_assert_int_eq(spool_close(s, 0), 0);
}
END_TEST

/* The path of a sealed file in dir, and its first record's number. */
static void
find_sealed(char path_found[4096 + NAME_MAX], uint64_t *first)
{
	char	name[NAME_MAX + 1];

	ck_assert_msg(find_file(".sealed.", name), "no sealed file");
	snprintf(path_found, 4096 + NAME_MAX, "%s/%s", dir, name);
	*first = strtoull(strstr(name, ".sealed.") + strlen(".sealed."),
	    NULL, 10);
}

/*
 * Closed journals are sealed into GDBM while the spool waits, and go; a
 * crash after that loses nothing, and the sealed files go once delivered.
 */
START_TEST(closed_journals_sealed)
{
	char		sealed[4096 + NAME_MAX];
	uint64_t	first;

	crash_after(300, 20, 1024, true);
	find_sealed(sealed, &first);
	ck_assert_uint_eq(first, 0);
	ck_assert(!journal_exists(1));
	expect_left(20, 300);
}
END_TEST

/* Is the key of len bytes at data in db? */
static bool
has_key(GDBM_FILE db, const void *data, int len)
{
	datum	key;

	key.dptr = (char *)data;
	key.dsize = len;
	return (gdbm_exists(db, key) != 0);
}

/*
 * Text for record i of the tests of long records: "label i " padded with
 * pad to size - 1 bytes.
 */
static void
padded_text(char *text, size_t size, const char *label, int i, char pad)
{
	memset(text, pad, size);
	snprintf(text, size, "%s %d ", label, i);
	text[strlen(text)] = pad;
	text[size - 1] = '\0';
}

/* The number echopost keeps under name in db: 8 bytes, big-endian. */
static uint64_t
fetch_number(GDBM_FILE db, const char *name)
{
	datum		key, value;
	uint64_t	number;

	key.dptr = (char *)name;
	key.dsize = (int)strlen(name);
	value = gdbm_fetch(db, key);
	ck_assert_msg(value.dptr != NULL, "no %s", name);
	ck_assert_int_eq(value.dsize, 8);
	number = be64dec(value.dptr);
	free(value.dptr);
	return (number);
}

/* Key of record seq in a sealed file: 10 bytes of 7 bits, low first. */
static void
seven_bit_key(unsigned char buf[10], uint64_t seq)
{
	int	i;

	for (i = 0; i < 10; i++)
		buf[i] = (seq >> (7 * i)) & 0x7f;
}

/* Whether every key of the GDBM file at path has only bytes below 0x80. */
static bool
keys_seven_bit(const char *path_of)
{
	GDBM_FILE	 db;
	datum		 key, next;
	bool		 seven_bit = true;
	int		 i;

	db = gdbm_open(path_of, 0, GDBM_READER | GDBM_NOLOCK, 0, NULL);
	ck_assert_msg(db != NULL, "open %s", path_of);
	for (key = gdbm_firstkey(db); key.dptr != NULL; key = next) {
		for (i = 0; i < key.dsize; i++)
			if ((unsigned char)key.dptr[i] >= 0x80)
				seven_bit = false;
		next = gdbm_nextkey(db, key);
		free(key.dptr);
	}
	ck_assert_int_eq(gdbm_close(db), 0);
	return (seven_bit);
}

/* Check the keys of every sealed file; the highest end of them all. */
static uint64_t
sealed_keys_seven_bit(void)
{
	struct dirent	*entry;
	DIR		*d;
	char		 name[4096 + NAME_MAX];
	uint64_t	 end, highest = 0;

	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((entry = readdir(d)) != NULL) {
		if (strstr(entry->d_name, ".sealed.") == NULL)
			continue;
		snprintf(name, sizeof name, "%s/%s", dir, entry->d_name);
		ck_assert_msg(keys_seven_bit(name), "%s: a key byte of 0x80 "
		    "or more", entry->d_name);
		end = strtoull(strrchr(entry->d_name, '-') + 1, NULL, 10);
		if (end > highest)
			highest = end;
	}
	closedir(d);
	return (highest);
}

/*
 * Sealed files hold records in blocks of up to 64, keyed by their first,
 * and say so under "key_order" (3) and "block_records": each value GDBM
 * reads costs two system calls. Keys are written 7 bits to a byte, low
 * bits first, because GDBM's hash reads bytes as plain char, which is
 * signed on amd64 and unsigned on arm64: with no byte of 0x80 or more, a
 * file reads on both. Byte-wise little-endian or big-endian keys would
 * not: 600 records run past sequence number 128.
 */
START_TEST(sealed_records_in_blocks)
{
	GDBM_FILE	 db;
	unsigned char	 buf[10];
	char		 name[4096 + NAME_MAX];
	uint64_t	 first = 0, end;

	crash_after(600, 0, 1024, true);
	find_sealed(name, &first);
	end = strtoull(strrchr(name, '-') + 1, NULL, 10);
	ck_assert_uint_gt(end - first, 64);
	db = gdbm_open(name, 0, GDBM_READER | GDBM_NOLOCK, 0, NULL);
	ck_assert_ptr_nonnull(db);
	ck_assert_uint_eq(fetch_number(db, "key_order"), 3);
	ck_assert_uint_eq(fetch_number(db, "block_records"), 64);
	seven_bit_key(buf, first);
	ck_assert(has_key(db, buf, sizeof buf));
	seven_bit_key(buf, first + 1);
	ck_assert(!has_key(db, buf, sizeof buf));
	seven_bit_key(buf, first + 64);
	ck_assert(has_key(db, buf, sizeof buf));
	le64enc(buf, first + 64);
	ck_assert(!has_key(db, buf, 8));
	ck_assert_int_eq(gdbm_close(db), 0);
	ck_assert_uint_gt(sealed_keys_seven_bit(), 128);
	expect_left(0, 600);
}
END_TEST

/*
 * A block also closes once it reaches 64 KiB, so that large records do
 * not make a reader hold 64 of them; a reader finds any record, wherever
 * it lies in its block, and the owner reads them all in order.
 */
START_TEST(large_records_sealed_and_read_anywhere)
{
	struct spool	*s, *reader;
	GDBM_FILE	 db;
	unsigned char	 buf[10];
	char		 text[20000], name[4096 + NAME_MAX], cause[CAUSE_SIZE];
	uint64_t	 seq, first = 0;
	const int	 order[] = { 6, 1, 9, 5, 0, 7 };
	void		*value;
	size_t		 size, i;

	s = spool_open(dir_fd, path, 0, 1024, cause);
	ck_assert_msg(s != NULL, "open: %s", cause);
	for (i = 0; i < 10; i++) {
		padded_text(text, sizeof text, "big", (int)i, 'y');
		ck_assert_int_eq(spool_append(s, text, sizeof text, &seq), 0);
	}
	ck_assert_int_eq(spool_commit(s), 0);
	spool_roll(s);
	ck_assert_int_eq(spool_settle(s), 0);
	wait_quiet();
	ck_assert_int_eq(spool_settle(s), 0);
	ck_assert_int_eq(spool_close(s, 0), 0);

	find_sealed(name, &first);
	ck_assert_uint_eq(first, 0);
	db = gdbm_open(name, 0, GDBM_READER | GDBM_NOLOCK, 0, NULL);
	ck_assert_ptr_nonnull(db);
	for (seq = 0; seq < 10; seq++) {
		seven_bit_key(buf, seq);
		ck_assert_msg(has_key(db, buf, sizeof buf) == (seq % 4 == 0),
		    "record %d", (int)seq);
	}
	ck_assert_int_eq(gdbm_close(db), 0);

	reader = spool_open_reader(dir_fd, path, cause);
	ck_assert_msg(reader != NULL, "open: %s", cause);
	for (i = 0; i < sizeof order / sizeof order[0]; i++) {
		ck_assert_int_eq(spool_get(reader, (uint64_t)order[i], &value,
		    &size), 1);
		padded_text(text, sizeof text, "big", order[i], 'y');
		ck_assert_uint_eq(size, sizeof text);
		ck_assert_mem_eq(value, text, sizeof text);
		free(value);
	}
	ck_assert_int_eq(spool_get(reader, 10, &value, &size), 0);
	ck_assert_int_eq(spool_close(reader, 0), 0);

	s = open_spool();
	for (i = 0; i < 10; i++) {
		padded_text(text, sizeof text, "big", (int)i, 'y');
		expect_first(s, text);
	}
	ck_assert_int_eq(spool_close(s, 1), 0);
}
END_TEST

/*
 * Many megabytes go through several journals of the default size, sealed
 * once they stop coming, in order; a sealed journal is deleted.
 */
START_TEST(journals_rotate_in_order)
{
	struct spool	*s = open_spool();
	uint64_t	 seq;
	char		 text[1000];
	int		 i;

	for (i = 0; i < 12000; i++) {
		padded_text(text, sizeof text, "record", i, 'x');
		ck_assert_int_eq(spool_append(s, text, sizeof text, &seq), 0);
		if (i % 50 == 49) {
			ck_assert_int_eq(spool_commit(s), 0);
			spool_roll(s);
			ck_assert_int_eq(spool_settle(s), 0);
		}
	}
	wait_quiet();
	ck_assert_int_eq(spool_settle(s), 0);
	ck_assert(!journal_exists(1));
	ck_assert(file_left(".sealed."));
	ck_assert_int_eq(spool_close(s, 0), 0);

	s = open_spool();
	ck_assert_uint_eq(spool_count(s), 12000);
	for (i = 0; i < 12000; i++) {
		padded_text(text, sizeof text, "record", i, 'x');
		expect_first(s, text);
	}
	ck_assert_int_eq(spool_close(s, 1), 0);
	ck_assert(!file_left("test.spool"));
}
END_TEST

/*
 * A reader beside a running owner finds records still in the journal, and
 * only those not delivered.
 */
START_TEST(reader_finds_journaled_records)
{
	struct spool	*s = open_spool(), *reader;
	uint64_t	 seq, head, next;
	char		 text[32], cause[CAUSE_SIZE];
	void		*value;
	size_t		 size;
	int		 i;

	for (i = 0; i < 10; i++) {
		snprintf(text, sizeof text, "record %d", i);
		append_text(s, text, &seq);
	}
	for (i = 0; i < 10; i++) {
		snprintf(text, sizeof text, "record %d", i);
		expect_first(s, text);
	}
	ck_assert_int_eq(spool_close(s, 0), 0);
	s = open_spool();
	for (i = 10; i < 15; i++) {
		snprintf(text, sizeof text, "record %d", i);
		append_text(s, text, &seq);
	}

	reader = spool_open_reader(dir_fd, path, cause);
	ck_assert_msg(reader != NULL, "open: %s", cause);
	spool_range(reader, &head, &next);
	ck_assert_uint_eq(head, 10);
	ck_assert_uint_eq(next, 15);
	ck_assert_int_eq(spool_get(reader, 12, &value, &size), 1);
	ck_assert_str_eq(value, "record 12");
	free(value);
	ck_assert_int_eq(spool_get(reader, 3, &value, &size), 0);
	ck_assert_int_eq(spool_get(reader, 14, &value, &size), 1);
	ck_assert_str_eq(value, "record 14");
	free(value);
	ck_assert_int_eq(spool_close(reader, 0), 0);
	ck_assert_int_eq(spool_close(s, 0), 0);
}
END_TEST

/*
 * A spool of echopost 1 at path: records first to end - 1 ("record i"),
 * bookkeeping as it kept it, the clean mark if clean.
 */
static void
write_legacy(uint64_t first, uint64_t end, bool clean)
{
	GDBM_FILE	 db;
	unsigned char	 buf[8];
	char		 text[32];
	datum		 key, value;
	uint64_t	 seq;
	const char	*names[] = { "head", "next", "clean" };
	uint64_t	 values[] = { first, end, 1 };
	int		 i;

	db = gdbm_open(path, 0, GDBM_NEWDB, 0600, NULL);
	ck_assert_ptr_nonnull(db);
	key.dptr = (char *)buf;
	key.dsize = sizeof buf;
	for (seq = first; seq < end; seq++) {
		be64enc(buf, seq);
		snprintf(text, sizeof text, "record %d", (int)seq);
		value.dptr = text;
		value.dsize = (int)strlen(text) + 1;
		ck_assert_int_eq(gdbm_store(db, key, value, GDBM_REPLACE), 0);
	}
	for (i = 0; i < (clean ? 3 : 2); i++) {
		key.dptr = (char *)names[i];
		key.dsize = (int)strlen(names[i]);
		be64enc(buf, values[i]);
		value.dptr = (char *)buf;
		value.dsize = sizeof buf;
		ck_assert_int_eq(gdbm_store(db, key, value, GDBM_REPLACE), 0);
	}
	ck_assert_int_eq(gdbm_close(db), 0);
}

/*
 * An echopost 1 spool marked clean is recovered too (its mark was written
 * before its last sync), by the reading side, not before the spool
 * serves; new records are numbered after the next it saved.
 */
START_TEST(clean_legacy_spool_recovered_too)
{
	struct spool	*s;
	uint64_t	 seq;
	char		 sealed[4096 + 32], text[32];
	int		 i;

	write_legacy(3, 40, true);
	s = open_spool();
	ck_assert_int_eq(access(path, F_OK), 0);
	append_text(s, "record 40", &seq);
	ck_assert_uint_eq(seq, 40);
	for (i = 3; i <= 40; i++) {
		snprintf(text, sizeof text, "record %d", i);
		expect_first(s, text);
	}
	snprintf(sealed, sizeof sealed, "%s.sealed.3-40", path);
	ck_assert_int_eq(access(sealed, F_OK), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(spool_close(s, 1), 0);
	ck_assert(!file_left("test.spool"));
}
END_TEST

/* Any other is copied, recovered and sealed: new records follow its own. */
START_TEST(unclean_legacy_spool_imported)
{
	struct spool	*s;
	uint64_t	 seq;
	char		 text[32];
	int		 i;

	write_legacy(3, 40, false);
	s = open_spool();
	append_text(s, "record 40", &seq);
	ck_assert_uint_eq(seq, 40);
	for (i = 3; i <= 40; i++) {
		snprintf(text, sizeof text, "record %d", i);
		expect_first(s, text);
	}
	ck_assert_int_eq(spool_close(s, 1), 0);
	ck_assert(!file_left("test.spool"));
}
END_TEST

/*
 * Only journals bound the keys of echopost 1's spool: one that lies above a
 * sealed file is imported whole.
 */
START_TEST(legacy_above_a_sealed_file_imported)
{
	struct spool	*s;
	char		 name[NAME_MAX + 1], journal[4096 + NAME_MAX + 1];

	write_legacy(0, 10, false);
	s = open_spool();
	ck_assert_int_eq(spool_close(s, 0), 0);
	while (find_file(".journal.", name)) {
		snprintf(journal, sizeof journal, "%s/%s", dir, name);
		ck_assert_int_eq(unlink(journal), 0);
	}
	write_legacy(10, 20, false);
	expect_left(0, 20);
}
END_TEST

/*
 * A damaged key the recovery kept, numbered among the records this version
 * stored after the old spool's, does not stand in for one of them.
 */
START_TEST(legacy_keys_past_new_records_ignored)
{
	struct spool	*s;
	GDBM_FILE	 db;
	unsigned char	 buf[8];
	char		 sealed[4096 + 32], text[32], garbage[] = "garbage";
	uint64_t	 seq;
	datum		 key, value;
	int		 i;

	write_legacy(0, 10, false);
	s = open_spool();
	for (i = 10; i < 20; i++) {
		snprintf(text, sizeof text, "record %d", i);
		append_text(s, text, &seq);
		ck_assert_uint_eq(seq, (uint64_t)i);
	}
	ck_assert_int_eq(spool_close(s, 0), 0);

	/* The import again, from a copy whose recovery keeps key 12. */
	snprintf(sealed, sizeof sealed, "%s.sealed.0-10", path);
	ck_assert_int_eq(unlink(sealed), 0);
	write_legacy(0, 10, false);
	db = gdbm_open(path, 0, GDBM_WRITER, 0, NULL);
	ck_assert_ptr_nonnull(db);
	be64enc(buf, 12);
	key.dptr = (char *)buf;
	key.dsize = sizeof buf;
	value.dptr = garbage;
	value.dsize = sizeof garbage;
	ck_assert_int_eq(gdbm_store(db, key, value, GDBM_REPLACE), 0);
	ck_assert_int_eq(gdbm_close(db), 0);
	expect_left(0, 20);
}
END_TEST

/*
 * After a restart the size counted starts from the files, which hold more
 * than the records: once everything is delivered, the count is back at 0,
 * or a cap would stay narrowed for the rest of the run.
 */
START_TEST(size_back_to_zero_when_drained)
{
	struct spool	*s = open_spool();
	uint64_t	 seq;

	append_text(s, "one", &seq);
	append_text(s, "two", &seq);
	ck_assert_int_eq(spool_close(s, 0), 0);
	s = open_spool();
	ck_assert_uint_gt(spool_size(s), 2 * sizeof "one");
	expect_first(s, "one");
	ck_assert_uint_gt(spool_size(s), 0);
	expect_first(s, "two");
	ck_assert_uint_eq(spool_size(s), 0);
	ck_assert_int_eq(spool_close(s, 1), 0);
}
END_TEST

/* The cap refuses appends with a reason, and room comes back on removal. */
START_TEST(cap_refuses_then_recovers)
{
	struct spool	*s;
	char		 record[1000], cause[CAUSE_SIZE];
	uint64_t	 seq;
	int		 i;

	s = spool_open(dir_fd, path, 4500, 0, cause);
	ck_assert_msg(s != NULL, "open: %s", cause);
	memset(record, 'r', sizeof record - 1);
	record[sizeof record - 1] = '\0';
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(spool_append(s, record, sizeof record, &seq),
		    0);
	ck_assert_int_eq(spool_commit(s), 0);
	ck_assert_int_eq(spool_append(s, record, sizeof record, &seq), -1);
	ck_assert_ptr_nonnull(strstr(spool_append_error(s),
	    "--max-spool-size"));
	ck_assert_uint_eq(spool_count(s), 4);
	expect_first(s, record);
	ck_assert_int_eq(spool_append(s, record, sizeof record, &seq), 0);
	ck_assert_int_eq(spool_commit(s), 0);
	ck_assert_uint_eq(spool_count(s), 4);
	ck_assert_int_eq(spool_close(s, 0), 0);
}
END_TEST

/* Store the number value under name in db, as echopost does. */
static void
store_number(GDBM_FILE db, const char *name, uint64_t number)
{
	unsigned char	buf[8];
	datum		key, value;

	key.dptr = (char *)name;
	key.dsize = (int)strlen(name);
	be64enc(buf, number);
	value.dptr = (char *)buf;
	value.dsize = sizeof buf;
	ck_assert_int_eq(gdbm_store(db, key, value, GDBM_REPLACE), 0);
}

/*
 * Store a block of records first to first + count - 1 ("record i"), each
 * its length and its bytes; a damaged one says its first record is 1000
 * bytes long.
 */
static void
store_block(GDBM_FILE db, uint64_t first, int count, bool damaged)
{
	unsigned char	key_buf[8], block[1024];
	char		text[32];
	size_t		at = 0, length;
	datum		key, value;
	int		i;

	for (i = 0; i < count; i++) {
		snprintf(text, sizeof text, "record %d", (int)first + i);
		length = strlen(text) + 1;
		le32enc(block + at, (uint32_t)length);
		memcpy(block + at + 4, text, length);
		at += 4 + length;
	}
	if (damaged)
		le32enc(block, 1000);
	le64enc(key_buf, first);
	key.dptr = (char *)key_buf;
	key.dsize = sizeof key_buf;
	value.dptr = (char *)block;
	value.dsize = (int)at;
	ck_assert_int_eq(gdbm_store(db, key, value, GDBM_REPLACE), 0);
}

/*
 * A block whose lengths do not fill it is damaged: its records are
 * reported lost, and those of the other blocks are read.
 */
START_TEST(damaged_block_loses_its_records_alone)
{
	struct spool	*s;
	GDBM_FILE	 db;
	char		 sealed[4096 + 32], text[32];
	uint64_t	 seq;
	int		 i;

	snprintf(sealed, sizeof sealed, "%s.sealed.0-15", path);
	db = gdbm_open(sealed, 0, GDBM_NEWDB, 0600, NULL);
	ck_assert_ptr_nonnull(db);
	store_block(db, 0, 5, false);
	store_block(db, 5, 5, true);
	store_block(db, 10, 5, false);
	store_number(db, "key_order", 2);
	store_number(db, "block_records", 64);
	store_number(db, "end", 15);
	ck_assert_int_eq(gdbm_close(db), 0);

	s = open_spool();
	append_text(s, "after", &seq);
	ck_assert_uint_eq(seq, 15);
	for (i = 0; i < 15; i++) {
		if (i >= 5 && i < 10)
			continue;
		snprintf(text, sizeof text, "record %d", i);
		expect_first(s, text);
	}
	expect_first(s, "after");
	ck_assert_int_eq(spool_close(s, 1), 0);
}
END_TEST

/*
 * A sealed file under the name of echopost 1's spool is not imported as
 * one, whose keys are its records: it is kept aside whole, and the spool
 * goes on.
 */
START_TEST(blocks_under_the_old_name_set_aside)
{
	struct spool	*s;
	char		 name[4096 + NAME_MAX];
	uint64_t	 first = 0, seq;
	void		*value;
	size_t		 size;

	crash_after(300, 0, 1024, true);
	find_sealed(name, &first);
	ck_assert_int_eq(rename(name, path), 0);
	s = open_spool();
	/* The import waits for the first read while journals are there. */
	ck_assert_int_eq(spool_next(s, &seq, &value, &size), 1);
	free(value);
	ck_assert(file_left("test.spool.damaged-"));
	append_text(s, "after", &seq);
	ck_assert_int_eq(spool_close(s, 0), 0);
}
END_TEST

/*
 * A sealed file GDBM cannot open is kept aside, never deleted; its records
 * are reported missing, and the spool goes on.
 */
START_TEST(damaged_sealed_file_set_aside)
{
	struct spool	*s;
	struct dirent	*entry;
	FILE		*f;
	DIR		*d;
	uint64_t	 seq;
	void		*value;
	size_t		 size;
	char		 sealed[4096 + 32], kept[4096] = "";
	char		 text[] = "this is not a GDBM file\n";

	snprintf(sealed, sizeof sealed, "%s.sealed.0-5", path);
	f = fopen(sealed, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	s = open_spool();
	ck_assert_uint_eq(spool_count(s), 5);
	append_text(s, "after", &seq);
	ck_assert_uint_eq(seq, 5);
	expect_first(s, "after");
	ck_assert_int_eq(spool_next(s, &seq, &value, &size), 0);
	ck_assert_int_eq(spool_close(s, 1), 0);

	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((entry = readdir(d)) != NULL)
		if (strstr(entry->d_name, ".sealed.0-5.damaged-") != NULL)
			snprintf(kept, sizeof kept, "%s/%s", dir,
			    entry->d_name);
	closedir(d);
	ck_assert_str_ne(kept, "");
	f = fopen(kept, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(kept, sizeof kept, f));
	ck_assert_str_eq(kept, text);
	fclose(f);
}
END_TEST

Suite *
spool_suite(void)
{
	Suite	*s = suite_create("spool");
	TCase	*t = tcase_create("files");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, order_kept);
	tcase_add_test(t, reopen_resumes);
	tcase_add_test(t, read_ahead_resumes_at_first_not_removed);
	tcase_add_test(t, unclean_stop_resumes);
	tcase_add_test(t, crash_keeps_journal);
	tcase_add_test(t, closed_journals_sealed);
	tcase_add_test(t, reader_finds_journaled_records);
	tcase_add_test(t, journals_rotate_in_order);
	tcase_add_test(t, sealing_waits_while_commits_come);
	tcase_add_test(t, sealed_records_in_blocks);
	tcase_add_test(t, large_records_sealed_and_read_anywhere);
	tcase_add_test(t, clean_legacy_spool_recovered_too);
	tcase_add_test(t, unclean_legacy_spool_imported);
	tcase_add_test(t, legacy_keys_past_new_records_ignored);
	tcase_add_test(t, legacy_above_a_sealed_file_imported);
	tcase_add_test(t, size_back_to_zero_when_drained);
	tcase_add_test(t, cap_refuses_then_recovers);
	tcase_add_test(t, damaged_sealed_file_set_aside);
	tcase_add_test(t, damaged_block_loses_its_records_alone);
	tcase_add_test(t, blocks_under_the_old_name_set_aside);
	suite_add_tcase(s, t);
	return (s);
}
