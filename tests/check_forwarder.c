/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * check_forwarder.c: answer classes, backoff, the delivery URL, the
 * adaptive concurrency limit.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>

#include "concurrency.h"
#include "forwarder.h"
#include "http.h"
#include "unit.h"

/* Codes that may be the endpoint's or the key's, not the record's. */
static bool
endpoint_code(long code)
{
	return ((code >= 300 && code <= 399) || code == 401 || code == 403 ||
	    code == 404 || code == 405 || code == 410);
}

START_TEST(answer_classes)
{
	enum delivery	expected;
	long		code;

	for (code = 200; code <= 299; code++)
		ck_assert_int_eq(classify_answer(CURLE_OK, code),
		    DELIVERY_DONE);
	for (code = 300; code <= 599; code++) {
		if (code == 429 || code == 503)
			expected = DELIVERY_BUSY;
		else if (code == 408 || code > 500)
			expected = DELIVERY_RETRY;
		else if (endpoint_code(code))
			expected = DELIVERY_REFUSED;
		else
			expected = DELIVERY_REJECTED;
		ck_assert_msg(classify_answer(CURLE_OK, code) == expected,
		    "code %ld", code);
	}
	ck_assert_int_eq(classify_answer(CURLE_OK, 400), DELIVERY_REJECTED);
	ck_assert_int_eq(classify_answer(CURLE_OK, 500), DELIVERY_REJECTED);
	ck_assert_int_eq(classify_answer(CURLE_OPERATION_TIMEDOUT, 0),
	    DELIVERY_RETRY);
	ck_assert_int_eq(classify_answer(CURLE_COULDNT_CONNECT, 0),
	    DELIVERY_RETRY);
	ck_assert_int_eq(classify_answer(CURLE_RECV_ERROR, 200),
	    DELIVERY_RETRY);
}
END_TEST

START_TEST(health_classes)
{
	ck_assert(health_answer_ok(CURLE_OK, 200));
	ck_assert(health_answer_ok(CURLE_OK, 204));
	ck_assert(!health_answer_ok(CURLE_OK, 301));
	ck_assert(!health_answer_ok(CURLE_OK, 503));
	ck_assert(!health_answer_ok(CURLE_COULDNT_CONNECT, 0));
}
END_TEST

/* Doubles from the base up to ten times it, jittered in the upper half. */
START_TEST(backoff_grows_and_caps)
{
	unsigned int	failures;
	int64_t		step, wait;
	int		i;

	for (failures = 0; failures < 40; failures++) {
		step = 500;
		for (i = 0; i < (int)failures && step < 5000; i++)
			step *= 2;
		if (step > 5000)
			step = 5000;
		for (i = 0; i < 200; i++) {
			wait = backoff_ms(500, failures);
			ck_assert_int_ge(wait, step / 2);
			ck_assert_int_le(wait, step);
		}
	}
	ck_assert_int_le(backoff_ms(500, 0), 500);
}
END_TEST

static void
expect_url(const char *base, const char *expected)
{
	char	*url;

	url = delivery_url(base);
	ck_assert_ptr_nonnull(url);
	ck_assert_str_eq(url, expected);
	free(url);
}

START_TEST(url_joined_query_kept)
{
	expect_url("http://server:5000", "http://server:5000/log");
	expect_url("http://server:5000/", "http://server:5000/log");
	expect_url("https://h/base//", "https://h/base/log");
	expect_url("http://h/health?probe=1", "http://h/health/log?probe=1");
	expect_url("http://h/?a=b&c=/d", "http://h/log?a=b&c=/d");
}
END_TEST

/* Answers in us at the limit there is, n rounds of them. */
static void
rounds(struct concurrency *c, int n, int64_t us)
{
	unsigned int	i, limit;

	while (n-- > 0)
		for (i = 0, limit = concurrency_limit(c); i < limit; i++)
			concurrency_answered(c, us);
}

START_TEST(limit_grows_while_round_trip_stays)
{
	struct concurrency	c;

	concurrency_init(&c, 16);
	ck_assert_uint_eq(concurrency_limit(&c), 1);
	rounds(&c, 5, 20000);
	ck_assert_uint_eq(concurrency_limit(&c), 6);
	rounds(&c, 40, 20000);
	ck_assert_uint_eq(concurrency_limit(&c), 16);
}
END_TEST

START_TEST(limit_falls_when_round_trip_rises)
{
	struct concurrency	c;
	unsigned int		before;

	concurrency_init(&c, 16);
	rounds(&c, 20, 1000);
	before = concurrency_limit(&c);
	ck_assert_uint_eq(before, 16);
	rounds(&c, 1, 3000);
	ck_assert_uint_lt(concurrency_limit(&c), before);
	rounds(&c, 10, 3000);
	ck_assert_uint_eq(concurrency_limit(&c), 1);
}
END_TEST

START_TEST(limit_halves_on_backoff_never_below_one)
{
	struct concurrency	c;

	concurrency_init(&c, 8);
	rounds(&c, 20, 500);
	ck_assert_uint_eq(concurrency_limit(&c), 8);
	concurrency_backoff(&c);
	ck_assert_uint_eq(concurrency_limit(&c), 4);
	concurrency_backoff(&c);
	concurrency_backoff(&c);
	concurrency_backoff(&c);
	ck_assert_uint_eq(concurrency_limit(&c), 1);
	concurrency_init(&c, 1);
	rounds(&c, 20, 500);
	ck_assert_uint_eq(concurrency_limit(&c), 1);
}
END_TEST

/* A server slower for good is measured against its new self. */
START_TEST(floor_follows_a_lasting_change)
{
	struct concurrency	c;

	concurrency_init(&c, 16);
	rounds(&c, 20, 1000);
	rounds(&c, 200, 10000);
	ck_assert_uint_gt(concurrency_limit(&c), 1);
}
END_TEST

Suite *
forwarder_suite(void)
{
	Suite	*s = suite_create("forwarder");
	TCase	*t = tcase_create("rules");

	tcase_add_test(t, answer_classes);
	tcase_add_test(t, health_classes);
	tcase_add_test(t, backoff_grows_and_caps);
	tcase_add_test(t, url_joined_query_kept);
	tcase_add_test(t, limit_grows_while_round_trip_stays);
	tcase_add_test(t, limit_falls_when_round_trip_rises);
	tcase_add_test(t, limit_halves_on_backoff_never_below_one);
	tcase_add_test(t, floor_follows_a_lasting_change);
	suite_add_tcase(s, t);
	return (s);
}
