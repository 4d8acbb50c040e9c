/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * check_log.c: the shape of an event line, levels, time format.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "unit.h"
#include "util.h"

static char	*dir;
static char	 path[4096];
static int	 saved_stdout;

/* Events go to a file; stdout is quietened while they are written. */
static void
setup(void)
{
	int	null, fd;

	dir = unit_tempdir();
	ck_assert_ptr_nonnull(dir);
	snprintf(path, sizeof path, "%s/agent.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	ck_assert_int_ne(fd, -1);
	log_set_file(fd);
	saved_stdout = dup(STDOUT_FILENO);
	null = open("/dev/null", O_WRONLY);
	ck_assert_int_ne(null, -1);
	dup2(null, STDOUT_FILENO);
	close(null);
}

static void
teardown(void)
{
	dup2(saved_stdout, STDOUT_FILENO);
	close(saved_stdout);
	log_close_file();
	log_set_level(LEVEL_INFO);
	unit_rmtree(dir);
	free(dir);
}

static json_t *
read_lines(void)
{
	json_error_t	 error;
	json_t		*lines, *line;
	FILE		*f;
	char		 buf[8192];

	lines = json_array();
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(buf, sizeof buf, f) != NULL) {
		ck_assert_int_eq(buf[strlen(buf) - 1], '\n');
		line = json_loads(buf, 0, &error);
		ck_assert_msg(line != NULL, "not JSON: %s", buf);
		json_array_append_new(lines, line);
	}
	fclose(f);
	return (lines);
}

START_TEST(line_shape)
{
	json_t		*lines, *line;
	const char	*key;
	json_t		*value;
	int		 i = 0;

	log_event(LEVEL_INFO, "listening", "{s:s, s:I}", "socket", "/x/s",
	    "spooled", (json_int_t)7);
	lines = read_lines();
	ck_assert_int_eq(json_array_size(lines), 1);
	line = json_array_get(lines, 0);
	json_object_foreach(line, key, value) {
		if (i == 0)
			ck_assert_str_eq(key, "time");
		if (i == 1)
			ck_assert_str_eq(key, "event");
		i++;
	}
	ck_assert_str_eq(json_string_value(json_object_get(line, "event")),
	    "listening");
	ck_assert_str_eq(json_string_value(json_object_get(line, "level")),
	    "info");
	ck_assert_str_eq(json_string_value(json_object_get(line, "socket")),
	    "/x/s");
	ck_assert_int_eq(json_integer_value(json_object_get(line, "spooled")),
	    7);
	ck_assert_int_eq(strlen(json_string_value(json_object_get(line,
	    "time"))), 24);
	json_decref(lines);
}
END_TEST

START_TEST(levels_filter)
{
	json_t	*lines;

	log_set_level(LEVEL_WARN);
	log_event(LEVEL_DEBUG, "hidden", NULL);
	log_event(LEVEL_INFO, "hidden", NULL);
	log_event(LEVEL_WARN, "shown", NULL);
	log_event(LEVEL_ERROR, "shown", NULL);
	lines = read_lines();
	ck_assert_int_eq(json_array_size(lines), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    lines, 0), "level")), "warn");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    lines, 1), "level")), "error");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    lines, 1), "event")), "shown");
	json_decref(lines);
}
END_TEST

/* Odd text in a field is escaped, and the line stays one JSON line. */
START_TEST(fields_escaped)
{
	json_t	*lines;

	log_event(LEVEL_ERROR, "odd", "{s:s}", "reason", "a\nb\"c");
	lines = read_lines();
	ck_assert_int_eq(json_array_size(lines), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    lines, 0), "reason")), "a\nb\"c");
	json_decref(lines);
}
END_TEST

START_TEST(time_format)
{
	char		buf[TIME_BUFSIZE];
	enum log_level	level;

	format_time(0, buf);
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
	format_time(1795870206123456, buf);
	ck_assert_str_eq(buf, "2026-11-28T12:50:06.123Z");
	ck_assert_int_eq(log_level_parse("debug", &level), 0);
	ck_assert_int_eq(level, LEVEL_DEBUG);
	ck_assert_int_eq(log_level_parse("verbose", &level), -1);
}
END_TEST

Suite *
log_suite(void)
{
	Suite	*s = suite_create("log");
	TCase	*t = tcase_create("events");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, line_shape);
	tcase_add_test(t, levels_filter);
	tcase_add_test(t, fields_escaped);
	tcase_add_test(t, time_format);
	suite_add_tcase(s, t);
	return (s);
}
