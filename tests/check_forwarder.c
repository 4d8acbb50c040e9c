/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * check_forwarder.c: answer classes, backoff, the delivery URL, the
 * adaptive concurrency limit.
 */
#include "config.h"

#include <stdlib.h>

#include "concurrency.h"
#include "forwarder.h"
#include "http.h"
#include "unit.h"

/*
 * The answer classes of CONTRACT.md, written as it words them, not as
 * classify_answer decides: 2xx delivered; 3xx to 500 but 408 and 429
 * permanent; 408, 429, 501 and above transient; of the permanent, 3xx,
 * 401, 403, 404, 405 and 410 may be the endpoint's or the key's.
 */
enum contract_class {
	CONTRACT_DELIVERED,
	CONTRACT_PERMANENT,
	CONTRACT_MAYBE_ENDPOINT,
	CONTRACT_TRANSIENT
};

static const struct {
	long			first;
	long			last;
	enum contract_class	class;
} contract[] = {
	{ 200, 299, CONTRACT_DELIVERED },
	{ 300, 399, CONTRACT_MAYBE_ENDPOINT },
	{ 400, 400, CONTRACT_PERMANENT },
	{ 401, 401, CONTRACT_MAYBE_ENDPOINT },
	{ 402, 402, CONTRACT_PERMANENT },
	{ 403, 405, CONTRACT_MAYBE_ENDPOINT },
	{ 406, 407, CONTRACT_PERMANENT },
	{ 408, 408, CONTRACT_TRANSIENT },
	{ 409, 409, CONTRACT_PERMANENT },
	{ 410, 410, CONTRACT_MAYBE_ENDPOINT },
	{ 411, 428, CONTRACT_PERMANENT },
	{ 429, 429, CONTRACT_TRANSIENT },
	{ 430, 500, CONTRACT_PERMANENT },
	{ 501, 599, CONTRACT_TRANSIENT }
};

/* The contract's class of what the forwarder does with an outcome. */
static enum contract_class
class_of(enum delivery outcome)
{
	switch (outcome) {
	case DELIVERY_DONE:
		return (CONTRACT_DELIVERED);
	case DELIVERY_REJECTED:
		return (CONTRACT_PERMANENT);
	case DELIVERY_REFUSED:
		return (CONTRACT_MAYBE_ENDPOINT);
	case DELIVERY_BUSY:
	case DELIVERY_RETRY:
		break;
	}
	return (CONTRACT_TRANSIENT);
}

START_TEST(answer_classes)
{
	size_t	i;
	long	code = 200;

	for (i = 0; i < sizeof contract / sizeof contract[0]; i++) {
		ck_assert_int_eq(contract[i].first, code);
		for (; code <= contract[i].last; code++)
			ck_assert_msg(class_of(classify_answer(CURLE_OK,
			    code)) == contract[i].class, "code %ld", code);
	}
	ck_assert_int_eq(code, 600);
	/* The server asks for less: a transient answer, and a slower pace. */
	ck_assert_int_eq(classify_answer(CURLE_OK, 429), DELIVERY_BUSY);
	ck_assert_int_eq(classify_answer(CURLE_OK, 503), DELIVERY_BUSY);
	/* No answer, or half of one: transient. */
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
