/*
 * Copyright (C) 2026 The EchoPost developers
 * SPDX-License-Identifier: AGPL-3.0-or-later
 */
/*
 * check_request.c: SendLog bytes to record, and what is refused.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "logagent.pb-c.h"
#include "record.h"
#include "request.h"
#include "unit.h"

static int
convert(const char *json, char **pipelines, size_t n, const char *key,
    struct record *r, void **encoded, char reason[CAUSE_SIZE])
{
	Logagent__LogRequest	 request = LOGAGENT__LOG_REQUEST__INIT;
	unsigned char		*packed;
	size_t			 len, size;
	int			 status;

	request.json_data = (char *)json;
	request.pipelines = pipelines;
	request.n_pipelines = n;
	request.api_key = (char *)key;
	len = logagent__log_request__get_packed_size(&request);
	packed = malloc(len + 1);
	ck_assert_ptr_nonnull(packed);
	logagent__log_request__pack(&request, packed);
	reason[0] = '\0';
	status = request_to_record(packed, len, 42, encoded, &size, reason);
	free(packed);
	if (status == 0)
		ck_assert_int_eq(record_decode(*encoded, size, r), RECORD_OK);
	return (status);
}

START_TEST(good_request)
{
	char		*pipelines[] = { "p1", "p\"2" }, reason[CAUSE_SIZE];
	struct record	 r;
	void		*encoded;

	ck_assert_int_eq(convert("{\"b\": 1.50,  \"a\": 123456789012345678901}",
	    pipelines, 2, "k", &r, &encoded, reason), 0);
	ck_assert_str_eq(r.payload,
	    "{\"b\": 1.50,  \"a\": 123456789012345678901}");
	ck_assert_str_eq(r.pipelines, "[\"p1\",\"p\\\"2\"]");
	ck_assert_str_eq(r.api_key, "k");
	ck_assert_int_eq(r.received_at_us, 42);
	free(encoded);
}
END_TEST

START_TEST(refused_with_reason)
{
	static const struct {
		const char	*json;
		const char	*pipeline;
		const char	*key;
		const char	*reason;
	} bad[] = {
		{ "not json", "p", "", "not valid JSON" },
		{ "[1, 2]", "p", "", "must be a JSON object" },
		{ "\"text\"", "p", "", "must be a JSON object" },
		{ "{\"a\": 1} trailing", "p", "", "not valid JSON" },
		{ "{\"a\": \"\xff\"}", "p", "", "not valid JSON" },
		{ "", "p", "", "not valid JSON" },
		{ "{}", "\xc3\x28", "", "not valid UTF-8" },
		{ "{}", "p", "bad\r\nInjected: 1", "control characters" },
	};
	char		*pipelines[1], reason[CAUSE_SIZE];
	struct record	 r;
	void		*encoded;
	size_t		 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pipelines[0] = (char *)bad[i].pipeline;
		ck_assert_msg(convert(bad[i].json, pipelines, 1, bad[i].key,
		    &r, &encoded, reason) == -1, "accepted case %zu", i);
		ck_assert_msg(strstr(reason, bad[i].reason) != NULL,
		    "case %zu: reason '%s'", i, reason);
		ck_assert_ptr_null(encoded);
	}
}
END_TEST

/*
 * An object nested depth deep, counting itself: {"a":[[...]]}, valid
 * JSON at any depth.
 */
static char *
nested(size_t depth)
{
	char	*json;
	size_t	 arrays = depth - 1, i;

	json = malloc(2 * arrays + 8);
	ck_assert_ptr_nonnull(json);
	strcpy(json, "{\"a\":");
	for (i = 0; i < arrays; i++) {
		json[5 + i] = '[';
		json[5 + arrays + i] = ']';
	}
	strcpy(json + 5 + 2 * arrays, "}");
	return (json);
}

/*
 * JSON as deep as the parser takes is stored as it came; one level more
 * is refused, and for its depth alone.
 */
START_TEST(deep_nesting_refused)
{
	char		*json, *pipelines[1] = { "p" }, reason[CAUSE_SIZE];
	struct record	 r;
	void		*encoded;

	json = nested(JSON_PARSER_MAX_DEPTH);
	ck_assert_msg(convert(json, pipelines, 1, "", &r, &encoded,
	    reason) == 0, "refused: %s", reason);
	ck_assert_str_eq(r.payload, json);
	free(encoded);
	free(json);
	json = nested(JSON_PARSER_MAX_DEPTH + 1);
	ck_assert_int_eq(convert(json, pipelines, 1, "", &r, &encoded, reason),
	    -1);
	ck_assert_ptr_null(encoded);
	ck_assert_msg(strstr(reason, "not valid JSON") != NULL &&
	    strstr(reason, "depth") != NULL, "reason: %s", reason);
	free(json);
}
END_TEST

/*
 * Bytes no SDK would send: malformed protobuf, and a string with a NUL
 * byte in it, which protobuf-c would cut short. Refused, never truncated.
 */
START_TEST(raw_bytes_refused)
{
	static const unsigned char garbage[] = { 0x0a, 0xff, 0xff, 0xff, 0x0f,
	    'x' };
	static const unsigned char with_nul[] = { 0x0a, 0x0a, '{', '"', 'a',
	    '"', ':', '1', '}', 0, '{', '}', 0x12, 0x01, 'p' };
	static const struct {
		const unsigned char	*bytes;
		size_t			 len;
		const char		*reason;
	} bad[] = {
		{ garbage, sizeof garbage, "malformed" },
		{ with_nul, sizeof with_nul, "NUL" },
	};
	char	 reason[CAUSE_SIZE];
	void	*encoded;
	size_t	 size, i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		reason[0] = '\0';
		ck_assert_int_eq(request_to_record(bad[i].bytes, bad[i].len, 1,
		    &encoded, &size, reason), -1);
		ck_assert_msg(strstr(reason, bad[i].reason) != NULL,
		    "case %zu: reason '%s'", i, reason);
		ck_assert_ptr_null(encoded);
	}
}
END_TEST

START_TEST(response_round_trip)
{
	Logagent__LogResponse	*response;
	void			*data;
	size_t			 len;

	data = response_pack(0, "storage failed: disk full", &len);
	ck_assert_ptr_nonnull(data);
	response = logagent__log_response__unpack(NULL, len, data);
	ck_assert_ptr_nonnull(response);
	ck_assert_int_eq(response->success, 0);
	ck_assert_str_eq(response->message, "storage failed: disk full");
	logagent__log_response__free_unpacked(response, NULL);
	free(data);
}
END_TEST

Suite *
request_suite(void)
{
	Suite	*s = suite_create("request");
	TCase	*t = tcase_create("to_record");

	tcase_add_test(t, good_request);
	tcase_add_test(t, refused_with_reason);
	tcase_add_test(t, deep_nesting_refused);
	tcase_add_test(t, raw_bytes_refused);
	tcase_add_test(t, response_round_trip);
	suite_add_tcase(s, t);
	return (s);
}
