/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * check_record.c: record encoding round trip, and damage detected.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "record.h"
#include "unit.h"

static struct record
sample(void)
{
	struct record	r;

	r.received_at_us = 1795870206123456;
	r.api_key = "key-1";
	r.api_key_len = strlen(r.api_key);
	r.pipelines = "[\"p1\",\"p2\"]";
	r.pipelines_len = strlen(r.pipelines);
	r.payload = "{\"b\": 1.50, \"a\":  \"x\"}";
	r.payload_len = strlen(r.payload);
	return (r);
}

START_TEST(round_trip)
{
	struct record	 in = sample(), out;
	void		*data;
	size_t		 size;

	data = record_encode(&in, &size);
	ck_assert_ptr_nonnull(data);
	ck_assert_int_eq(record_decode(data, size, &out), RECORD_OK);
	ck_assert_int_eq(out.received_at_us, in.received_at_us);
	ck_assert_str_eq(out.api_key, in.api_key);
	ck_assert_str_eq(out.pipelines, in.pipelines);
	ck_assert_str_eq(out.payload, in.payload);
	ck_assert_int_eq(out.payload_len, in.payload_len);
	free(data);
}
END_TEST

/* Flipping any single byte is caught. */
START_TEST(every_flipped_byte_detected)
{
	struct record	 in = sample(), out;
	unsigned char	*data;
	size_t		 size, i;

	data = record_encode(&in, &size);
	ck_assert_ptr_nonnull(data);
	for (i = 0; i < size; i++) {
		data[i] ^= 0x20;
		ck_assert_msg(record_decode(data, size, &out) != RECORD_OK,
		    "flip at byte %zu not detected", i);
		data[i] ^= 0x20;
	}
	ck_assert_int_eq(record_decode(data, size, &out), RECORD_OK);
	free(data);
}
END_TEST

START_TEST(truncation_detected)
{
	struct record	 in = sample(), out;
	void		*data;
	size_t		 size, cut;

	data = record_encode(&in, &size);
	ck_assert_ptr_nonnull(data);
	for (cut = 0; cut < size; cut++)
		ck_assert_int_ne(record_decode(data, cut, &out), RECORD_OK);
	ck_assert_int_eq(record_decode(data, 3, &out), RECORD_TRUNCATED);
	ck_assert_int_eq(record_decode(data, size - 1, &out),
	    RECORD_BAD_CHECKSUM);
	free(data);
}
END_TEST

/* The session log line keeps the payload text as received. */
START_TEST(log_line_shape)
{
	struct record	 r = sample();
	json_error_t	 error;
	json_t		*line, *payload;
	char		*text;

	text = record_log_line(&r, "{\"responseCode\":200}");
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, r.payload));
	ck_assert_int_eq(text[strlen(text) - 1], '\n');
	line = json_loads(text, 0, &error);
	ck_assert_msg(line != NULL, "not JSON: %s", error.text);
	payload = json_object_get(json_object_get(line, "log_data"),
	    "payload");
	ck_assert_str_eq(json_string_value(json_object_get(payload, "a")),
	    "x");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
	    line, "log_data"), "received_at")), "2026-11-28T12:50:06.123Z");
	ck_assert_int_eq(json_array_size(json_object_get(json_object_get(line,
	    "log_data"), "pipelines")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(
	    line, "context"), "responseCode")), 200);
	json_decref(line);
	free(text);
}
END_TEST

Suite *
record_suite(void)
{
	Suite	*s = suite_create("record");
	TCase	*t = tcase_create("encoding");

	tcase_add_test(t, round_trip);
	tcase_add_test(t, every_flipped_byte_detected);
	tcase_add_test(t, truncation_detected);
	tcase_add_test(t, log_line_shape);
	suite_add_tcase(s, t);
	return (s);
}
