/*
 * check_forwarder.c: answer classes, backoff, the delivery URL.
 */
#include "config.h"

#include <stdlib.h>

#include "forwarder.h"
#include "unit.h"

START_TEST(answer_classes)
{
	long	code;

	for (code = 200; code <= 299; code++)
		ck_assert_int_eq(classify_answer(CURLE_OK, code),
		    DELIVERY_DONE);
	for (code = 300; code <= 500; code++)
		ck_assert_int_eq(classify_answer(CURLE_OK, code),
		    code == 408 || code == 429 ? DELIVERY_RETRY :
		    DELIVERY_REJECTED);
	for (code = 501; code <= 599; code++)
		ck_assert_int_eq(classify_answer(CURLE_OK, code),
		    DELIVERY_RETRY);
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

START_TEST(delivery_url)
{
	char	*url;

	url = log_url("http://server:5000");
	ck_assert_str_eq(url, "http://server:5000/log");
	free(url);
	url = log_url("http://server:5000/");
	ck_assert_str_eq(url, "http://server:5000/log");
	free(url);
	url = log_url("https://h/base//");
	ck_assert_str_eq(url, "https://h/base/log");
	free(url);
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
	tcase_add_test(t, delivery_url);
	suite_add_tcase(s, t);
	return (s);
}
