/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * check_options.c: every option form, the defaults and bad values.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "util.h"
#include "unit.h"

/* Parse a NULL-terminated argument list; out and err are captured. */
static enum options_result
parse(struct options *o, char *out, size_t outlen, char *err, size_t errlen,
    ...)
{
	enum options_result	 result;
	va_list			 ap;
	char			*argv[32];
	FILE			*fout, *ferr;
	int			 argc = 0;

	argv[argc++] = "echopost";
	va_start(ap, errlen);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	memset(out, 0, outlen);
	memset(err, 0, errlen);
	fout = fmemopen(out, outlen - 1, "w");
	ferr = fmemopen(err, errlen - 1, "w");
	ck_assert_ptr_nonnull(fout);
	ck_assert_ptr_nonnull(ferr);
	result = options_parse(o, argc, argv, fout, ferr);
	fclose(fout);
	fclose(ferr);
	return (result);
}

#define PARSE(o, ...) parse((o), out, sizeof out, err, sizeof err, \
	__VA_ARGS__, (char *)NULL)

START_TEST(defaults)
{
	struct options	o;
	char		out[4096], err[4096];

	unsetenv(API_KEY_ENV);
	ck_assert_int_eq(parse(&o, out, sizeof out, err, sizeof err,
	    (char *)NULL), OPTIONS_RUN);
	ck_assert_str_eq(o.dir, "./.datanadhi");
	ck_assert_str_eq(o.health_url, "http://data-nadhi-server:5000");
	ck_assert_str_eq(o.api_key, "");
	ck_assert_int_eq(o.socket_mode, 0600);
	ck_assert_int_eq(o.max_spool_size, -1);
	ck_assert_int_eq(o.health_interval_ms, 500);
	ck_assert_int_eq(o.timeout_ms, 10000);
	ck_assert_int_eq(o.max_message_size, 1024 * 1024);
	ck_assert_int_eq(o.log_level, LEVEL_INFO);
	ck_assert_uint_eq(o.concurrency, 16);
	ck_assert_int_eq(o.refused_timeout_ms, 10 * 60 * 1000);
	ck_assert_int_eq(o.keep_sessions, 20);
	options_free(&o);
}
END_TEST

/* Go-flag and GNU forms all reach the same option. */
START_TEST(every_form)
{
	static const char *forms[][3] = {
		{ "-datanadhi", "/tmp/a", NULL },
		{ "--datanadhi", "/tmp/a", NULL },
		{ "-datanadhi=/tmp/a", NULL, NULL },
		{ "--datanadhi=/tmp/a", NULL, NULL },
	};
	struct options	o;
	char		out[4096], err[4096];
	size_t		i;

	for (i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		ck_assert_int_eq(PARSE(&o, (char *)forms[i][0],
		    (char *)forms[i][1]), OPTIONS_RUN);
		ck_assert_str_eq(o.dir, "/tmp/a");
		options_free(&o);
	}
}
END_TEST

START_TEST(sdk_command_line)
{
	struct options	o;
	char		out[4096], err[4096];

	ck_assert_int_eq(PARSE(&o, "-datanadhi", "/var/x", "-api-key", "K1",
	    "-health-url", "http://server:5000/"), OPTIONS_RUN);
	ck_assert_str_eq(o.dir, "/var/x");
	ck_assert_str_eq(o.api_key, "K1");
	ck_assert_str_eq(o.health_url, "http://server:5000/");
	options_free(&o);
}
END_TEST

START_TEST(key_from_environment)
{
	struct options	o;
	char		out[4096], err[4096];

	setenv(API_KEY_ENV, "from-env", 1);
	ck_assert_int_eq(parse(&o, out, sizeof out, err, sizeof err,
	    (char *)NULL), OPTIONS_RUN);
	ck_assert_str_eq(o.api_key, "from-env");
	options_free(&o);
	ck_assert_int_eq(PARSE(&o, "-api-key", "from-flag"), OPTIONS_RUN);
	ck_assert_str_eq(o.api_key, "from-flag");
	options_free(&o);
	unsetenv(API_KEY_ENV);
}
END_TEST

/* Every value differs from its default: an option not read fails. */
START_TEST(tuning_options)
{
	struct options	o;
	char		out[4096], err[4096];

	ck_assert_int_eq(PARSE(&o, "--socket-mode", "0660",
	    "--health-interval=250ms", "-timeout", "1.5s",
	    "--max-message-size", "4M", "--log-level", "debug",
	    "-replay-concurrency", "1", "--refused-timeout=90s",
	    "-keep-sessions=3", "--cacert", "/dev/null", "-capath", "/"),
	    OPTIONS_RUN);
	ck_assert_int_eq(o.socket_mode, 0660);
	ck_assert_int_eq(o.keep_sessions, 3);
	ck_assert_str_eq(o.cacert, "/dev/null");
	ck_assert_str_eq(o.capath, "/");
	ck_assert_int_eq(o.health_interval_ms, 250);
	ck_assert_int_eq(o.timeout_ms, 1500);
	ck_assert_int_eq(o.max_message_size, 4 * 1024 * 1024);
	ck_assert_int_eq(o.log_level, LEVEL_DEBUG);
	ck_assert_uint_eq(o.concurrency, 1);
	ck_assert_int_eq(o.refused_timeout_ms, 90000);
	options_free(&o);
}
END_TEST

/* --max-spool-size 0 takes the default cap away; 1k is the least cap. */
START_TEST(spool_size_limits)
{
	struct options	o;
	char		out[4096], err[4096];

	ck_assert_int_eq(PARSE(&o, "--max-spool-size", "0"), OPTIONS_RUN);
	ck_assert_int_eq(o.max_spool_size, 0);
	options_free(&o);
	ck_assert_int_eq(PARSE(&o, "--max-spool-size", "2G"), OPTIONS_RUN);
	ck_assert_int_eq(o.max_spool_size, 2LL << 30);
	options_free(&o);
	ck_assert_int_eq(PARSE(&o, "--max-spool-size", "1000"), OPTIONS_BAD);
	ck_assert_ptr_nonnull(strstr(err, "-max-spool-size"));
	options_free(&o);
}
END_TEST

/* A password in the URL is used, and never shown. */
START_TEST(url_password_not_shown)
{
	static const char *urls[][2] = {
		{ "http://u:pa55@h:5000/x?q=1", "http://u:***@h:5000/x?q=1" },
		{ "https://h/health", "https://h/health" },
		{ "http://u@h", "http://u@h" },
	};
	struct options	o;
	char		out[4096], err[4096];
	size_t		i;

	for (i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		ck_assert_int_eq(PARSE(&o, "-health-url", (char *)urls[i][0]),
		    OPTIONS_RUN);
		ck_assert_str_eq(o.health_url, urls[i][0]);
		ck_assert_str_eq(o.shown_url, urls[i][1]);
		options_free(&o);
	}
}
END_TEST

START_TEST(help_and_version)
{
	struct options	o;
	char		out[4096], err[4096];

	ck_assert_int_eq(PARSE(&o, "--help"), OPTIONS_DONE);
	ck_assert_ptr_nonnull(strstr(out, "Usage: echopost"));
	ck_assert_ptr_nonnull(strstr(out, "-datanadhi DIR"));
	ck_assert_str_eq(err, "");
	options_free(&o);
	ck_assert_int_eq(PARSE(&o, "-version"), OPTIONS_DONE);
	ck_assert_ptr_nonnull(strstr(out, "echopost " ECHOPOST_VERSION "\n"));
	ck_assert_ptr_nonnull(strstr(out, "License AGPLv3"));
	options_free(&o);
}
END_TEST

/* Each bad value is refused with a message naming the option. */
START_TEST(bad_values)
{
	static const char *bad[][3] = {
		{ "--bogus", NULL, "unknown option" },
		{ "-d", "x", "'-d' is ambiguous; it could be -datanadhi -dump" },
		{ "--s", NULL, "could be -socket-mode -status" },
		{ "-timeout", NULL, "needs a value" },
		{ "--timeout", "soon", "-timeout" },
		{ "--timeout", "-1s", "-timeout" },
		{ "--health-interval", "1ms", "-health-interval" },
		{ "--health-interval", "5h", "-health-interval" },
		{ "-health-url", "ftp://x", "-health-url" },
		{ "-health-url", "not a url", "-health-url" },
		{ "--socket-mode", "0999", "-socket-mode" },
		{ "--socket-mode", "", "-socket-mode" },
		{ "--max-message-size", "12X", "-max-message-size" },
		{ "--max-message-size", "100", "-max-message-size" },
		{ "--log-level", "loud", "-log-level" },
		{ "--keep-sessions", "0", "-keep-sessions" },
		{ "--keep-sessions", "12x", "-keep-sessions" },
		{ "--keep-sessions", "100001", "-keep-sessions" },
		{ "--replay-concurrency", "0", "-replay-concurrency" },
		{ "--replay-concurrency", "257", "-replay-concurrency" },
		{ "--refused-timeout", "0", "-refused-timeout" },
		{ "-datanadhi", "", "-datanadhi" },
		{ "--give-up", "7-3", "-give-up" },
		{ "--give-up", "18446744073709551615", "-give-up" },
		{ "--seq", "x", "-seq" },
		{ "--seq", "3", "--seq goes with --dump" },
		{ "--count", NULL, "--count goes with --dump" },
		{ "extra", NULL, "unexpected argument" },
	};
	struct options	o;
	char		out[4096], err[4096];
	size_t		i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(PARSE(&o, (char *)bad[i][0],
		    (char *)bad[i][1]) == OPTIONS_BAD, "accepted %s %s",
		    bad[i][0], bad[i][1] ? bad[i][1] : "");
		ck_assert_msg(strstr(err, bad[i][2]) != NULL,
		    "message for %s: %s", bad[i][0], err);
		ck_assert_ptr_nonnull(strstr(err, "Try 'echopost --help'"));
		options_free(&o);
	}
}
END_TEST

START_TEST(record_numbers)
{
	struct options	o;
	char		out[4096], err[4096];
	uint64_t	first, last;

	ck_assert_int_eq(PARSE(&o, "--dump", "--seq", "12-40", "--count"),
	    OPTIONS_RUN);
	ck_assert_int_eq(o.mode, MODE_DUMP);
	ck_assert(o.seq_given && o.count);
	ck_assert_uint_eq(o.first_seq, 12);
	ck_assert_uint_eq(o.last_seq, 40);
	options_free(&o);
	ck_assert_int_eq(PARSE(&o, "-give-up=7"), OPTIONS_RUN);
	ck_assert_int_eq(o.mode, MODE_GIVE_UP);
	ck_assert(!o.seq_given);
	ck_assert_uint_eq(o.first_seq, 7);
	ck_assert_uint_eq(o.last_seq, 7);
	options_free(&o);
	ck_assert_int_eq(PARSE(&o, "--give-up", "3", "--seq", "3"),
	    OPTIONS_BAD);
	options_free(&o);
	ck_assert_int_eq(PARSE(&o, "--give-up", "3", "--status"), OPTIONS_BAD);
	ck_assert_ptr_nonnull(strstr(err, "exclude each other"));
	options_free(&o);
	ck_assert_int_eq(parse_range("0", &first, &last), 0);
	ck_assert_uint_eq(first + last, 0);
	ck_assert_int_eq(parse_range("5-5", &first, &last), 0);
	ck_assert_int_eq(parse_range(" 5", &first, &last), -1);
	ck_assert_int_eq(parse_range("5-", &first, &last), -1);
	ck_assert_int_eq(parse_range("5--6", &first, &last), -1);
	ck_assert_int_eq(parse_range("99999999999999999999", &first, &last),
	    -1);
}
END_TEST

START_TEST(durations_and_sizes)
{
	int64_t	value;

	ck_assert_int_eq(parse_duration_ms("250ms", &value), 0);
	ck_assert_int_eq(value, 250);
	ck_assert_int_eq(parse_duration_ms("2", &value), 0);
	ck_assert_int_eq(value, 2000);
	ck_assert_int_eq(parse_duration_ms("0.5s", &value), 0);
	ck_assert_int_eq(value, 500);
	ck_assert_int_eq(parse_duration_ms("1m", &value), 0);
	ck_assert_int_eq(value, 60000);
	ck_assert_int_eq(parse_duration_ms("1h", &value), -1);
	ck_assert_int_eq(parse_duration_ms("", &value), -1);
	ck_assert_int_eq(parse_size("1k", &value), 0);
	ck_assert_int_eq(value, 1024);
	ck_assert_int_eq(parse_size("3G", &value), 0);
	ck_assert_int_eq(value, 3LL << 30);
	ck_assert_int_eq(parse_size("1kk", &value), -1);
	ck_assert_int_eq(parse_size("-1", &value), -1);
	ck_assert_int_eq(parse_size("99999999999999999999", &value), -1);
}
END_TEST

Suite *
options_suite(void)
{
	Suite	*s = suite_create("options");
	TCase	*t = tcase_create("parse");

	tcase_add_test(t, defaults);
	tcase_add_test(t, every_form);
	tcase_add_test(t, sdk_command_line);
	tcase_add_test(t, key_from_environment);
	tcase_add_test(t, tuning_options);
	tcase_add_test(t, spool_size_limits);
	tcase_add_test(t, url_password_not_shown);
	tcase_add_test(t, help_and_version);
	tcase_add_test(t, bad_values);
	tcase_add_test(t, record_numbers);
	tcase_add_test(t, durations_and_sizes);
	suite_add_tcase(s, t);
	return (s);
}
